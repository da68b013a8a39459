// Reductions for training diagnostics and weight penalties, one build per instruction set.
// Sums run in double with one partial sum per SIMD lane (so they vectorize instead of waiting on
// one add chain): deterministic for a given instruction set, whatever the thread count.
#include "isa/isa_prelude.h"

namespace blockprop {
namespace BP_ISA_NS {

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
  template double sum_squared_diff<T>(index_t, const T*, const T*);              \
  template void mark_active<T>(index_t, index_t, const T*, std::uint8_t*);       \
  template double weight_penalty<T>(index_t, const T*, double, double, T*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace BP_ISA_NS
}  // namespace blockprop
