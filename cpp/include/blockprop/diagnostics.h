// Cheap reductions for training diagnostics (gradient and weight norms, update sizes, dead units)
// and weight penalties. Each sums in double (one partial sum per SIMD lane), so results do not
// depend on the thread count.
#pragma once
#include <cstdint>

#include "blockprop/types.h"

namespace blockprop {

// Σ x²
template <typename T>
double sum_squares(index_t n, const T* x);

// How many of x[0..n) are NaN, +inf or −inf (exponent bits all ones; any NaN payload or sign).
// Exact and independent of the thread count; long arrays are split across the thread pool.
template <typename T>
index_t count_nonfinite(index_t n, const T* x);

// Σ (a − b)²
template <typename T>
double sum_squared_diff(index_t n, const T* a, const T* b);

// active[j] |= (∃ r: y[r,j] > 0) over a contiguous rows × cols batch: which units fired at least
// once. Accumulates, so one array covers a whole epoch.
template <typename T>
void mark_active(index_t rows, index_t cols, const T* y, std::uint8_t* active);

// Weight penalty P = l1·Σ|w| + l2·Σw², returned; grad (if not null) += l1·sign(w) + 2·l2·w.
template <typename T>
double weight_penalty(index_t n, const T* w, double l1, double l2, T* grad);

}  // namespace blockprop
