// Losses against naive double-precision loops, on every instruction set, float and double.
#include "blockprop/losses.h"

#include <algorithm>

#include "test_util.h"

namespace {

using namespace bptest;

template <typename T>
const char* dtype() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// Relative tolerance of the float / double kernels against the double loops.
template <typename T>
double rtol() {
  return sizeof(T) == 4 ? 2e-6 : 1e-13;
}

struct Expected {
  double loss = 0;
  std::vector<double> grad;
};

// Largest |got − want| over the array, relative to its largest |want| (at least tiny).
template <typename T>
double max_rel_err(const std::vector<T>& got, const std::vector<double>& want) {
  double worst = 0, scale = 1e-300;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - want[i]));
  return worst / scale;
}

// L = Σ(p − t)²/n;  grad = 2(p − t)/n
template <typename T>
Expected naive_mse(const std::vector<T>& p, const std::vector<T>& t) {
  Expected e;
  const double n = double(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double d = double(p[i]) - double(t[i]);
    e.loss += d * d / n;
    e.grad.push_back(2 * d / n);
  }
  return e;
}

// L = Σ(max(z,0) − z·t + log(1 + e^−|z|))/n;  grad = (1/(1 + e^−z) − t)/n
template <typename T>
Expected naive_bce(const std::vector<T>& z, const std::vector<T>& t) {
  Expected e;
  const double n = double(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double zi = z[i], ti = t[i];
    e.loss += (std::max(zi, 0.0) - zi * ti + std::log(1 + std::exp(-std::abs(zi)))) / n;
    e.grad.push_back((1 / (1 + std::exp(-zi)) - ti) / n);
  }
  return e;
}

// L = Σ_r(lse(z_r) − z_r[label_r])/rows;  grad = (exp(z − lse) − onehot)/rows
template <typename T>
Expected naive_cross_entropy(index_t rows, index_t cols, const std::vector<T>& z,
                             const std::vector<std::int64_t>& labels) {
  Expected e;
  e.grad.resize(rows * cols);
  for (index_t r = 0; r < rows; ++r) {
    double mx = z[r * cols];
    for (index_t j = 0; j < cols; ++j) mx = std::max(mx, double(z[r * cols + j]));
    double s = 0;
    for (index_t j = 0; j < cols; ++j) s += std::exp(double(z[r * cols + j]) - mx);
    const double lse = mx + std::log(s);
    e.loss += (lse - double(z[r * cols + labels[r]])) / double(rows);
    for (index_t j = 0; j < cols; ++j)
      e.grad[r * cols + j] = (std::exp(double(z[r * cols + j]) - lse) - (j == labels[r])) / double(rows);
  }
  return e;
}

// Runs loss(n, a, b, grad) on every instruction set and compares with want.
template <typename T, typename Loss>
void check_elementwise(const char* name, Loss loss, const std::vector<T>& a, const std::vector<T>& b,
                       const Expected& want) {
  const index_t n = index_t(a.size());
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    std::vector<T> grad(n, T(-7));
    const double got = loss(n, a.data(), b.data(), grad.data());
    const double got_no_grad = loss(n, a.data(), b.data(), static_cast<T*>(nullptr));
    const std::string where = std::string(name) + " n=" + std::to_string(n) + " dtype=" + dtype<T>() +
                              " " + isa_label(isa);
    EXPECT_TRUE(std::isfinite(got)) << where;
    EXPECT_NEAR(got, want.loss, rtol<T>() * (std::abs(want.loss) + 1)) << where;
    EXPECT_NEAR(got_no_grad, want.loss, rtol<T>() * (std::abs(want.loss) + 1)) << where << " (grad null)";
    EXPECT_LE(max_rel_err(grad, want.grad), rtol<T>()) << where << " (grad)";
  }
}

// Sizes around every vector width (4, 8, 16 lanes), primes, and a few thousand.
const index_t kSizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33, 63, 65, 127, 1000, 4099};

