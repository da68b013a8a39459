// SGD and Adam against naive double-precision loops, on every instruction set, float and double;
// updates long enough to run on several threads give the same bits as on one thread.
#include "blockprop/optimizers.h"

#include <algorithm>

#include "blockprop/threading.h"
#include "test_util.h"

namespace {

using namespace bptest;
using blockprop::AdamParams;
using blockprop::SgdParams;

template <typename T>
const char* dtype() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// Tolerance on parameters of order 1 after updates of order lr = 0.1.
template <typename T>
double tol() {
  return sizeof(T) == 4 ? 1e-5 : 1e-12;
}

template <typename T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

template <typename T>
double max_err(const std::vector<T>& got, const std::vector<double>& want) {
  double worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - want[i]) / (1 + std::abs(want[i])));
  return worst;
}

// g = grad + wd·p;  v = μ·v + g;  p −= lr·(nesterov ? g + μ·v : v)   (p −= lr·g when μ = 0)
void naive_sgd(std::vector<double>& p, const std::vector<double>& grad, std::vector<double>& v,
               const SgdParams& hp) {
  for (std::size_t i = 0; i < p.size(); ++i) {
    double g = grad[i] + hp.weight_decay * p[i];
    if (hp.momentum != 0) {
      v[i] = hp.momentum * v[i] + g;
      g = hp.nesterov ? g + hp.momentum * v[i] : v[i];
    }
    p[i] -= hp.lr * g;
  }
}

// m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= lr·m̂/(sqrt(v̂) + eps), with L2 or AdamW decay
void naive_adam(std::vector<double>& p, const std::vector<double>& grad, std::vector<double>& m,
                std::vector<double>& v, const AdamParams& hp) {
  for (std::size_t i = 0; i < p.size(); ++i) {
    double g = grad[i];
    if (hp.weight_decay != 0 && !hp.decoupled_weight_decay) g += hp.weight_decay * p[i];
    if (hp.weight_decay != 0 && hp.decoupled_weight_decay) p[i] -= hp.lr * hp.weight_decay * p[i];
    m[i] = hp.beta1 * m[i] + (1 - hp.beta1) * g;
    v[i] = hp.beta2 * v[i] + (1 - hp.beta2) * g * g;
    const double m_hat = m[i] / (1 - std::pow(hp.beta1, double(hp.step)));
    const double v_hat = v[i] / (1 - std::pow(hp.beta2, double(hp.step)));
    p[i] -= hp.lr * m_hat / (std::sqrt(v_hat) + hp.eps);
  }
}

const index_t kSizes[] = {1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 33, 64, 65, 127, 1000, 4099};

std::string sgd_label(const SgdParams& hp) {
  return "momentum=" + std::to_string(hp.momentum) + " nesterov=" + std::to_string(hp.nesterov) +
         " wd=" + std::to_string(hp.weight_decay);
}

template <typename T>
void check_sgd(index_t n, const SgdParams& hp) {
  const auto p0 = random_vector<T>(n, 1 + n), g = random_vector<T>(n, 2 + n), v0 = random_vector<T>(n, 3 + n);
  auto want_p = to_double(p0), want_v = to_double(v0);
  naive_sgd(want_p, to_double(g), want_v, hp);
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    auto p = p0, v = v0;
    blockprop::sgd_step<T>(n, p.data(), g.data(), hp.momentum != 0 ? v.data() : nullptr, hp);
    const std::string where =
        "n=" + std::to_string(n) + " dtype=" + dtype<T>() + " " + sgd_label(hp) + " " + isa_label(isa);
    EXPECT_LE(max_err(p, want_p), tol<T>()) << where << " (param)";
    EXPECT_LE(max_err(v, want_v), tol<T>()) << where << " (velocity)";
  }
}

