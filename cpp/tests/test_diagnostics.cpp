// Diagnostics reductions and weight penalties against naive loops, on every instruction set.
#include "blockprop/diagnostics.h"
#include "test_util.h"

namespace {

using namespace bptest;

template <typename T>
void check(index_t rows, index_t cols) {
  const index_t n = rows * cols;
  auto a = random_vector<T>(n, 90 + n), b = random_vector<T>(n, 91 + n);
  for (index_t r = 0; r < rows; ++r) a[r * cols] = -std::abs(a[r * cols]);  // unit 0 never fires
  double ss = 0, sd = 0, l1 = 0, l2 = 0;
  for (index_t i = 0; i < n; ++i) {
    ss += double(a[i]) * a[i];
    sd += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    l1 += std::abs(double(a[i]));
    l2 += double(a[i]) * a[i];
  }
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    EXPECT_NEAR(blockprop::sum_squares<T>(n, a.data()), ss, 1e-12 * ss) << isa_label(isa);
    EXPECT_NEAR(blockprop::sum_squared_diff<T>(n, a.data(), b.data()), sd, 1e-12 * sd) << isa_label(isa);
    std::vector<std::uint8_t> active(cols, 0);
    blockprop::mark_active<T>(rows, cols, a.data(), active.data());
    for (index_t j = 0; j < cols; ++j) {
      bool any = false;
      for (index_t r = 0; r < rows; ++r) any |= a[r * cols + j] > 0;
      EXPECT_EQ(bool(active[j]), any) << isa_label(isa) << " unit " << j;
    }
    EXPECT_FALSE(active[0]);
    std::vector<T> grad = b;
    const double p = blockprop::weight_penalty<T>(n, a.data(), 0.1, 0.2, grad.data());
    EXPECT_NEAR(p, 0.1 * l1 + 0.2 * l2, 1e-12 * (l1 + l2)) << isa_label(isa);
    for (index_t i = 0; i < n; ++i) {
      const double sign = a[i] > 0 ? 1 : (a[i] < 0 ? -1 : 0);
      EXPECT_NEAR(grad[i], b[i] + 0.1 * sign + 0.4 * a[i], sizeof(T) == 4 ? 1e-6 : 1e-15) << isa_label(isa);
    }
    EXPECT_EQ(blockprop::weight_penalty<T>(n, a.data(), 0.0, 0.0, nullptr), 0.0);
  }
}

TEST(Diagnostics, ReductionsAndPenalty) {
  for (auto [r, c] : {std::pair<index_t, index_t>{1, 1}, {7, 5}, {100, 33}}) {
    check<float>(r, c);
    check<double>(r, c);
  }
}

}  // namespace
