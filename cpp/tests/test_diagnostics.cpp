// Diagnostics reductions and weight penalties against naive loops, on every instruction set.
#include "blockprop/diagnostics.h"

#include <cstring>
#include <limits>

#include "blockprop/threading.h"
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

// --- count_nonfinite -------------------------------------------------------------------------

// A float from its bit pattern (NaN payloads, signs).
template <typename T>
T from_bits(std::uint64_t bits) {
  T x;
  if constexpr (sizeof(T) == 4) {
    const std::uint32_t b = static_cast<std::uint32_t>(bits);
    std::memcpy(&x, &b, 4);
  } else {
    std::memcpy(&x, &bits, 8);
  }
  return x;
}

// Every kind of non-finite value: quiet, signalling, negative and all-ones NaNs, ±inf.
template <typename T>
std::vector<T> nonfinite_values() {
  using lim = std::numeric_limits<T>;
  std::vector<T> v = {lim::quiet_NaN(), -lim::quiet_NaN(), lim::signaling_NaN(), lim::infinity(),
                      -lim::infinity()};
  v.push_back(sizeof(T) == 4 ? from_bits<T>(0xffffffffu) : from_bits<T>(~std::uint64_t(0)));
  v.push_back(sizeof(T) == 4 ? from_bits<T>(0x7f800001u) : from_bits<T>(0x7ff0000000000001u));
  return v;
}

// Finite data that stays finite: random values with zeros, −0, denormals and the extremes mixed in.
template <typename T>
std::vector<T> finite_data(index_t n, std::uint32_t seed) {
  using lim = std::numeric_limits<T>;
  auto x = random_vector<T>(n, seed, -1e3, 1e3);
  const T special[] = {T(0), -T(0), lim::denorm_min(), -lim::denorm_min(), lim::min() / T(2),
                       lim::min(), lim::max(), lim::lowest(), T(1) / lim::max()};
  for (index_t i = 0; i < n; i += 3) x[i] = special[(i / 3) % (sizeof special / sizeof *special)];
  return x;
}

// The count by std::isfinite (this file is compiled without fast-math flags).
template <typename T>
index_t naive_nonfinite(const std::vector<T>& x, index_t lo, index_t n) {
  index_t c = 0;
  for (index_t i = lo; i < lo + n; ++i) c += !std::isfinite(x[i]);
  return c;
}

// On every instruction set: clean data counts 0; one NaN/±inf at the first, middle or last
// position counts 1; a random sprinkling counts what std::isfinite counts. At offset 0 and 1
// (unaligned vectors), on 1 and several threads.
template <typename T>
void check_nonfinite(index_t n) {
  const auto bad = nonfinite_values<T>();
  for (index_t offset : {0, 1}) {
    auto x = finite_data<T>(n + offset, 300 + static_cast<std::uint32_t>(n));
    const T* p = x.data() + offset;
    for (Isa isa : testable_isas()) {
      IsaScope scope(isa);
      const std::string where = isa_label(isa) + " n=" + std::to_string(n) + " offset=" +
                                std::to_string(offset) + " " + (sizeof(T) == 4 ? "float" : "double");
      ASSERT_EQ(blockprop::count_nonfinite<T>(n, p), 0) << where;
      if (n == 0) continue;
      std::size_t k = 0;
      for (index_t pos : {index_t(0), n / 2, n - 1}) {
        const T saved = x[offset + pos];
        for (T v : bad) {
          x[offset + pos] = v;
          ASSERT_EQ(blockprop::count_nonfinite<T>(n, p), 1) << where << " at " << pos << " value #" << k;
          ++k;
        }
        x[offset + pos] = saved;
      }
      // Elements just outside [p, p + n) are not counted.
      std::vector<T> y = x;
      y.insert(y.begin(), bad[3]);
      y.push_back(bad[0]);
      ASSERT_EQ(blockprop::count_nonfinite<T>(n, y.data() + 1 + offset), 0) << where << " outside";
      // Many at random places (about one in 7), and all of them non-finite.
      std::vector<T> z = x;
      std::mt19937 gen(static_cast<std::uint32_t>(n) * 7 + offset);
      for (index_t i = offset; i < n + offset; ++i)
        if (gen() % 7 == 0) z[i] = bad[gen() % bad.size()];
      const index_t want = naive_nonfinite(z, offset, n);
      ASSERT_EQ(blockprop::count_nonfinite<T>(n, z.data() + offset), want) << where << " sprinkled";
      std::vector<T> all(n, bad[static_cast<std::size_t>(n) % bad.size()]);
      ASSERT_EQ(blockprop::count_nonfinite<T>(n, all.data()), n) << where << " all";
    }
  }
}

// Lengths: 0, 1, primes, around every vector width (4, 8, 16 floats; 2, 4, 8 doubles) and the
// kernel's 4-vector step, and around the parallel threshold (blocking::kMinParallelElements, 2¹⁵).
std::vector<index_t> nonfinite_lengths() {
  std::vector<index_t> n = {0, 1, 2, 3, 5, 7, 11, 13, 31, 61, 127, 251, 1021, 4099, 10007};
  for (index_t w : {2, 4, 8, 16, 32, 64})
    for (index_t d : {-1, 0, 1}) n.push_back(w + d);
  for (index_t t : {index_t(1) << 15, index_t(1) << 16})
    for (index_t d : {-65, -1, 0, 1, 63}) n.push_back(t + d);
  n.push_back(100003);
  n.push_back(4 * 4096 * 8 + 17);  // more pieces than one per thread
  return n;
}

TEST(Diagnostics, CountNonfinite) {
  for (index_t n : nonfinite_lengths()) {
    check_nonfinite<float>(n);
    check_nonfinite<double>(n);
  }
}

// The same counts on 1, 2, 3 and 8 threads (the large lengths cut into different pieces).
TEST(Diagnostics, CountNonfiniteThreads) {
  for (index_t n : {index_t(1) << 15, index_t(200003), index_t(1) << 20}) {
    auto f = finite_data<float>(n, 7);
    auto d = finite_data<double>(n, 8);
    std::mt19937 gen(11);
    for (index_t i = 0; i < n; ++i)
      if (gen() % 100 == 0) f[i] = d[i] = std::numeric_limits<float>::infinity();
    f[n - 1] = d[n - 1] = std::numeric_limits<float>::quiet_NaN();
    const index_t want_f = naive_nonfinite(f, 0, n), want_d = naive_nonfinite(d, 0, n);
    ASSERT_GT(want_f, 100);
    for (int threads : {1, 2, 3, 8}) {
      blockprop::set_num_threads(threads);
      for (Isa isa : testable_isas()) {
        IsaScope scope(isa);
        EXPECT_EQ(blockprop::count_nonfinite<float>(n, f.data()), want_f)
            << isa_label(isa) << " threads=" << threads << " n=" << n;
        EXPECT_EQ(blockprop::count_nonfinite<double>(n, d.data()), want_d)
            << isa_label(isa) << " threads=" << threads << " n=" << n;
      }
    }
  }
  blockprop::set_num_threads(0);  // back to the default
}

}  // namespace