template <typename T>
void mse_sweep() {
  for (index_t n : kSizes) {
    auto p = random_vector<T>(n, 11 + n, -3, 3), t = random_vector<T>(n, 12 + n, -3, 3);
    check_elementwise<T>("mse", [](auto... a) { return blockprop::mse_loss<T>(a...); }, p, t, naive_mse(p, t));
  }
}

template <typename T>
void bce_sweep() {
  for (index_t n : kSizes) {
    auto z = random_vector<T>(n, 21 + n, -20, 20), t = random_vector<T>(n, 22 + n, 0, 1);
    check_elementwise<T>("bce", [](auto... a) { return blockprop::binary_cross_entropy<T>(a...); }, z, t,
                         naive_bce(z, t));
  }
}

template <typename T>
void check_cross_entropy(index_t rows, index_t cols, double scale) {
  auto z = random_vector<T>(rows * cols, 31 + rows * 7 + cols, -scale, scale);
  std::vector<std::int64_t> labels(rows);
  for (index_t r = 0; r < rows; ++r) labels[r] = (r * 7 + 3) % cols;
  const Expected want = naive_cross_entropy(rows, cols, z, labels);
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    std::vector<T> grad(rows * cols, T(-7));
    const double got = blockprop::softmax_cross_entropy<T>(rows, cols, z.data(), labels.data(), grad.data());
    const double got_no_grad =
        blockprop::softmax_cross_entropy<T>(rows, cols, z.data(), labels.data(), nullptr);
    const std::string where = "rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                              " scale=" + std::to_string(scale) + " dtype=" + dtype<T>() + " " + isa_label(isa);
    EXPECT_TRUE(std::isfinite(got)) << where;
    EXPECT_NEAR(got, want.loss, rtol<T>() * (std::abs(want.loss) + 1)) << where;
    EXPECT_NEAR(got_no_grad, want.loss, rtol<T>() * (std::abs(want.loss) + 1)) << where << " (grad null)";
    EXPECT_LE(max_rel_err(grad, want.grad), rtol<T>()) << where << " (grad)";
    for (index_t r = 0; r < rows; ++r) {  // each row of the gradient sums to 0
      double s = 0;
      for (index_t j = 0; j < cols; ++j) s += grad[r * cols + j];
      ASSERT_NEAR(s, 0.0, 1e-5) << where << " row=" << r;
    }
  }
}

template <typename T>
void cross_entropy_sweep() {
  for (index_t rows : {1, 3, 7, 17})
    for (index_t cols : {1, 2, 3, 5, 10, 17, 33, 1000}) check_cross_entropy<T>(rows, cols, 5.0);
}

TEST(Losses, MseFloat) { mse_sweep<float>(); }
TEST(Losses, MseDouble) { mse_sweep<double>(); }
TEST(Losses, BceFloat) { bce_sweep<float>(); }
TEST(Losses, BceDouble) { bce_sweep<double>(); }
TEST(Losses, CrossEntropyFloat) { cross_entropy_sweep<float>(); }
TEST(Losses, CrossEntropyDouble) { cross_entropy_sweep<double>(); }

TEST(Losses, CrossEntropyLargeLogitsStayFinite) {
  check_cross_entropy<float>(9, 13, 1000.0);
  check_cross_entropy<double>(9, 13, 1000.0);
  // The label's logit far below the others: loss ≈ 2000, gradient ≈ onehot of the max − onehot label.
  const std::vector<float> z = {1000.0f, -1000.0f};
  const std::vector<std::int64_t> label = {1};
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    std::vector<float> g(2);
    EXPECT_NEAR(blockprop::softmax_cross_entropy<float>(1, 2, z.data(), label.data(), g.data()), 2000.0, 1e-3)
        << isa_label(isa);
    EXPECT_EQ(g[0], 1.0f) << isa_label(isa);
    EXPECT_EQ(g[1], -1.0f) << isa_label(isa);
  }
}

