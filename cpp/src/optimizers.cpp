#include "blockprop/optimizers.h"

#include "dispatch.h"

namespace blockprop {

template <typename T>
void sgd_step(index_t n, T* param, const T* grad, T* velocity, const SgdParams& hp) {
  BP_DISPATCH(sgd_step<T>, n, param, grad, velocity, hp);
}

template <typename T>
void adam_step(index_t n, T* param, const T* grad, T* m, T* v, const AdamParams& hp) {
  BP_DISPATCH(adam_step<T>, n, param, grad, m, v, hp);
}

#define BP_INSTANTIATE(T)                                                            \
  template void sgd_step<T>(index_t, T*, const T*, T*, const SgdParams&);            \
  template void adam_step<T>(index_t, T*, const T*, T*, T*, const AdamParams&);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace blockprop
