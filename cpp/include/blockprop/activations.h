// Activations on their own, forward and backward. Backward is expressed through the forward's
// output y (which every layer keeps), so no pre-activation has to be stored.
#pragma once
#include "blockprop/types.h"

namespace blockprop {

// y = f(x), element-wise over n elements (y may alias x).
template <typename T>
void activation_forward(Activation act, index_t n, const T* x, T* y);

// dx = dy ⊙ f'(x), written through y = f(x) (dx may alias dy).
template <typename T>
void activation_backward(Activation act, index_t n, const T* dy, const T* y, T* dx);

// y[r,:] = exp(x[r,:] − max x[r,:]) / Σ exp(x[r,:] − max x[r,:])   (row-wise, y may alias x)
template <typename T>
void softmax_forward(index_t rows, index_t cols, const T* x, T* y);

// dx[r,:] = y[r,:] ⊙ (dy[r,:] − ⟨dy[r,:], y[r,:]⟩)   (Jacobian-vector product, dx may alias dy)
template <typename T>
void softmax_backward(index_t rows, index_t cols, const T* dy, const T* y, T* dx);

}  // namespace blockprop
