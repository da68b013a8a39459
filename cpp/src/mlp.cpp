#include "blockprop/mlp.h"

#include <algorithm>
#include <stdexcept>

#include "blockprop/dense.h"
#include "blockprop/diagnostics.h"
#include "blockprop/dropout.h"
#include "blockprop/losses.h"
#include "blockprop/threading.h"

namespace blockprop {

namespace {

// Rows of a batch gathered per thread-pool task (a batch of 128: 8 tasks). Gathering on 2
// threads, not 1, measured: epoch 784-128-10, batch 128, 276–286k → 292–312k samples/s.
constexpr index_t kGatherRows = 16;

template <typename T>
void update(MlpProblem<T>& p, index_t n, T* param, const T* grad, T* const state[2], double lr) {
  if (p.optimizer == OptimizerKind::sgd) {
    SgdParams hp = p.sgd;
    hp.lr = lr;
    sgd_step<T>(n, param, grad, state[0], hp);
  } else {
    AdamParams hp = p.adam;
    hp.lr = lr;
    adam_step<T>(n, param, grad, state[0], state[1], hp);
  }
}

}  // namespace

template <typename T>
MlpTrainResult mlp_train_batches(MlpProblem<T>& p, const std::int64_t* order, index_t n_order,
                                 index_t batch_size, const double* lrs) {
  const auto& layers = p.layers;
  const size_t L = layers.size();
  // GELU's backward needs the pre-activation, which this loop does not keep (fit uses Python).
  for (const auto& l : layers)
    if (l.act == Activation::gelu)
      throw std::invalid_argument("mlp_train_batches: GELU layers are not supported (train them in Python)");
  const index_t n_in = layers.front().in, n_out = layers.back().out;
  const index_t bmax = std::min(batch_size, n_order);
  index_t widest = n_in;
  for (const auto& l : layers) widest = std::max(widest, l.out);

  // Buffers for the whole call: the batch, each layer's output, its gradients, and dx ping-pong.
  std::vector<T> xb(bmax * n_in), grad(bmax * n_out), dx[2] = {std::vector<T>(bmax * widest),
                                                               std::vector<T>(bmax * widest)};
  std::vector<T> targets(p.loss == LossKind::cross_entropy ? 0 : bmax * n_out);
  std::vector<std::int64_t> labels(p.loss == LossKind::cross_entropy ? bmax : 0);
  std::vector<double> weights(p.weights ? bmax : 0);
  // drop[l]: the output after the layer's dropout (act[l] stays the activation's, for backward).
  std::vector<std::vector<T>> act(L), drop(L), dw(L), db(L);
  for (size_t l = 0; l < L; ++l) {
    act[l].resize(bmax * layers[l].out);
    drop[l].resize(layers[l].dropout > 0 ? bmax * layers[l].out : 0);
    dw[l].resize(layers[l].out * layers[l].in);
    db[l].resize(layers[l].b ? layers[l].out : 0);
  }

  MlpTrainResult r;
  for (index_t start = 0, batch = 0; start < n_order; start += batch_size, ++batch) {
    const index_t B = std::min(batch_size, n_order - start);
    const std::uint64_t step = p.dropout_step + static_cast<std::uint64_t>(batch);
    const std::int64_t* idx = order + start;
    // The batch's rows come from random places in X, each a fresh trip to memory: the copy is
    // bound by latency, so the threads each gather a share of the rows.
    auto gather = [&](index_t chunk) {
      const index_t lo = chunk * kGatherRows, hi = std::min(B, lo + kGatherRows);
      for (index_t i = lo; i < hi; ++i) {
        if (p.x_wide)
          std::copy_n(p.x_wide + idx[i] * n_in, n_in, xb.data() + i * n_in);
        else
          std::copy_n(p.x + idx[i] * n_in, n_in, xb.data() + i * n_in);
        if (p.loss == LossKind::cross_entropy) labels[i] = p.labels[idx[i]];
        else std::copy_n(p.targets + idx[i] * n_out, n_out, targets.data() + i * n_out);
        if (p.weights) weights[i] = p.weights[idx[i]];
      }
    };
    const index_t chunks = (B + kGatherRows - 1) / kGatherRows;
    parallel_for(chunks, get_num_threads(), gather);
    // forward
    const T* in = xb.data();
    for (size_t l = 0; l < L; ++l) {
      dense_forward<T>(B, layers[l].in, layers[l].out, in, layers[l].w, layers[l].b, layers[l].act,
                       act[l].data(), nullptr, p.precision);
      in = act[l].data();
      if (layers[l].dropout > 0) {
        dropout_forward<T>(B * layers[l].out, in, drop[l].data(), layers[l].dropout,
                           layers[l].dropout_seed, step);
        in = drop[l].data();
      }
    }
    // loss and its gradient at the output
    const T* out = in;
    double loss = 0;
    if (p.weights)
      loss = weighted_loss<T>(p.loss, B, n_out, out, labels.data(), targets.data(), weights.data(),
                              grad.data());
    switch (p.loss) {
      case LossKind::cross_entropy:
        if (!p.weights) loss = softmax_cross_entropy<T>(B, n_out, out, labels.data(), grad.data());
        r.correct += count_correct<T>(B, n_out, out, labels.data(), nullptr);
        break;
      case LossKind::mse:
        if (!p.weights) loss = mse_loss<T>(B * n_out, out, targets.data(), grad.data());
        break;
      case LossKind::bce:
        if (!p.weights) loss = binary_cross_entropy<T>(B * n_out, out, targets.data(), grad.data());
        r.correct += count_correct<T>(B, n_out, out, nullptr, targets.data());
        break;
    }
    // backward: each layer's dx is the next one down's dy
    T* dy = grad.data();
    for (size_t l = L; l-- > 0;) {
      if (layers[l].dropout > 0)  // through the mask of this batch's forward, in place
        dropout_backward<T>(B * layers[l].out, dy, dy, layers[l].dropout, layers[l].dropout_seed, step);
      const T* x_l = !l ? xb.data() : layers[l - 1].dropout > 0 ? drop[l - 1].data() : act[l - 1].data();
      T* dx_l = l ? dx[l % 2].data() : nullptr;
      dense_backward<T>(B, layers[l].in, layers[l].out, x_l, layers[l].w, dy, act[l].data(),
                        layers[l].act, dx_l, dw[l].data(), layers[l].b ? db[l].data() : nullptr,
                        false, p.precision);
      dy = dx_l;
    }
    // Weight penalties on the weights before the update, in layer order, summed from 0.0 and then
    // added to the data loss, as Python's `value += sum(penalties, 0.0)`: the same double
    // additions, so the same loss to the bit. Layers without one add nothing (Python adds 0.0).
    double penalty = 0.0;
    for (size_t l = 0; l < L; ++l)
      if (layers[l].l1 != 0 || layers[l].l2 != 0)
        penalty += weight_penalty<T>(layers[l].out * layers[l].in, layers[l].w, layers[l].l1,
                                     layers[l].l2, dw[l].data());
    loss += penalty;
    r.loss_sum += loss * static_cast<double>(B);
    r.samples += B;
    // update (Adam's step advances once per batch, for all parameters together)
    for (size_t l = 0; l < L; ++l) {
      update(p, layers[l].out * layers[l].in, layers[l].w, dw[l].data(), layers[l].state_w, lrs[batch]);
      if (layers[l].b) update(p, layers[l].out, layers[l].b, db[l].data(), layers[l].state_b, lrs[batch]);
    }
    ++p.adam.step;
  }
  return r;
}

template MlpTrainResult mlp_train_batches<float>(MlpProblem<float>&, const std::int64_t*, index_t,
                                                 index_t, const double*);
template MlpTrainResult mlp_train_batches<double>(MlpProblem<double>&, const std::int64_t*, index_t,
                                                  index_t, const double*);

}  // namespace blockprop
