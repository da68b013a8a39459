#include "blockprop/dropout.h"

#include "dispatch.h"

namespace blockprop {

template <typename T>
void dropout_forward(index_t n, const T* x, T* y, double p, std::uint64_t seed, std::uint64_t step) {
  BP_DISPATCH(dropout_mask_apply<T>, n, x, y, p, seed, step);
}

// The same mask multiplies the gradient: dx = dy ⊙ keep/(1 − p).
template <typename T>
void dropout_backward(index_t n, const T* dy, T* dx, double p, std::uint64_t seed,
                      std::uint64_t step) {
  BP_DISPATCH(dropout_mask_apply<T>, n, dy, dx, p, seed, step);
}

#define BP_INSTANTIATE(T)                                                                   \
  template void dropout_forward<T>(index_t, const T*, T*, double, std::uint64_t, std::uint64_t); \
  template void dropout_backward<T>(index_t, const T*, T*, double, std::uint64_t, std::uint64_t);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace blockprop
