// Scalar activation functions and their derivatives through the output y = f(x), shared by the
// GEMM write-back (fused activation) and the stand-alone activation kernels.
#pragma once
#include "isa/isa_prelude.h"

namespace blockprop {
namespace BP_ISA_NS {

// relu(x) = max(x, 0), NaN kept (as np.maximum does).
template <typename T>
inline T relu(T x) {
  return x < T(0) ? T(0) : x;
}

// sigmoid(x) = 1/(1 + e^−x), written so neither branch overflows.
template <typename T>
inline T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// f applied in place to n elements spaced stride apart.
template <typename T>
inline void apply_activation(Activation act, T* y, index_t n, index_t stride) {
  switch (act) {
    case Activation::linear:
      return;
    case Activation::relu:
      for (index_t j = 0; j < n; ++j) y[j * stride] = relu(y[j * stride]);
      return;
    case Activation::sigmoid:
      for (index_t j = 0; j < n; ++j) y[j * stride] = sigmoid(y[j * stride]);
      return;
    case Activation::tanh:
      for (index_t j = 0; j < n; ++j) y[j * stride] = std::tanh(y[j * stride]);
      return;
  }
}

// f'(x) written through y = f(x).
template <typename T>
inline T activation_derivative(Activation act, T y) {
  switch (act) {
    case Activation::relu: return y > T(0) ? T(1) : T(0);
    case Activation::sigmoid: return y * (T(1) - y);
    case Activation::tanh: return T(1) - y * y;
    case Activation::linear: break;
  }
  return T(1);
}

}  // namespace BP_ISA_NS
}  // namespace blockprop
