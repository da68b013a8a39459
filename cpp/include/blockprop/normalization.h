// Batch and layer normalization of a contiguous rows × cols batch, with learnable per-feature
// scale γ and shift β (cols each). Statistics are accumulated in double; var is the biased
// variance (divided by the count), as used for normalizing; invstd = 1/√(var + eps).
#pragma once
#include "blockprop/types.h"

namespace blockprop {

// Training: per column j, mean_j = Σ_r x[r,j]/rows, var_j = Σ_r (x[r,j] − mean_j)²/rows,
// y = (x − mean)·invstd·γ + β. Writes mean and var (cols each).
template <typename T>
void batch_norm_forward(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                        double eps, T* y, T* mean, T* var);

// Evaluation: y = (x − mean)·(γ/√(var + eps)) + β with given (running) statistics.
template <typename T>
void batch_norm_inference(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                          const T* mean, const T* var, double eps, T* y);

// Gradients with x̂ = (x − mean)·invstd: dβ = Σ_r dy, dγ = Σ_r dy·x̂, and
//   batch_stats (mean, var are the batch's own):  dx = γ·invstd·(dy − dβ/rows − x̂·dγ/rows)
//   otherwise (fixed running statistics):          dx = γ·invstd·dy
// dx may be null.
template <typename T>
void batch_norm_backward(index_t rows, index_t cols, const T* dy, const T* x, const T* mean,
                         const T* var, const T* gamma, double eps, bool batch_stats, T* dx,
                         T* dgamma, T* dbeta);

// Per row r: mean_r = Σ_j x[r,j]/cols, var_r = Σ_j (x[r,j] − mean_r)²/cols,
// y = (x − mean)·invstd·γ + β. Writes mean and var (rows each).
template <typename T>
void layer_norm_forward(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                        double eps, T* y, T* mean, T* var);

// Gradients with x̂ = (x − mean)·invstd and g = dy·γ: dβ = Σ_r dy, dγ = Σ_r dy·x̂,
// dx = invstd·(g − mean_j g − x̂·mean_j(g·x̂)) per row. dx may be null.
template <typename T>
void layer_norm_backward(index_t rows, index_t cols, const T* dy, const T* x, const T* mean,
                         const T* var, const T* gamma, double eps, T* dx, T* dgamma, T* dbeta);

}  // namespace blockprop
