// A whole training loop for a chain of dense layers, run in C++: gather a batch, forward, loss,
// backward, optimizer update, for many batches per call. Small batches are then not dominated by
// the cost of returning to Python between kernels. It calls the same kernels, in the same order,
// as a Python loop over blockprop.kernels, so both give bit-identical weights.
#pragma once
#include <cstdint>
#include <vector>

#include "blockprop/losses.h"
#include "blockprop/optimizers.h"
#include "blockprop/types.h"

namespace blockprop {

enum class OptimizerKind : int { sgd = 0, adam = 1 };

// One dense layer y = f(x·Wᵀ + b), its weight penalty and its optimizer state, all owned by the
// caller.
template <typename T>
struct MlpLayer {
  index_t in = 0, out = 0;
  Activation act = Activation::linear;
  T* w = nullptr;                      // (out, in), updated in place
  T* b = nullptr;                      // (out,) or null for no bias
  double l1 = 0, l2 = 0;               // penalty l1·Σ|W| + l2·ΣW² (weight_penalty), not on b
  double dropout = 0;                  // > 0: a Dropout(p) follows the activation (dropout.h)
  std::uint64_t dropout_seed = 0;
  T* state_w[2] = {nullptr, nullptr};  // SGD: velocity (null without momentum); Adam: m, v
  T* state_b[2] = {nullptr, nullptr};
};

template <typename T>
struct MlpProblem {
  std::vector<MlpLayer<T>> layers;
  LossKind loss = LossKind::cross_entropy;
  OptimizerKind optimizer = OptimizerKind::sgd;
  SgdParams sgd;
  AdamParams adam;  // adam.step: the 1-based step of the first update; advanced per update
  std::uint64_t dropout_step = 0;  // the dropout masks' step for the first batch (the model's
                                   // update count); batch i uses dropout_step + i
  const T* x = nullptr;                 // (n_samples, layers[0].in)
  // Or float64 inputs of a float32 model, rounded a batch at a time as rows are gathered (as
  // NumPy's astype rounds them), so the data set is never copied whole.
  const double* x_wide = nullptr;
  const std::int64_t* labels = nullptr;  // cross-entropy: (n_samples,) in [0, classes)
  const T* targets = nullptr;            // mse / bce: (n_samples, layers.back().out)
  const double* weights = nullptr;       // sample weights (n_samples,) ≥ 0, or null: unweighted
  // The GEMMs' products (dense.h); all else, the weights included, stays in T.
  Precision precision = Precision::float32;
  // The epoch's Σ (batch loss × batch size) before this call: each batch's is added to it in
  // turn, so an epoch's sum is the same bits however it is cut into calls (fit, fit_many).
  double loss_sum = 0;
};

struct MlpTrainResult {
  double loss_sum = 0;   // MlpProblem::loss_sum + Σ over batches of (batch loss × batch size)
  index_t correct = 0;   // rows classified right (count_correct in losses.h; mse: 0)
  index_t samples = 0;
};

// Trains on order[0:n_order] (sample indices) cut into consecutive batches of batch_size, the last
// one possibly shorter; batch i uses learning rate lrs[i]. Each batch is the training step of
// blockprop.step: forward, loss (weighted_loss with weights), backward, then the penalties of the layers in order, summed
// from 0.0 and added to the batch's loss, their gradients added to dW, then the update.
template <typename T>
MlpTrainResult mlp_train_batches(MlpProblem<T>& p, const std::int64_t* order, index_t n_order,
                                 index_t batch_size, const double* lrs);

}  // namespace blockprop
