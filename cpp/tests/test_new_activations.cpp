// LeakyReLU, ELU, GELU, softplus (stand-alone and fused in the dense write-back) against naive
// double loops, on every instruction set.
#include <algorithm>

#include "blockprop/activations.h"
#include "blockprop/dense.h"
#include "test_util.h"

namespace {

using namespace bptest;
using blockprop::Activation;

const Activation kNew[] = {Activation::leaky_relu, Activation::elu, Activation::gelu, Activation::softplus};

double naive_f(Activation act, double x, double p) {
  switch (act) {
    case Activation::leaky_relu: return x < 0 ? p * x : x;
    case Activation::elu: return x > 0 ? x : p * (std::exp(x) - 1);
    case Activation::gelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    default: return x > 0 ? x + std::log(1 + std::exp(-x)) : std::log(1 + std::exp(x));
  }
}

// f'(x) from x (the kernels get y, or x for GELU)
double naive_df(Activation act, double x, double p) {
  switch (act) {
    case Activation::leaky_relu: return x > 0 ? 1 : p;
    case Activation::elu: return x > 0 ? 1 : p * std::exp(x);
    case Activation::gelu:
      return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
    default: return 1 / (1 + std::exp(-x));
  }
}

template <typename T>
void sweep(double param, bool fused_default) {
  const double tol = sizeof(T) == 4 ? 3e-6 : 1e-13;
  for (index_t n : {1, 3, 16, 17, 1000}) {
    const auto x = random_vector<T>(n, 60 + n, -8, 8), dy = random_vector<T>(n, 61 + n);
    for (Activation act : kNew) {
      const double p = fused_default ? (act == Activation::elu ? 1.0 : 0.01) : param;
      for (Isa isa : testable_isas()) {
        IsaScope scope(isa);
        const std::string where = "n=" + std::to_string(n) + " act=" + std::to_string(int(act)) +
                                  " p=" + std::to_string(p) + " " + isa_label(isa);
        std::vector<T> y(n), dx(n);
        if (fused_default) blockprop::activation_forward<T>(act, n, x.data(), y.data());
        else blockprop::activation_forward<T>(act, n, x.data(), y.data(), p);
        const std::vector<T>& v = act == Activation::gelu ? x : y;
        if (fused_default) blockprop::activation_backward<T>(act, n, dy.data(), v.data(), dx.data());
        else blockprop::activation_backward<T>(act, n, dy.data(), v.data(), dx.data(), p);
        for (index_t i = 0; i < n; ++i) {
          const double want = naive_f(act, x[i], p), dwant = dy[i] * naive_df(act, x[i], p);
          EXPECT_NEAR(y[i], want, tol * (1 + std::abs(want))) << where << " forward i=" << i;
          EXPECT_NEAR(dx[i], dwant, 4 * tol * (1 + std::abs(dwant))) << where << " backward i=" << i;
        }
      }
    }
  }
}

TEST(NewActivations, DefaultParametersFloat) { sweep<float>(0, true); }
TEST(NewActivations, DefaultParametersDouble) { sweep<double>(0, true); }
TEST(NewActivations, GivenParameterFloat) { sweep<float>(0.3, false); }
TEST(NewActivations, GivenParameterDouble) { sweep<double>(0.3, false); }

// Fused into the GEMM write-back: y = f(x·Wᵀ + b), with the fused slope/alpha.
TEST(NewActivations, FusedDenseForward) {
  const index_t batch = 37, in = 29, out = 21;
  const auto x = random_vector<double>(batch * in, 7), w = random_vector<double>(out * in, 8),
             b = random_vector<double>(out, 9);
  for (Activation act : kNew)
    for (Isa isa : testable_isas()) {
      IsaScope scope(isa);
      std::vector<double> y(batch * out);
      blockprop::dense_forward<double>(batch, in, out, x.data(), w.data(), b.data(), act, y.data());
      for (index_t r = 0; r < batch; ++r)
        for (index_t j = 0; j < out; ++j) {
          double z = b[j];
          for (index_t k = 0; k < in; ++k) z += x[r * in + k] * w[j * in + k];
          const double want = naive_f(act, z, act == Activation::elu ? 1.0 : 0.01);
          EXPECT_NEAR(y[r * out + j], want, 1e-12 * (1 + std::abs(want)))
              << isa_label(isa) << " act=" << int(act);
        }
    }
}

}  // namespace
