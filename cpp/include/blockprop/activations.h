// Activations on their own, forward and backward. Backward is expressed through the forward's
// output y (which every layer keeps), so no pre-activation has to be stored, except for GELU: it
// is not monotone, so y does not determine x, and its backward takes the pre-activation x instead
// (everywhere a "y" is passed for a derivative: here, dense_backward, mlp).
#pragma once
#include "blockprop/types.h"

namespace blockprop {

// y = f(x), element-wise over n elements (y may alias x).
template <typename T>
void activation_forward(Activation act, index_t n, const T* x, T* y);

// dx = dy ⊙ f'(x), written through v = f(x), or v = x for GELU (dx may alias dy).
template <typename T>
void activation_backward(Activation act, index_t n, const T* dy, const T* v, T* dx);

// The same with leaky_relu's slope or elu's α given (ignored by the other activations); the
// forms above use kLeakySlope / kEluAlpha, as the fused write-back does.
template <typename T>
void activation_forward(Activation act, index_t n, const T* x, T* y, double param);
template <typename T>
void activation_backward(Activation act, index_t n, const T* dy, const T* v, T* dx, double param);

// y[r,:] = exp(x[r,:] − max x[r,:]) / Σ exp(x[r,:] − max x[r,:])   (row-wise, y may alias x)
template <typename T>
void softmax_forward(index_t rows, index_t cols, const T* x, T* y);

// dx[r,:] = y[r,:] ⊙ (dy[r,:] − ⟨dy[r,:], y[r,:]⟩)   (Jacobian-vector product, dx may alias dy)
template <typename T>
void softmax_backward(index_t rows, index_t cols, const T* dy, const T* y, T* dx);

}  // namespace blockprop
