#include "blockprop/losses.h"

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

#define BP_INSTANTIATE(T)                                                                    \
  template double mse_loss<T>(index_t, const T*, const T*, T*);                              \
  template double softmax_cross_entropy<T>(index_t, index_t, const T*, const std::int64_t*, \
                                           T*);                                              \
  template double binary_cross_entropy<T>(index_t, const T*, const T*, T*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace blockprop