TEST(Losses, BceLargeLogitsStayFinite) {
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    const std::vector<float> z = {1000.0f, -1000.0f, 1000.0f, -1000.0f, 89.0f, -89.0f};
    const std::vector<float> t = {0.0f, 1.0f, 1.0f, 0.0f, 0.0f, 1.0f};
    std::vector<float> g(z.size());
    const double loss = blockprop::binary_cross_entropy<float>(6, z.data(), t.data(), g.data());
    EXPECT_NEAR(loss, (1000.0 + 1000.0 + 89.0 + 89.0) / 6, 1e-9) << isa_label(isa);
    const float want[] = {1 / 6.0f, -1 / 6.0f, 0, 0, 1 / 6.0f, -1 / 6.0f};
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(g[i], want[i], 1e-7) << isa_label(isa) << " i=" << i;
  }
  auto z = random_vector<double>(37, 5, -1000, 1000), t = random_vector<double>(37, 6, 0, 1);
  check_elementwise<double>("bce", [](auto... a) { return blockprop::binary_cross_entropy<double>(a...); }, z, t,
                            naive_bce(z, t));
}

TEST(Losses, EmptyInputsGiveZeroLoss) {
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    float sentinel = 42.0f;
    EXPECT_EQ(blockprop::mse_loss<float>(0, nullptr, nullptr, &sentinel), 0.0) << isa_label(isa);
    EXPECT_EQ(blockprop::binary_cross_entropy<double>(0, nullptr, nullptr, nullptr), 0.0) << isa_label(isa);
    EXPECT_EQ(blockprop::softmax_cross_entropy<float>(0, 5, nullptr, nullptr, &sentinel), 0.0) << isa_label(isa);
    EXPECT_EQ(sentinel, 42.0f) << isa_label(isa);
  }
}

// weighted_loss: integer weights equal the rows repeated that often (a weight of 0: left out),
// all-zero weights give 0 and a zero gradient.
TEST(Losses, WeightedLossIsTheLossOfRepeatedRows) {
  const std::vector<double> w = {2, 0, 1, 3};
  const auto z = random_vector<double>(4 * 3, 11, -3, 3), t = random_vector<double>(4 * 3, 12, 0, 1);
  const std::vector<std::int64_t> labels = {2, 0, 1, 1};
  std::vector<double> zr, tr;
  std::vector<std::int64_t> lr;
  for (int r = 0; r < 4; ++r)
    for (int k = 0; k < w[r]; ++k) {
      zr.insert(zr.end(), z.begin() + r * 3, z.begin() + r * 3 + 3);
      tr.insert(tr.end(), t.begin() + r * 3, t.begin() + r * 3 + 3);
      lr.push_back(labels[r]);
    }
  const index_t n = static_cast<index_t>(lr.size());
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    std::vector<double> g(12);
    using blockprop::LossKind;
    EXPECT_NEAR(blockprop::weighted_loss<double>(LossKind::mse, 4, 3, z.data(), nullptr, t.data(), w.data(), g.data()),
                blockprop::mse_loss<double>(n * 3, zr.data(), tr.data(), nullptr), 1e-13) << isa_label(isa);
    EXPECT_EQ(g[3], 0.0) << isa_label(isa);
    EXPECT_NEAR(blockprop::weighted_loss<double>(LossKind::bce, 4, 3, z.data(), nullptr, t.data(), w.data(), g.data()),
                blockprop::binary_cross_entropy<double>(n * 3, zr.data(), tr.data(), nullptr), 1e-13) << isa_label(isa);
    EXPECT_NEAR(blockprop::weighted_loss<double>(LossKind::cross_entropy, 4, 3, z.data(), labels.data(), nullptr,
                                                 w.data(), g.data()),
                blockprop::softmax_cross_entropy<double>(n, 3, zr.data(), lr.data(), nullptr), 1e-13) << isa_label(isa);
    const std::vector<double> zero(4, 0.0);
    EXPECT_EQ(blockprop::weighted_loss<double>(LossKind::mse, 4, 3, z.data(), nullptr, t.data(), zero.data(), g.data()),
              0.0) << isa_label(isa);
    EXPECT_TRUE(std::all_of(g.begin(), g.end(), [](double v) { return v == 0.0; })) << isa_label(isa);
  }
}

}  // namespace
