// Dropout's counter-based mask against a naive splitmix64 loop, on every instruction set.
#include "blockprop/dropout.h"
#include "test_util.h"

namespace {

using namespace bptest;

std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool keep(double p, std::uint64_t seed, std::uint64_t step, std::uint64_t i) {
  const std::uint64_t g = 0x9E3779B97F4A7C15ull;
  const std::uint64_t h = mix(mix(seed + g * (step + 1)) + g * (i + 1));
  return std::ldexp(double(h >> 11), -53) >= p;
}

template <typename T>
void check(index_t n, double p, std::uint64_t seed, std::uint64_t step) {
  const auto x = random_vector<T>(n, 70 + n);
  const T scale = T(1.0 / (1.0 - p));
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    std::vector<T> y(n), dx(n);
    blockprop::dropout_forward<T>(n, x.data(), y.data(), p, seed, step);
    blockprop::dropout_backward<T>(n, x.data(), dx.data(), p, seed, step);
    for (index_t i = 0; i < n; ++i) {
      const T want = keep(p, seed, step, i) ? x[i] * scale : T(0);
      ASSERT_EQ(y[i], want) << isa_label(isa) << " n=" << n << " p=" << p << " i=" << i;
      ASSERT_EQ(dx[i], want) << isa_label(isa) << " backward i=" << i;
    }
  }
}

TEST(Dropout, MatchesNaiveMask) {
  for (index_t n : {1, 7, 64, 1001})
    for (double p : {0.0, 0.25, 0.5, 0.9}) {
      check<float>(n, p, 1234, 5);
      check<double>(n, p, ~0ull, ~0ull);
    }
}

TEST(Dropout, RateOneDropsEverythingAndRateIsRespected) {
  const index_t n = 100000;
  std::vector<float> x(n, 1.0f), y(n);
  blockprop::dropout_forward<float>(n, x.data(), y.data(), 1.0, 3, 0);
  for (float v : y) ASSERT_EQ(v, 0.0f);
  blockprop::dropout_forward<float>(n, x.data(), y.data(), 0.2, 3, 0);
  index_t kept = 0;
  for (float v : y) kept += v != 0;
  EXPECT_NEAR(double(kept) / n, 0.8, 0.005);
}

}  // namespace
