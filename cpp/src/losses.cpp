#include "blockprop/losses.h"

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

// Scalar on purpose: O(rows·cols) once per batch, next to GEMMs of O(rows·cols·in).
template <typename T>
index_t count_correct(index_t rows, index_t cols, const T* logits, const std::int64_t* labels,
                      const T* targets) {
  index_t correct = 0;
  for (index_t i = 0; i < rows; ++i) {
    const T* z = logits + i * cols;
    if (labels) {
      correct += cols > 0 && argmax(z, cols) == labels[i];
    } else {
      bool right = true;
      for (index_t j = 0; j < cols; ++j) right &= (z[j] > T(0)) == (targets[i * cols + j] > T(0.5));
      correct += right;
    }
  }
  return correct;
}

#define BP_INSTANTIATE(T)                                                                    \
  template double mse_loss<T>(index_t, const T*, const T*, T*);                              \
  template double softmax_cross_entropy<T>(index_t, index_t, const T*, const std::int64_t*, \
                                           T*);                                              \
  template double binary_cross_entropy<T>(index_t, const T*, const T*, T*);                  \
  template index_t count_correct<T>(index_t, index_t, const T*, const std::int64_t*, const T*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace blockprop
