// Scalar activation functions and their derivatives, shared by the GEMM write-back (fused
// activation) and the stand-alone activation kernels.
//
// Derivatives are written through the output y = f(x), which every layer keeps, for every
// activation that is invertible on the part that matters: relu/leaky_relu (sign of y is the sign of
// x), sigmoid, tanh, elu (f'(x) = y + α for x ≤ 0) and softplus (f'(x) = sigmoid(x) = 1 − e^−y).
// GELU is not monotone, so its derivative is written through the pre-activation x instead
// (the layers keep x for it).
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

// leaky_relu(x) = x for x > 0, slope·x otherwise (NaN kept).
template <typename T>
inline T leaky_relu(T x, T slope) {
  return x < T(0) ? slope * x : x;
}

// elu(x) = x for x > 0, α·(e^x − 1) otherwise.
template <typename T>
inline T elu(T x, T alpha) {
  return x > T(0) ? x : alpha * std::expm1(x);
}

// gelu(x) = x·Φ(x) = x·(1 + erf(x/√2))/2   (exact form, PyTorch's default)
template <typename T>
inline T gelu(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
}

// gelu'(x) = Φ(x) + x·φ(x),  φ(x) = e^(−x²/2)/√(2π)
template <typename T>
inline T gelu_derivative(T x) {
  const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
  return cdf + x * (T(0.39894228040143267794) * std::exp(T(-0.5) * x * x));
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^−|x|), which never overflows.
template <typename T>
inline T softplus(T x) {
  return (x > T(0) ? x : T(0)) + std::log1p(std::exp(-std::fabs(x)));
}

// The parameter an activation takes (slope, alpha) when fused, where it has one.
template <typename T>
inline T default_param(Activation act) {
  return act == Activation::elu ? T(kEluAlpha) : T(kLeakySlope);
}

// f applied in place to n elements spaced stride apart; param is leaky_relu's slope or elu's α.
template <typename T>
inline void apply_activation(Activation act, T* y, index_t n, index_t stride, T param) {
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
    case Activation::leaky_relu:
      for (index_t j = 0; j < n; ++j) y[j * stride] = leaky_relu(y[j * stride], param);
      return;
    case Activation::elu:
      for (index_t j = 0; j < n; ++j) y[j * stride] = elu(y[j * stride], param);
      return;
    case Activation::gelu:
      for (index_t j = 0; j < n; ++j) y[j * stride] = gelu(y[j * stride]);
      return;
    case Activation::softplus:
      for (index_t j = 0; j < n; ++j) y[j * stride] = softplus(y[j * stride]);
      return;
  }
}

// The fused form: default slope / alpha.
template <typename T>
inline void apply_activation(Activation act, T* y, index_t n, index_t stride) {
  apply_activation(act, y, n, stride, default_param<T>(act));
}

// f'(x) written through v: the output y = f(x), or for GELU the input x.
template <typename T>
inline T activation_derivative(Activation act, T v, T param) {
  switch (act) {
    case Activation::relu: return v > T(0) ? T(1) : T(0);
    case Activation::sigmoid: return v * (T(1) - v);
    case Activation::tanh: return T(1) - v * v;
    case Activation::leaky_relu: return v > T(0) ? T(1) : param;
    case Activation::elu: return v > T(0) ? T(1) : v + param;
    case Activation::gelu: return gelu_derivative(v);
    case Activation::softplus: return -std::expm1(-v);
    case Activation::linear: break;
  }
  return T(1);
}

template <typename T>
inline T activation_derivative(Activation act, T v) {
  return activation_derivative(act, v, default_param<T>(act));
}

}  // namespace BP_ISA_NS
}  // namespace blockprop
