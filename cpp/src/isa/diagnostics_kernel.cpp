// Reductions for training diagnostics and weight penalties, and the count of non-finite values
// behind the input checks, one build per instruction set.
// Sums run in double with one partial sum per SIMD lane (so they vectorize instead of waiting on
// one add chain): deterministic for a given instruction set, whatever the thread count.
#include "isa/isa_prelude.h"

#include <algorithm>

#include "blockprop/threading.h"
#include "isa/blocking.h"
#include "isa/simd.h"

namespace blockprop {
namespace BP_ISA_NS {

// count_nonfinite on one thread. The test is on the bits, not x != x, so no floating-point flag
// can fold it away: x is NaN or ±inf when its exponent field is all ones. The data is read as
// 32-bit words, so the compare vectorizes on every instruction set (SSE2 has no 64-bit compare):
// a float is one word; a double's exponent lies in its high word (the odd word, little-endian),
// and its low word is tested against an impossible pattern (mask 0, want 1). Each word lane
// counts in its own integer (adding the −1 of a true comparison); blocks of kBlock elements keep
// that count far from overflowing.
template <typename T>
index_t count_nonfinite_range(index_t n, const T* x) {
  typedef std::int32_t ivec __attribute__((vector_size(BP_VEC_BYTES)));
  constexpr index_t L = lanes<T>;                         // elements per vector
  constexpr int W = BP_VEC_BYTES / 4;                     // words per vector
  constexpr index_t kBlock = index_t(1) << 24;            // ≤ 2²⁴ increments per lane per block
  constexpr int high = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 1 : 0;
  constexpr std::uint32_t exp_word = sizeof(T) == 4 ? 0x7f800000u : 0x7ff00000u;
  ivec mask{}, want{};
  for (int w = 0; w < W; ++w) {
    const bool tested = sizeof(T) == 4 || w % 2 == high;
    mask[w] = tested ? std::int32_t(exp_word) : 0;
    want[w] = tested ? std::int32_t(exp_word) : 1;
  }
  index_t count = 0, i = 0;
  while (n - i >= 4 * L) {
    const index_t end = i + std::min(n - i, kBlock) / (4 * L) * (4 * L);
    ivec acc0{}, acc1{};
    for (; i < end; i += 4 * L) {
      const ivec b0 = (ivec)vload(x + i), b1 = (ivec)vload(x + i + L);
      const ivec b2 = (ivec)vload(x + i + 2 * L), b3 = (ivec)vload(x + i + 3 * L);
      acc0 += ((b0 & mask) == want) + ((b1 & mask) == want);
      acc1 += ((b2 & mask) == want) + ((b3 & mask) == want);
    }
    const ivec acc = acc0 + acc1;
    for (int w = 0; w < W; ++w) count -= acc[w];
  }
  for (; i < n; ++i) {
    std::uint32_t words[sizeof(T) / 4];
    std::memcpy(words, x + i, sizeof(T));
    count += (words[sizeof(T) == 4 ? 0 : high] & exp_word) == exp_word;
  }
  return count;
}

// NaN and ±inf counted; from kMinParallelElements on, in up to kMaxPieces pieces on the pool
// (each piece's count in its own slot, added in order: the same total on any thread count).
template <typename T>
index_t count_nonfinite(index_t n, const T* x) {
  constexpr index_t kMaxPieces = 64;
  const index_t nt = n >= blocking::kMinParallelElements ? get_num_threads() : 1;
  if (nt <= 1) return count_nonfinite_range(n, x);
  const index_t want = std::min(kMaxPieces, nt * blocking::kChunksPerThread);
  // ⌈n/want⌉ rounded up to 1024 elements, so pieces ≤ want ≤ kMaxPieces
  const index_t step = std::max<index_t>(4096, ((n + want - 1) / want + 1023) / 1024 * 1024);
  const index_t pieces = (n + step - 1) / step;
  index_t counts[kMaxPieces] = {};
  auto piece = [&](index_t p) {
    const index_t lo = p * step, hi = std::min(n, lo + step);
    counts[p] = count_nonfinite_range(hi - lo, x + lo);
  };
  parallel_for(pieces, static_cast<int>(std::min(nt, pieces)), piece);
  index_t count = 0;
  for (index_t p = 0; p < pieces; ++p) count += counts[p];
  return count;
}

// Σ x²
template <typename T>
double sum_squares(index_t n, const T* x) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (index_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  return s;
}

// Σ (a − b)²
template <typename T>
double sum_squared_diff(index_t n, const T* a, const T* b) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (index_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - double(b[i]);
    s += d * d;
  }
  return s;
}

// active[j] |= ∃ r: y[r,j] > 0
template <typename T>
void mark_active(index_t rows, index_t cols, const T* y, std::uint8_t* active) {
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) active[j] |= std::uint8_t(y[r * cols + j] > T(0));
}

// P = l1·Σ|w| + l2·Σw²;  grad += l1·sign(w) + 2·l2·w
template <typename T>
double weight_penalty(index_t n, const T* w, double l1, double l2, T* grad) {
  double s1 = 0.0, s2 = 0.0;
#pragma omp simd reduction(+ : s1, s2)
  for (index_t i = 0; i < n; ++i) {
    s1 += std::fabs(double(w[i]));
    s2 += double(w[i]) * double(w[i]);
  }
  if (grad) {
    const T a = T(l1), b = T(2.0 * l2);
    for (index_t i = 0; i < n; ++i) {
      const T sign = w[i] > T(0) ? T(1) : (w[i] < T(0) ? T(-1) : T(0));
      grad[i] += a * sign + b * w[i];
    }
  }
  return l1 * s1 + l2 * s2;
}

#define BP_INSTANTIATE(T)                                                         \
  template double sum_squares<T>(index_t, const T*);                             \
  template index_t count_nonfinite<T>(index_t, const T*);                        \
  template double sum_squared_diff<T>(index_t, const T*, const T*);              \
  template void mark_active<T>(index_t, index_t, const T*, std::uint8_t*);       \
  template double weight_penalty<T>(index_t, const T*, double, double, T*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace BP_ISA_NS
}  // namespace blockprop
