// Stand-alone activations and softmax against naive double loops, on every instruction set.
#include "blockprop/activations.h"

#include <algorithm>

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

}  // namespace
