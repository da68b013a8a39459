#include "blockprop/losses.h"

#include <algorithm>
#include <cmath>

#include "dispatch.h"

namespace blockprop {

template <typename T>
double mse_loss(index_t n, const T* pred, const T* target, T* grad) {
  BP_DISPATCH(mse_loss<T>, n, pred, target, grad);
}

template <typename T>
double softmax_cross_entropy(index_t rows, index_t cols, const T* logits,
                             const std::int64_t* labels, T* grad) {
  BP_DISPATCH(softmax_cross_entropy<T>, rows, cols, logits, labels, grad);
}

template <typename T>
double binary_cross_entropy(index_t n, const T* logits, const T* targets, T* grad) {
  BP_DISPATCH(binary_cross_entropy<T>, n, logits, targets, grad);
}

namespace {

// np.argmax's index: the first maximum, or the first NaN (NumPy treats NaN as the largest value).
template <typename T>
index_t argmax(const T* v, index_t n) {
  index_t best = 0;
  for (index_t j = 0; j < n; ++j) {
    if (std::isnan(v[j])) return j;
    if (v[j] > v[best]) best = j;
  }
  return best;
}

}  // namespace

// Row by row through the kernels above, so each ℓ_r is exactly what they give for that row.
template <typename T>
double weighted_loss(LossKind kind, index_t rows, index_t cols, const T* pred,
                     const std::int64_t* labels, const T* targets, const double* weights, T* grad) {
  double wsum = 0;
  for (index_t r = 0; r < rows; ++r) wsum += weights[r];
  if (wsum == 0) {
    if (grad) std::fill_n(grad, rows * cols, T(0));
    return 0.0;
  }
  double total = 0;
  for (index_t r = 0; r < rows; ++r) {
    const T* z = pred + r * cols;
    T* g = grad ? grad + r * cols : nullptr;
    double l = 0;
    switch (kind) {
      case LossKind::mse: l = mse_loss<T>(cols, z, targets + r * cols, g); break;
      case LossKind::cross_entropy: l = softmax_cross_entropy<T>(1, cols, z, labels + r, g); break;
      case LossKind::bce: l = binary_cross_entropy<T>(cols, z, targets + r * cols, g); break;
    }
    total += weights[r] * l;
    if (g) {
      const T s = static_cast<T>(weights[r] / wsum);
      for (index_t j = 0; j < cols; ++j) g[j] *= s;
    }
  }
  return total / wsum;
}

// Whether row i is classified right (the rule of count_correct in losses.h). Scalar on purpose:
// O(rows·cols) once per batch, next to GEMMs of O(rows·cols·in).
template <typename T>
static bool row_correct(index_t i, index_t cols, const T* logits, const std::int64_t* labels,
                        const T* targets) {
  const T* z = logits + i * cols;
  if (labels) return cols > 0 && argmax(z, cols) == labels[i];
  bool right = true;
  for (index_t j = 0; j < cols; ++j) right &= (z[j] > T(0)) == (targets[i * cols + j] > T(0.5));
  return right;
}

template <typename T>
index_t count_correct(index_t rows, index_t cols, const T* logits, const std::int64_t* labels,
                      const T* targets) {
  index_t correct = 0;
  for (index_t i = 0; i < rows; ++i) correct += row_correct(i, cols, logits, labels, targets);
  return correct;
}

template <typename T>
double weighted_correct(index_t rows, index_t cols, const T* logits, const std::int64_t* labels,
                        const T* targets, const double* weights) {
  double correct = 0;
  for (index_t i = 0; i < rows; ++i)
    if (row_correct(i, cols, logits, labels, targets)) correct += weights[i];
  return correct;
}

#define BP_INSTANTIATE(T)                                                                    \
  template double mse_loss<T>(index_t, const T*, const T*, T*);                              \
  template double weighted_loss<T>(LossKind, index_t, index_t, const T*, const std::int64_t*,  \
                                   const T*, const double*, T*);                              \
  template double softmax_cross_entropy<T>(index_t, index_t, const T*, const std::int64_t*, \
                                           T*);                                              \
  template double binary_cross_entropy<T>(index_t, const T*, const T*, T*);                  \
  template index_t count_correct<T>(index_t, index_t, const T*, const std::int64_t*, const T*); \
  template double weighted_correct<T>(index_t, index_t, const T*, const std::int64_t*, const T*, \
                                      const double*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace blockprop
