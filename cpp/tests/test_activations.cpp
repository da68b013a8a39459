// Stand-alone activations and softmax, and LeakyReLU, ELU, GELU, softplus (stand-alone and fused in
// the dense write-back), against naive double loops, on every instruction set.
#include "blockprop/activations.h"

#include <algorithm>

#include "blockprop/dense.h"
#include "test_util.h"

namespace {

using namespace bptest;
using blockprop::Activation;

template <typename T>
const char* dtype() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

template <typename T>
double tol() {
  return sizeof(T) == 4 ? 2e-6 : 1e-14;
}

const Activation kActs[] = {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh};

template <typename T>
double max_err(const std::vector<T>& got, const std::vector<double>& want) {
  double worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - want[i]) / (1 + std::abs(want[i])));
  return worst;
}

const index_t kSizes[] = {1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 33, 65, 127, 1000, 4099};

template <typename T>
void elementwise_sweep() {
  for (index_t n : kSizes) {
    const auto x = random_vector<T>(n, 40 + n, -6, 6), dy = random_vector<T>(n, 41 + n);
    for (Activation act : kActs) {
      std::vector<double> want_y(n), want_dx(n);
      for (index_t i = 0; i < n; ++i) want_y[i] = naive_f(act, x[i]);
      // Backward takes y as given (here: x mapped into the range of f) and multiplies by f'(y).
      std::vector<T> y_in(n);
      for (index_t i = 0; i < n; ++i) y_in[i] = T(naive_f(act, x[i]));
      for (index_t i = 0; i < n; ++i) want_dx[i] = double(dy[i]) * naive_df(act, y_in[i]);
      for (Isa isa : testable_isas()) {
        IsaScope scope(isa);
        const std::string where = "n=" + std::to_string(n) + " act=" + std::to_string(int(act)) +
                                  " dtype=" + dtype<T>() + " " + isa_label(isa);
        std::vector<T> y(n), dx(n);
        blockprop::activation_forward<T>(act, n, x.data(), y.data());
        EXPECT_LE(max_err(y, want_y), tol<T>()) << where << " (forward)";
        auto inplace = x;  // y may alias x
        blockprop::activation_forward<T>(act, n, inplace.data(), inplace.data());
        EXPECT_LE(max_err(inplace, want_y), tol<T>()) << where << " (forward in place)";
        blockprop::activation_backward<T>(act, n, dy.data(), y_in.data(), dx.data());
        EXPECT_LE(max_err(dx, want_dx), tol<T>()) << where << " (backward)";
      }
    }
  }
}

TEST(Activations, ElementwiseFloat) { elementwise_sweep<float>(); }
TEST(Activations, ElementwiseDouble) { elementwise_sweep<double>(); }

TEST(Activations, SigmoidOfLargeInputsSaturatesWithoutNaN) {
  const std::vector<float> x = {-1000.0f, -100.0f, 0.0f, 100.0f, 1000.0f};
  const float want[] = {0.0f, 0.0f, 0.5f, 1.0f, 1.0f};
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    std::vector<float> y(x.size());
    blockprop::activation_forward<float>(Activation::sigmoid, 5, x.data(), y.data());
    for (int i = 0; i < 5; ++i) EXPECT_NEAR(y[i], want[i], 1e-30) << isa_label(isa) << " x=" << x[i];
  }
}

template <typename T>
void check_softmax(index_t rows, index_t cols, double scale) {
  const auto x = random_vector<T>(rows * cols, 50 + rows + 3 * cols, -scale, scale);
  const auto dy = random_vector<T>(rows * cols, 51 + rows + cols);
  std::vector<double> want_y(rows * cols), want_dx(rows * cols);
  for (index_t r = 0; r < rows; ++r) {
    double mx = x[r * cols], s = 0, dot = 0;
    for (index_t j = 0; j < cols; ++j) mx = std::max(mx, double(x[r * cols + j]));
    for (index_t j = 0; j < cols; ++j) s += std::exp(x[r * cols + j] - mx);
    for (index_t j = 0; j < cols; ++j) want_y[r * cols + j] = std::exp(x[r * cols + j] - mx) / s;
    for (index_t j = 0; j < cols; ++j) dot += double(dy[r * cols + j]) * want_y[r * cols + j];
    for (index_t j = 0; j < cols; ++j) want_dx[r * cols + j] = want_y[r * cols + j] * (dy[r * cols + j] - dot);
  }
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    const std::string where = "rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                              " scale=" + std::to_string(scale) + " dtype=" + dtype<T>() + " " + isa_label(isa);
    std::vector<T> y(rows * cols), dx(rows * cols);
    blockprop::softmax_forward<T>(rows, cols, x.data(), y.data());
    EXPECT_LE(max_err(y, want_y), tol<T>()) << where << " (forward)";
    blockprop::softmax_backward<T>(rows, cols, dy.data(), y.data(), dx.data());
    EXPECT_LE(max_err(dx, want_dx), 4 * tol<T>()) << where << " (backward)";
  }
}

