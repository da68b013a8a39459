#include "blockprop/mlp.h"

#include <algorithm>
#include <stdexcept>

#include "blockprop/dense.h"
#include "blockprop/diagnostics.h"
#include "blockprop/dropout.h"
#include "blockprop/losses.h"
#include "blockprop/threading.h"
#include "mlp_steps.h"

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

namespace mlp_steps {

template <typename T>
Buffers<T>::Buffers(const MlpProblem<T>& p, index_t bmax, bool with_rows, bool shared_first) {
  const auto& layers = p.layers;
  const size_t L = layers.size();
  const index_t n_in = layers.front().in, n_out = layers.back().out;
  index_t widest = 0;  // of the dx buffers: layer l's dx is layer l − 1's output (none for l = 0)
  for (const auto& l : layers) widest = std::max(widest, l.out);
  xb.resize(with_rows ? bmax * n_in : 0);
  grad.resize(bmax * n_out);
  dx[0].resize(bmax * widest);
  dx[1].resize(bmax * widest);
  targets.resize(p.loss == LossKind::cross_entropy ? 0 : bmax * n_out);
  labels.resize(p.loss == LossKind::cross_entropy ? bmax : 0);
  weights.resize(p.weights ? bmax : 0);
  act.resize(L), drop.resize(L), dw.resize(L), db.resize(L), dwp.resize(L), dbp.resize(L);
  for (size_t l = 0; l < L; ++l) {
    act[l].resize(bmax * layers[l].out);
    drop[l].resize(layers[l].dropout > 0 ? bmax * layers[l].out : 0);
    dw[l].resize(l == 0 && shared_first ? 0 : layers[l].out * layers[l].in);
    db[l].resize(layers[l].b ? layers[l].out : 0);
    dwp[l] = dw[l].data();
    dbp[l] = layers[l].b ? db[l].data() : nullptr;
  }
}

template <typename T>
void gather(const MlpProblem<T>& p, Buffers<T>& w, const std::int64_t* idx, index_t B, bool rows) {
  const index_t n_in = p.layers.front().in, n_out = p.layers.back().out;
  // The batch's rows come from random places in X, each a fresh trip to memory: the copy is
  // bound by latency, so the threads each gather a share of the rows.
  auto body = [&](index_t chunk) {
    const index_t lo = chunk * kGatherRows, hi = std::min(B, lo + kGatherRows);
    for (index_t i = lo; i < hi; ++i) {
      if (rows) copy_row(p, idx[i], w.xb.data() + i * n_in);
      if (p.loss == LossKind::cross_entropy) w.labels[i] = p.labels[idx[i]];
      else std::copy_n(p.targets + idx[i] * n_out, n_out, w.targets.data() + i * n_out);
      if (p.weights) w.weights[i] = p.weights[idx[i]];
    }
  };
  const index_t chunks = (B + kGatherRows - 1) / kGatherRows;
  parallel_for(chunks, get_num_threads(), body);
}

template <typename T>
const T* dropout_forward_layer(const MlpProblem<T>& p, Buffers<T>& w, size_t l, index_t B,
                               std::uint64_t step) {
  const auto& layer = p.layers[l];
  if (layer.dropout <= 0) return w.act[l].data();
  dropout_forward<T>(B * layer.out, w.act[l].data(), w.drop[l].data(), layer.dropout,
                     layer.dropout_seed, step);
  return w.drop[l].data();
}

template <typename T>
const T* forward(const MlpProblem<T>& p, Buffers<T>& w, size_t first, const T* in, index_t B,
                 std::uint64_t step) {
  const auto& layers = p.layers;
  for (size_t l = first; l < layers.size(); ++l) {
    dense_forward<T>(B, layers[l].in, layers[l].out, in, layers[l].w, layers[l].b, layers[l].act,
                     w.act[l].data(), nullptr, p.precision);
    in = dropout_forward_layer(p, w, l, B, step);
  }
  return in;
}

template <typename T>
double loss(const MlpProblem<T>& p, Buffers<T>& w, const T* out, index_t B, MlpTrainResult& r) {
  const index_t n_out = p.layers.back().out;
  double value = 0;
  if (p.weights)
    value = weighted_loss<T>(p.loss, B, n_out, out, w.labels.data(), w.targets.data(), w.weights.data(),
                             w.grad.data());
  switch (p.loss) {
    case LossKind::cross_entropy:
      if (!p.weights) value = softmax_cross_entropy<T>(B, n_out, out, w.labels.data(), w.grad.data());
      r.correct += count_correct<T>(B, n_out, out, w.labels.data(), nullptr);
      break;
    case LossKind::mse:
      if (!p.weights) value = mse_loss<T>(B * n_out, out, w.targets.data(), w.grad.data());
      break;
    case LossKind::bce:
      if (!p.weights) value = binary_cross_entropy<T>(B * n_out, out, w.targets.data(), w.grad.data());
      r.correct += count_correct<T>(B, n_out, out, nullptr, w.targets.data());
      break;
  }
  return value;
}

template <typename T>
T* backward(const MlpProblem<T>& p, Buffers<T>& w, size_t last, const T* x0, index_t B,
            std::uint64_t step) {
  const auto& layers = p.layers;
  // each layer's dx is the next one down's dy
  T* dy = w.grad.data();
  for (size_t l = layers.size(); l-- > last;) {
    if (layers[l].dropout > 0)  // through the mask of this batch's forward, in place
      dropout_backward<T>(B * layers[l].out, dy, dy, layers[l].dropout, layers[l].dropout_seed, step);
    const T* x_l = !l ? x0 : layers[l - 1].dropout > 0 ? w.drop[l - 1].data() : w.act[l - 1].data();
    T* dx_l = l ? w.dx[l % 2].data() : nullptr;
    dense_backward<T>(B, layers[l].in, layers[l].out, x_l, layers[l].w, dy, w.act[l].data(),
                      layers[l].act, dx_l, w.dwp[l], w.dbp[l], false, p.precision);
    dy = dx_l;
  }
  return dy;
}

template <typename T>
void finish(MlpProblem<T>& p, Buffers<T>& w, double loss, index_t B, double lr, MlpTrainResult& r) {
  const auto& layers = p.layers;
  const size_t L = layers.size();
  // Weight penalties on the weights before the update, in layer order, summed from 0.0 and then
  // added to the data loss, as Python's `value += sum(penalties, 0.0)`: the same double
  // additions, so the same loss to the bit. Layers without one add nothing (Python adds 0.0).
  double penalty = 0.0;
  for (size_t l = 0; l < L; ++l)
    if (layers[l].l1 != 0 || layers[l].l2 != 0)
      penalty += weight_penalty<T>(layers[l].out * layers[l].in, layers[l].w, layers[l].l1,
                                   layers[l].l2, w.dwp[l]);
  loss += penalty;
  r.loss_sum += loss * static_cast<double>(B);
  r.samples += B;
  // update (Adam's step advances once per batch, for all parameters together)
  for (size_t l = 0; l < L; ++l) {
    update(p, layers[l].out * layers[l].in, layers[l].w, w.dwp[l], layers[l].state_w, lr);
    if (layers[l].b) update(p, layers[l].out, layers[l].b, w.dbp[l], layers[l].state_b, lr);
  }
  ++p.adam.step;
}

#define BP_MLP_STEPS(T)                                                                           \
  template struct Buffers<T>;                                                                     \
  template void gather<T>(const MlpProblem<T>&, Buffers<T>&, const std::int64_t*, index_t, bool);  \
  template const T* dropout_forward_layer<T>(const MlpProblem<T>&, Buffers<T>&, size_t, index_t,   \
                                             std::uint64_t);                                      \
  template const T* forward<T>(const MlpProblem<T>&, Buffers<T>&, size_t, const T*, index_t,       \
                               std::uint64_t);                                                    \
  template double loss<T>(const MlpProblem<T>&, Buffers<T>&, const T*, index_t, MlpTrainResult&);  \
  template T* backward<T>(const MlpProblem<T>&, Buffers<T>&, size_t, const T*, index_t,            \
                          std::uint64_t);                                                         \
  template void finish<T>(MlpProblem<T>&, Buffers<T>&, double, index_t, double, MlpTrainResult&);
BP_MLP_STEPS(float)
BP_MLP_STEPS(double)
#undef BP_MLP_STEPS

}  // namespace mlp_steps

