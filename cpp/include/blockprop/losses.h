// Losses: each returns the mean loss (accumulated in double) and writes its gradient with respect
// to the prediction / logits into grad (grad may be null: loss only). Arrays are contiguous.
#pragma once
#include <cstdint>
#include "blockprop/types.h"

namespace blockprop {

// L = mean((pred − target)²) over all n elements;  grad = 2·(pred − target)/n
template <typename T>
double mse_loss(index_t n, const T* pred, const T* target, T* grad);

// L = mean_r(logsumexp(z[r,:]) − z[r, label[r]]);  grad = (softmax(z) − onehot(label)) / rows
// labels must lie in [0, cols) (checked by the caller).
template <typename T>
double softmax_cross_entropy(index_t rows, index_t cols, const T* logits,
                             const std::int64_t* labels, T* grad);

// L = mean(max(z,0) − z·t + log(1 + exp(−|z|)));  grad = (sigmoid(z) − t)/n
template <typename T>
double binary_cross_entropy(index_t n, const T* logits, const T* targets, T* grad);

// Which loss a training step takes (and weighted_loss below): cross-entropy takes labels, the
// others float targets of the predictions' shape.
enum class LossKind : int { mse = 0, cross_entropy = 1, bce = 2 };

// Sample weights w ≥ 0 (rows,), Σw > 0 (checked by the caller): the weighted mean over rows of a
// loss above, L = Σ_r w_r·ℓ_r / Σ_r w_r with ℓ_r the kernel's loss on row r alone;
// grad_r = T(w_r / Σw) · ∂ℓ_r/∂z_r. A weight of 0 is the row left out; Σw = 0: L = 0, grad = 0.
template <typename T>
double weighted_loss(LossKind kind, index_t rows, index_t cols, const T* pred,
                     const std::int64_t* labels, const T* targets, const double* weights, T* grad);

// Accuracy, the one rule for every way of training and evaluating: the number of rows of logits
// (rows, cols) classified right. With labels (cross-entropy): the row's argmax equals its label,
// argmax as NumPy's (the first maximum on ties; a row holding NaN picks its first NaN). Otherwise
// with targets (rows, cols) (binary cross-entropy): every (logit > 0) == (target > 0.5), so a NaN
// logit counts as predicting 0. Exactly one of labels and targets is given.
template <typename T>
index_t count_correct(index_t rows, index_t cols, const T* logits, const std::int64_t* labels,
                      const T* targets);

// Σ weights[i] (rows,) over the rows count_correct counts: the weighted accuracy's numerator.
template <typename T>
double weighted_correct(index_t rows, index_t cols, const T* logits, const std::int64_t* labels,
                        const T* targets, const double* weights);

}  // namespace blockprop