template <typename T>
void sgd_sweep() {
  for (index_t n : kSizes)
    for (double mu : {0.0, 0.9})
      for (bool nesterov : {false, true})
        for (double wd : {0.0, 0.05}) {
          if (nesterov && mu == 0) continue;
          SgdParams hp;
          hp.lr = 0.1;
          hp.momentum = mu;
          hp.nesterov = nesterov;
          hp.weight_decay = wd;
          check_sgd<T>(n, hp);
        }
}

template <typename T>
void check_adam(index_t n, const AdamParams& hp) {
  const auto p0 = random_vector<T>(n, 4 + n), g = random_vector<T>(n, 5 + n);
  // Moments as after earlier steps (v ≥ 0); zero at step 1, as an optimizer starts.
  auto m0 = random_vector<T>(n, 6 + n, -0.1, 0.1), v0 = random_vector<T>(n, 7 + n, 0.0, 0.1);
  if (hp.step == 1) std::fill(m0.begin(), m0.end(), T(0)), std::fill(v0.begin(), v0.end(), T(0));
  auto want_p = to_double(p0), want_m = to_double(m0), want_v = to_double(v0);
  naive_adam(want_p, to_double(g), want_m, want_v, hp);
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    auto p = p0, m = m0, v = v0;
    blockprop::adam_step<T>(n, p.data(), g.data(), m.data(), v.data(), hp);
    const std::string where = "n=" + std::to_string(n) + " dtype=" + dtype<T>() + " step=" +
                              std::to_string(hp.step) + " wd=" + std::to_string(hp.weight_decay) +
                              " decoupled=" + std::to_string(hp.decoupled_weight_decay) + " " + isa_label(isa);
    EXPECT_LE(max_err(p, want_p), tol<T>()) << where << " (param)";
    EXPECT_LE(max_err(m, want_m), tol<T>()) << where << " (m)";
    EXPECT_LE(max_err(v, want_v), tol<T>()) << where << " (v)";
  }
}

template <typename T>
void adam_sweep() {
  for (index_t n : kSizes)
    for (std::int64_t step : {1, 10})
      for (int decay = 0; decay < 3; ++decay) {
        AdamParams hp;
        hp.lr = 0.1;
        hp.step = step;
        hp.weight_decay = decay ? 0.05 : 0.0;
        hp.decoupled_weight_decay = decay == 2;
        check_adam<T>(n, hp);
      }
}

TEST(Sgd, SweepFloat) { sgd_sweep<float>(); }
TEST(Sgd, SweepDouble) { sgd_sweep<double>(); }
TEST(Adam, SweepFloat) { adam_sweep<float>(); }
TEST(Adam, SweepDouble) { adam_sweep<double>(); }

TEST(Sgd, NesterovDiffersFromPlainMomentum) {
  // p = 1, g = 1, v = 1, μ = 0.5, lr = 1: v' = 1.5; plain p' = 1 − 1.5; nesterov p' = 1 − (1 + 0.75).
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    for (bool nesterov : {false, true}) {
      SgdParams hp;
      hp.lr = 1.0;
      hp.momentum = 0.5;
      hp.nesterov = nesterov;
      double p = 1, g = 1, v = 1;
      blockprop::sgd_step<double>(1, &p, &g, &v, hp);
      EXPECT_EQ(v, 1.5) << isa_label(isa);
      EXPECT_EQ(p, nesterov ? -0.75 : -0.5) << isa_label(isa) << " nesterov=" << nesterov;
    }
  }
}

TEST(Sgd, WeightDecayAddsToGradient) {
  // g = 0, wd = 0.5, p = 2, lr = 0.1: p' = 2 − 0.1·(0 + 1) = 1.9
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    SgdParams hp;
    hp.lr = 0.1;
    hp.weight_decay = 0.5;
    std::vector<double> p(19, 2.0), g(19, 0.0);
    blockprop::sgd_step<double>(19, p.data(), g.data(), nullptr, hp);
    for (double x : p) ASSERT_DOUBLE_EQ(x, 1.9) << isa_label(isa);
  }
}

