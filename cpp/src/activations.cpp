#include "blockprop/activations.h"

#include "dispatch.h"

namespace blockprop {

namespace {
double fused_param(Activation act) { return act == Activation::elu ? kEluAlpha : kLeakySlope; }
}  // namespace

template <typename T>
void activation_forward(Activation act, index_t n, const T* x, T* y, double param) {
  BP_DISPATCH(activation_forward<T>, act, n, x, y, param);
}

template <typename T>
void activation_forward(Activation act, index_t n, const T* x, T* y) {
  activation_forward<T>(act, n, x, y, fused_param(act));
}

template <typename T>
void activation_backward(Activation act, index_t n, const T* dy, const T* v, T* dx, double param) {
  BP_DISPATCH(activation_backward<T>, act, n, dy, v, dx, param);
}

template <typename T>
void activation_backward(Activation act, index_t n, const T* dy, const T* v, T* dx) {
  activation_backward<T>(act, n, dy, v, dx, fused_param(act));
}

template <typename T>
void softmax_forward(index_t rows, index_t cols, const T* x, T* y) {
  BP_DISPATCH(softmax_forward<T>, rows, cols, x, y);
}

template <typename T>
void softmax_backward(index_t rows, index_t cols, const T* dy, const T* y, T* dx) {
  BP_DISPATCH(softmax_backward<T>, rows, cols, dy, y, dx);
}

#define BP_INSTANTIATE(T)                                                               \
  template void activation_forward<T>(Activation, index_t, const T*, T*);               \
  template void activation_forward<T>(Activation, index_t, const T*, T*, double);       \
  template void activation_backward<T>(Activation, index_t, const T*, const T*, T*);    \
  template void activation_backward<T>(Activation, index_t, const T*, const T*, T*, double); \
  template void softmax_forward<T>(index_t, index_t, const T*, T*);                     \
  template void softmax_backward<T>(index_t, index_t, const T*, const T*, T*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace blockprop
