// The pieces of one training batch of mlp_train_batches (mlp.cpp), in the order it runs them,
// shared with mlp_many_train_batches (mlp_many.cpp), which runs the first layer of many models as
// one GEMM and the rest of each model through these same pieces.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "blockprop/mlp.h"

namespace blockprop {
namespace mlp_steps {

// Buffers for one model and a whole call: the batch, each layer's output, its gradients, and dx
// ping-pong. dwp / dbp say where each layer's weight and bias gradients go: dw[l] / db[l], unless
// the caller points them elsewhere (fit_many: its first layers' gradients, side by side).
template <typename T>
struct Buffers {
  std::vector<T> xb, grad, dx[2], targets;
  std::vector<std::int64_t> labels;
  std::vector<double> weights;  // the batch's sample weights (with p.weights)
  // drop[l]: the output after the layer's dropout (act[l] stays the activation's, for backward).
  std::vector<std::vector<T>> act, drop, dw, db;
  std::vector<T*> dwp, dbp;
  // with_rows: room for the batch's rows of X (false: the caller gathers them); shared_first: the
  // caller provides the first layer's dW (dwp[0]), so dw[0] stays empty.
  Buffers(const MlpProblem<T>& p, index_t bmax, bool with_rows, bool shared_first = false);
};

// Row i of X into dst (layers[0].in elements) as T: float64 inputs of a float32 model are rounded
// here, a row at a time, as NumPy's astype rounds them.
template <typename T>
inline void copy_row(const MlpProblem<T>& p, std::int64_t i, T* dst) {
  const index_t n_in = p.layers.front().in;
  if (p.x_wide) std::copy_n(p.x_wide + i * n_in, n_in, dst);
  else std::copy_n(p.x + i * n_in, n_in, dst);
}

// Rows idx[0:B) of the targets and sample weights (and of X into xb, with rows), on the kernel
// threads.
template <typename T>
void gather(const MlpProblem<T>& p, Buffers<T>& w, const std::int64_t* idx, index_t B, bool rows);

// Layer l's output after its dropout (act[l] itself without one); step: the batch's mask step.
template <typename T>
const T* dropout_forward_layer(const MlpProblem<T>& p, Buffers<T>& w, size_t l, index_t B,
                               std::uint64_t step);

// Layers [first, L) on the input `in`; returns the network's output.
template <typename T>
const T* forward(const MlpProblem<T>& p, Buffers<T>& w, size_t first, const T* in, index_t B,
                 std::uint64_t step);

// The loss of the output `out` (weighted_loss with sample weights) and its gradient into grad;
// rows classified right added to r.
template <typename T>
double loss(const MlpProblem<T>& p, Buffers<T>& w, const T* out, index_t B, MlpTrainResult& r);

// Backward through layers L−1 down to `last` from grad; returns layer last's dx (the gradient
// of layer last−1's output after its dropout), null for last == 0. x0: the first layer's input.
template <typename T>
T* backward(const MlpProblem<T>& p, Buffers<T>& w, size_t last, const T* x0, index_t B,
            std::uint64_t step);

// The penalties added to the batch's loss and their gradients to dW, the sums in r, then the
// update at rate lr (and Adam's step advanced).
template <typename T>
void finish(MlpProblem<T>& p, Buffers<T>& w, double loss, index_t B, double lr, MlpTrainResult& r);

}  // namespace mlp_steps
}  // namespace blockprop