TEST(Adam, FirstStepMovesByLrTimesSign) {
  // At step 1 from zero moments the bias corrections make m̂ = g and v̂ = g², so p' = p − lr·g/(|g| + eps).
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    AdamParams hp;
    hp.lr = 0.01;
    const index_t n = 37;
    auto g = random_vector<float>(n, 9);
    std::vector<float> p(n, 1.0f), m(n, 0.0f), v(n, 0.0f);
    blockprop::adam_step<float>(n, p.data(), g.data(), m.data(), v.data(), hp);
    for (index_t i = 0; i < n; ++i) {
      const double want = 1.0 - 0.01 * g[i] / (std::abs(double(g[i])) + 1e-8);
      ASSERT_NEAR(p[i], want, 1e-6) << isa_label(isa) << " i=" << i;
    }
  }
}

TEST(Adam, DecoupledDecayShrinksParamWithZeroGradient) {
  // g = 0 keeps m = v = 0, so only AdamW's decay acts: p' = p·(1 − lr·wd);
  // L2 decay instead enters g (so m ≠ 0) and moves p by lr·sign(g).
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    for (bool decoupled : {true, false}) {
      AdamParams hp;
      hp.lr = 0.1;
      hp.weight_decay = 0.5;
      hp.decoupled_weight_decay = decoupled;
      double p = 2, g = 0, m = 0, v = 0;
      blockprop::adam_step<double>(1, &p, &g, &m, &v, hp);
      EXPECT_NEAR(p, decoupled ? 1.9 : 2.0 - 0.1, 1e-7) << isa_label(isa) << " decoupled=" << decoupled;
      EXPECT_EQ(m == 0, decoupled) << isa_label(isa);
    }
  }
}


// Updates long enough to run on several threads give the same bits as on one thread, and as a
// naive loop.

template <typename T>
void check_threads(bool adam) {
  const index_t n = 100003;  // above the parallel threshold, not a multiple of any vector width
  const auto p0 = random_vector<T>(n, 11), g = random_vector<T>(n, 12), s0 = random_vector<T>(n, 13, 0.0, 1.0);
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    std::vector<T> p[2] = {p0, p0}, s1[2] = {s0, s0}, s2[2] = {s0, s0};
    for (int t = 0; t < 2; ++t) {
      blockprop::set_num_threads(t + 1);
      if (adam) {
        blockprop::AdamParams hp;
        hp.step = 3;
        hp.weight_decay = 0.01;
        blockprop::adam_step<T>(n, p[t].data(), g.data(), s1[t].data(), s2[t].data(), hp);
      } else {
        blockprop::SgdParams hp;
        hp.lr = 0.1;
        hp.momentum = 0.9;
        hp.weight_decay = 0.01;
        blockprop::sgd_step<T>(n, p[t].data(), g.data(), s1[t].data(), hp);
      }
    }
    blockprop::set_num_threads(0);
    EXPECT_EQ(p[0], p[1]) << isa_label(isa) << (adam ? " adam" : " sgd");
    EXPECT_EQ(s1[0], s1[1]) << isa_label(isa);
    if (!adam) {  // naive SGD with momentum and weight decay, in double
      for (index_t i = 0; i < n; i += 997) {
        const double v = 0.9 * double(s0[i]) + double(g[i]) + 0.01 * double(p0[i]);
        EXPECT_NEAR(double(p[0][i]), double(p0[i]) - 0.1 * v, 1e-5) << "i=" << i << " " << isa_label(isa);
      }
    }
  }
}

TEST(OptimizerThreads, SgdFloat) { check_threads<float>(false); }
TEST(OptimizerThreads, SgdDouble) { check_threads<double>(false); }
TEST(OptimizerThreads, AdamFloat) { check_threads<float>(true); }
TEST(OptimizerThreads, AdamDouble) { check_threads<double>(true); }

}  // namespace
