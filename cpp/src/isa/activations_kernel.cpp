// Stand-alone activations, forward and backward, one build per instruction set.
#include "isa/isa_prelude.h"

#include "isa/activation_math.h"

namespace blockprop {
namespace BP_ISA_NS {

template <typename T>
void activation_forward(Activation act, index_t n, const T* x, T* y, double param) {
  if (y != x)
    for (index_t i = 0; i < n; ++i) y[i] = x[i];
  apply_activation(act, y, n, 1, T(param));
}

// dx = dy ⊙ f'(x), through v = y (v = x for GELU)
template <typename T>
void activation_backward(Activation act, index_t n, const T* dy, const T* v, T* dx, double param) {
  const T p = T(param);
  switch (act) {
    case Activation::linear:
      for (index_t i = 0; i < n; ++i) dx[i] = dy[i];
      return;
    case Activation::relu:
      for (index_t i = 0; i < n; ++i) dx[i] = v[i] > T(0) ? dy[i] : T(0);
      return;
    case Activation::sigmoid:
      for (index_t i = 0; i < n; ++i) dx[i] = dy[i] * (v[i] * (T(1) - v[i]));
      return;
    case Activation::tanh:
      for (index_t i = 0; i < n; ++i) dx[i] = dy[i] * (T(1) - v[i] * v[i]);
      return;
    case Activation::leaky_relu:
      for (index_t i = 0; i < n; ++i) dx[i] = v[i] > T(0) ? dy[i] : dy[i] * p;
      return;
    default:  // elu, gelu, softplus
      for (index_t i = 0; i < n; ++i) dx[i] = dy[i] * activation_derivative(act, v[i], p);
      return;
  }
}

// y = exp(x − max) / Σ exp(x − max), row by row
template <typename T>
void softmax_forward(index_t rows, index_t cols, const T* x, T* y) {
  for (index_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T mx = xr[0];
    for (index_t j = 1; j < cols; ++j) mx = xr[j] > mx ? xr[j] : mx;
    T sum = T(0);
    for (index_t j = 0; j < cols; ++j) {
      yr[j] = std::exp(xr[j] - mx);
      sum += yr[j];
    }
    const T inv = T(1) / sum;
    for (index_t j = 0; j < cols; ++j) yr[j] *= inv;
  }
}

// dx = y ⊙ (dy − ⟨dy, y⟩), row by row
template <typename T>
void softmax_backward(index_t rows, index_t cols, const T* dy, const T* y, T* dx) {
  for (index_t r = 0; r < rows; ++r) {
    const T* dyr = dy + r * cols;
    const T* yr = y + r * cols;
    T* dxr = dx + r * cols;
    T dot = T(0);
    for (index_t j = 0; j < cols; ++j) dot += dyr[j] * yr[j];
    for (index_t j = 0; j < cols; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
  }
}

#define BP_INSTANTIATE(T)                                                               \
  template void activation_forward<T>(Activation, index_t, const T*, T*, double);       \
  template void activation_backward<T>(Activation, index_t, const T*, const T*, T*, double); \
  template void softmax_forward<T>(index_t, index_t, const T*, T*);                     \
  template void softmax_backward<T>(index_t, index_t, const T*, const T*, T*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace BP_ISA_NS
}  // namespace blockprop
