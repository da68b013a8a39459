// Many models trained on the same batches in one call (blockprop.fit_many): models that read the
// same input batch X_b share their first layer's GEMMs, whatever their widths, activations, biases,
// penalties and optimizers. Forward: one GEMM Zᵀ = [W_1; …; W_K]·X_bᵀ (Σ out_k rows; each model's
// bias and activation on its own segment); weight gradients: one GEMM [δ_1 … δ_K]ᵀ·X_b. The layers
// after the first run per model. The models are cut into groups whose first layers (weights,
// gradients, optimizer state) fit a core's L2 cache, each group trained through the whole call
// with its first layers shared; groups run one per thread when there are enough of them. The
// call's batches are gathered once for every group (their rows and transposes), a part of the
// call at a time.
// Each model ends bit-identical to its own mlp_train_batches: a GEMM element's sum runs over k in
// the same order whatever m and n are (gemm_plan never splits k across threads), and an element
// of W·X_bᵀ is the same sum of the same products as that of X_b·Wᵀ.
#pragma once
#include <cstdint>
#include <vector>

#include "blockprop/mlp.h"

namespace blockprop {

// Trains every model of `models` as mlp_train_batches(models[k], order, n_order, batch_size,
// lrs[k]) would, on the batches they share. They must read the same X (the same x or x_wide
// pointer, the same input width).
// Returns one result per model. The first layers' weights and biases are copied side by side
// for the call and written back at its end.
template <typename T>
std::vector<MlpTrainResult> mlp_many_train_batches(std::vector<MlpProblem<T>>& models,
                                                   const std::int64_t* order, index_t n_order,
                                                   index_t batch_size,
                                                   const std::vector<const double*>& lrs);

}  // namespace blockprop