template <typename T>
MlpTrainResult mlp_train_batches(MlpProblem<T>& p, const std::int64_t* order, index_t n_order,
                                 index_t batch_size, const double* lrs) {
  // GELU's backward needs the pre-activation, which this loop does not keep (fit uses Python).
  for (const auto& l : p.layers)
    if (l.act == Activation::gelu)
      throw std::invalid_argument("mlp_train_batches: GELU layers are not supported (train them in Python)");
  mlp_steps::Buffers<T> w(p, std::min(batch_size, n_order), true);
  MlpTrainResult r;
  r.loss_sum = p.loss_sum;
  for (index_t start = 0, batch = 0; start < n_order; start += batch_size, ++batch) {
    const index_t B = std::min(batch_size, n_order - start);
    const std::uint64_t step = p.dropout_step + static_cast<std::uint64_t>(batch);
    mlp_steps::gather(p, w, order + start, B, true);
    const T* out = mlp_steps::forward(p, w, 0, w.xb.data(), B, step);
    const double loss = mlp_steps::loss(p, w, out, B, r);
    mlp_steps::backward(p, w, 0, w.xb.data(), B, step);
    mlp_steps::finish(p, w, loss, B, lrs[batch], r);
  }
  return r;
}

template MlpTrainResult mlp_train_batches<float>(MlpProblem<float>&, const std::int64_t*, index_t,
                                                 index_t, const double*);
template MlpTrainResult mlp_train_batches<double>(MlpProblem<double>&, const std::int64_t*, index_t,
                                                  index_t, const double*);

}  // namespace blockprop