TEST(Activations, Softmax) {
  for (index_t rows : {1, 3, 17})
    for (index_t cols : {1, 2, 5, 8, 17, 33, 1000}) {
      check_softmax<float>(rows, cols, 5);
      check_softmax<double>(rows, cols, 5);
    }
  check_softmax<float>(5, 11, 1000);  // large logits: max subtraction keeps exp finite
  check_softmax<double>(5, 11, 1000);
}


// LeakyReLU, ELU, GELU, softplus: activations with a parameter (slope, alpha).

const Activation kWithParameter[] = {Activation::leaky_relu, Activation::elu, Activation::gelu, Activation::softplus};

double naive_param_f(Activation act, double x, double p) {
  switch (act) {
    case Activation::leaky_relu: return x < 0 ? p * x : x;
    case Activation::elu: return x > 0 ? x : p * (std::exp(x) - 1);
    case Activation::gelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    default: return x > 0 ? x + std::log(1 + std::exp(-x)) : std::log(1 + std::exp(x));
  }
}

// f'(x) from x (the kernels get y, or x for GELU)
double naive_param_df(Activation act, double x, double p) {
  switch (act) {
    case Activation::leaky_relu: return x > 0 ? 1 : p;
    case Activation::elu: return x > 0 ? 1 : p * std::exp(x);
    case Activation::gelu:
      return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
    default: return 1 / (1 + std::exp(-x));
  }
}

template <typename T>
void param_sweep(double param, bool fused_default) {
  const double tol = sizeof(T) == 4 ? 3e-6 : 1e-13;
  for (index_t n : {1, 3, 16, 17, 1000}) {
    const auto x = random_vector<T>(n, 60 + n, -8, 8), dy = random_vector<T>(n, 61 + n);
    for (Activation act : kWithParameter) {
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
          const double want = naive_param_f(act, x[i], p), dwant = dy[i] * naive_param_df(act, x[i], p);
          EXPECT_NEAR(y[i], want, tol * (1 + std::abs(want))) << where << " forward i=" << i;
          EXPECT_NEAR(dx[i], dwant, 4 * tol * (1 + std::abs(dwant))) << where << " backward i=" << i;
        }
      }
    }
  }
}

TEST(ActivationsWithParameters, DefaultParametersFloat) { param_sweep<float>(0, true); }
TEST(ActivationsWithParameters, DefaultParametersDouble) { param_sweep<double>(0, true); }
TEST(ActivationsWithParameters, GivenParameterFloat) { param_sweep<float>(0.3, false); }
TEST(ActivationsWithParameters, GivenParameterDouble) { param_sweep<double>(0.3, false); }

// Fused into the GEMM write-back: y = f(x·Wᵀ + b), with the fused slope/alpha.
TEST(ActivationsWithParameters, FusedDenseForward) {
  const index_t batch = 37, in = 29, out = 21;
  const auto x = random_vector<double>(batch * in, 7), w = random_vector<double>(out * in, 8),
             b = random_vector<double>(out, 9);
  for (Activation act : kWithParameter)
    for (Isa isa : testable_isas()) {
      IsaScope scope(isa);
      std::vector<double> y(batch * out);
      blockprop::dense_forward<double>(batch, in, out, x.data(), w.data(), b.data(), act, y.data());
      for (index_t r = 0; r < batch; ++r)
        for (index_t j = 0; j < out; ++j) {
          double z = b[j];
          for (index_t k = 0; k < in; ++k) z += x[r * in + k] * w[j * in + k];
          const double want = naive_param_f(act, z, act == Activation::elu ? 1.0 : 0.01);
          EXPECT_NEAR(y[r * out + j], want, 1e-12 * (1 + std::abs(want)))
              << isa_label(isa) << " act=" << int(act);
        }
    }
}

}  // namespace
