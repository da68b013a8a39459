// Dense (fully connected) layer, PyTorch nn.Linear layout: x (batch, in), W (out, in), b (out).
// All arrays are contiguous row-major. With Precision::bfloat16 (float only) the GEMMs' operands
// are rounded to bfloat16 (gemm_bf16); bias, activation, δ and db stay in float32.
#pragma once
#include "blockprop/types.h"

namespace blockprop {

// y = f(x·Wᵀ + b)   (bias and activation fused into the GEMM's write-back; b may be null)
// With nonfinite, *nonfinite = the number of non-finite values of x·Wᵀ + b (before f): 0 proves
// x finite (a NaN or infinity in x makes its whole row of x·Wᵀ non-finite, whatever W holds).
template <typename T>
void dense_forward(index_t batch, index_t in, index_t out, const T* x, const T* w, const T* b,
                   Activation act, T* y, index_t* nonfinite = nullptr,
                   Precision precision = Precision::float32);

// δ = dy ⊙ f'(y);  dx = δ·W;  dW = δᵀ·x;  db = Σ_batch δ
// y (the forward's output) is needed unless act is linear. dx and db may be null (not computed).
// With accumulate, dW and db are added to instead of overwritten (gradient accumulation).
template <typename T>
void dense_backward(index_t batch, index_t in, index_t out, const T* x, const T* w, const T* dy,
                    const T* y, Activation act, T* dx, T* dw, T* db, bool accumulate = false,
                    Precision precision = Precision::float32);

}  // namespace blockprop
