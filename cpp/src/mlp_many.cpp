#include "blockprop/mlp_many.h"

#include <algorithm>
#include <stdexcept>

#include "blockprop/activations.h"
#include "blockprop/dropout.h"
#include "blockprop/gemm.h"
#include "blockprop/threading.h"
#include "dispatch.h"
#include "mlp_steps.h"
#include "workspace.h"

namespace blockprop {

namespace {

// Fewer models than this per thread run one after the other, each on all the kernel threads
// (a model's own GEMMs are then shared); from this many, the models are shared among threads.
// Either way the same kernels run in the same order per model, so the results do not change.
constexpr index_t kModelsPerThread = 2;

// A group's first layers (W, dW, optimizer state) are kept within about one core's L2 cache (1–2
// MiB on current x86), so they stay there from batch to batch. Measured, 16 × 784-128-10 (1.2 MiB
// each with SGD momentum: one model a group), 20,000 samples, GFLOP/s per CPU-second: batch 32,
// this size 100–107, 5 MiB to all-in-one 86–93; batch 128, 119–130 for every size.
constexpr std::size_t kGroupBytes = std::size_t(1) << 21;

// A call's batches are gathered once for every group, a part of the call at a time: each part's
// rows and their transposes take at most about this many bytes, so they stay in L3 while every
// group reads them, and memory does not grow with the data set.
constexpr std::size_t kPartBytes = std::size_t(16) << 20;

// The batches of a part of the call, gathered once for every group. rows: batch b's rows of X
// (B × in, the B operand of dW = δᵀ·X_b); cols: their transpose (in × B), which the forward's
// GEMM reads in place: otherwise every group's GEMM packed the same transpose again. A batch
// starting at row `start` of the part is at rows + start·in and cols + start·in.
template <typename T>
struct PartBatches {
  const T* rows;
  const T* cols;
};

// Gathers rows order[0:n) of X (as T, mlp_steps::copy_row) into rows and each batch's transpose
// into cols, the batches shared among the kernel threads.
template <typename T>
PartBatches<T> gather_part(const MlpProblem<T>& p, const std::int64_t* order, index_t n,
                           index_t batch_size) {
  const index_t in = p.layers.front().in;
  T* rows = static_cast<T*>(thread_workspace(kManyBatches, 2 * sizeof(T) * n * in));
  T* cols = rows + n * in;
  constexpr index_t kTile = 16;  // a 16 × 16 tile of a batch transposed at a time, in L1
  auto batch = [&](index_t b) {
    const index_t start = b * batch_size, B = std::min(batch_size, n - start);
    T* r = rows + start * in;
    T* c = cols + start * in;
    for (index_t i = 0; i < B; ++i) mlp_steps::copy_row(p, order[start + i], r + i * in);
    for (index_t i0 = 0; i0 < B; i0 += kTile)
      for (index_t j0 = 0; j0 < in; j0 += kTile)
        for (index_t i = i0, ie = std::min(B, i0 + kTile); i < ie; ++i)
          for (index_t j = j0, je = std::min(in, j0 + kTile); j < je; ++j)
            c[j * B + i] = r[i * in + j];
  };
  parallel_for((n + batch_size - 1) / batch_size, get_num_threads(), batch);
  return {rows, cols};
}

template <typename T>
void check(const std::vector<MlpProblem<T>>& models, const std::vector<const double*>& lrs) {
  if (models.empty()) throw std::invalid_argument("mlp_many_train_batches: no models");
  if (lrs.size() != models.size())
    throw std::invalid_argument("mlp_many_train_batches: one learning-rate array per model");
  const auto& m0 = models.front();
  for (const auto& m : models) {
    if (m.layers.empty()) throw std::invalid_argument("mlp_many_train_batches: a model has no layers");
    if (m.x != m0.x || m.x_wide != m0.x_wide || m.layers[0].in != m0.layers[0].in)
      throw std::invalid_argument("mlp_many_train_batches: the models must read the same X");
    for (const auto& l : m.layers)
      if (l.act == Activation::gelu)
        throw std::invalid_argument("mlp_many_train_batches: GELU layers are not supported (train them in Python)");
  }
}

// One group: models[0:K) through every batch of a part of the call (batches batch0, batch0 + 1,
// … of it, their rows gathered in xs), their first layers as one GEMM; results added to r.
template <typename T>
void train_group(MlpProblem<T>* models, index_t K, const std::int64_t* order, index_t n_order,
                 index_t batch_size, index_t batch0, PartBatches<T> xs,
                 const double* const* lrs, int model_threads, MlpTrainResult* r) {
  const index_t n_in = models[0].layers[0].in;
  const index_t bmax = std::min(batch_size, n_order);
  // Column offset of each model's first layer in the shared buffers; S columns in all.
  std::vector<index_t> off(K + 1, 0);
  for (index_t k = 0; k < K; ++k) off[k + 1] = off[k] + models[k].layers[0].out;
  const index_t S = off[K];

  // The first layers side by side: W (S × in), b (S; unused where a model has none), dW,
  // Zᵀ = W·X_bᵀ (S × B) and δ (B × S).
  // Carved from this thread's workspace: called again (every chunk of batches), nothing is
  // allocated, and every element is written before it is read.
  const std::size_t sizes[] = {std::size_t(S * n_in), std::size_t(S), std::size_t(S * n_in),
                               std::size_t(S * bmax), std::size_t(bmax * S)};
  std::size_t total = 0;
  for (std::size_t n : sizes) total += (n + 15) / 16 * 16;  // each part 64-byte aligned
  T* parts[5];
  T* next = static_cast<T*>(thread_workspace(kManyGroup, sizeof(T) * total));
  for (int i = 0; i < 5; ++i) parts[i] = next, next += (sizes[i] + 15) / 16 * 16;
  T *const w = parts[0], *const b = parts[1], *const dw = parts[2], *const zt = parts[3],
           *const delta = parts[4];
  std::vector<T*> own_w(K), own_b(K);
  std::vector<mlp_steps::Buffers<T>> buf;
  buf.reserve(K);
  for (index_t k = 0; k < K; ++k) {
    auto& l0 = models[k].layers[0];
    own_w[k] = l0.w, own_b[k] = l0.b;
    std::copy_n(l0.w, l0.out * n_in, w + off[k] * n_in);
    if (l0.b) std::copy_n(l0.b, l0.out, b + off[k]);
    buf.emplace_back(models[k], bmax, false, true);  // the rows are in xs
    buf[k].dwp[0] = dw + off[k] * n_in;
  }
  auto give_back = [&]() {
    for (index_t k = 0; k < K; ++k) {
      auto& l0 = models[k].layers[0];
      std::copy_n(w + off[k] * n_in, l0.out * n_in, own_w[k]);
      if (own_b[k]) std::copy_n(b + off[k], l0.out, own_b[k]);
      l0.w = own_w[k], l0.b = own_b[k];
    }
  };
  for (index_t k = 0; k < K; ++k) {
    models[k].layers[0].w = w + off[k] * n_in;
    if (own_b[k]) models[k].layers[0].b = b + off[k];
  }

  std::vector<double> loss(K);
  try {
    for (index_t start = 0, batch = batch0; start < n_order; start += batch_size, ++batch) {
      const index_t B = std::min(batch_size, n_order - start);
      const std::int64_t* idx = order + start;
      const T* xb = xs.rows + start * n_in;
      // Zᵀ = W·X_bᵀ: every model's first layer in one GEMM. Each element is the sum dense_forward
      // forms for x·Wᵀ (the same products, k in the same order), and this orientation (W as A;
      // X_bᵀ as the small, shared B, read in place from xs) runs 1.5× faster than X_b·Wᵀ at batch 32.
      gemm<T>(S, B, n_in, T(1), w, n_in, 1, xs.cols + start * n_in, B, 1, T(0), zt, B, 1);
      // Per model: its segment of Z through its activation, the layers after the first, loss,
      // backward down to the first layer's δ (into its segment of the shared δ) and db.
      auto model_batch = [&](index_t k) {
        auto& p = models[k];
        auto& bk = buf[k];
        const auto& l0 = p.layers[0];
        const std::uint64_t step = p.dropout_step + static_cast<std::uint64_t>(batch);
        mlp_steps::gather(p, bk, idx, B, false);
        // y = f(z + b), as dense_forward's write-back: the bias added in T, then the activation.
        T* a0 = bk.act[0].data();
        const T* z = zt + off[k] * B;
        for (index_t i = 0; i < B; ++i)
          for (index_t j = 0; j < l0.out; ++j) a0[i * l0.out + j] = l0.b ? z[j * B + i] + l0.b[j] : z[j * B + i];
        activation_forward<T>(l0.act, B * l0.out, a0, a0);
        const T* out = mlp_steps::forward(p, bk, 1, mlp_steps::dropout_forward_layer(p, bk, 0, B, step),
                                          B, step);
        loss[k] = mlp_steps::loss(p, bk, out, B, r[k]);
        T* dy = p.layers.size() > 1 ? mlp_steps::backward(p, bk, 1, xb, B, step) : bk.grad.data();
        if (l0.dropout > 0) dropout_backward<T>(B * l0.out, dy, dy, l0.dropout, l0.dropout_seed, step);
        // δ = dy ⊙ f'(y) (dy itself for a linear layer), as dense_backward computes it.
        const T* d = dy;
        if (l0.act != Activation::linear) {
          T* scratch = bk.dx[0].data() == dy ? bk.dx[1].data() : bk.dx[0].data();  // not dy's
          activation_backward<T>(l0.act, B * l0.out, dy, a0, scratch);
          d = scratch;
        }
        if (l0.b) {
          auto colsum = [&]() { BP_DISPATCH(column_sum<T>, B, l0.out, d, bk.dbp[0], false); };
          colsum();
        }
        for (index_t i = 0; i < B; ++i) std::copy_n(d + i * l0.out, l0.out, delta + i * S + off[k]);
      };
      parallel_for(K, model_threads, model_batch);
      // dW = δᵀ·X_b: every model's first-layer weight gradient in one GEMM.
      gemm<T>(S, n_in, B, T(1), delta, 1, S, xb, n_in, 1, T(0), dw, n_in, 1);
      auto model_update = [&](index_t k) {
        mlp_steps::finish(models[k], buf[k], loss[k], B, lrs[k][batch], r[k]);
      };
      parallel_for(K, model_threads, model_update);
    }
  } catch (...) {
    give_back();
    throw;
  }
  give_back();
}

}  // namespace

template <typename T>
std::vector<MlpTrainResult> mlp_many_train_batches(std::vector<MlpProblem<T>>& models,
                                                   const std::int64_t* order, index_t n_order,
                                                   index_t batch_size,
                                                   const std::vector<const double*>& lrs) {
  check(models, lrs);
  const index_t K = static_cast<index_t>(models.size());
  // Groups of consecutive models whose first layers' W, dW and optimizer state fit kGroupBytes
  // (a model larger than that is a group of its own).
  std::vector<index_t> first{0};
  std::size_t bytes = 0;
  for (index_t k = 0; k < K; ++k) {
    const auto& l0 = models[k].layers[0];
    const std::size_t need = sizeof(T) * l0.out * l0.in *
                             (2 + (l0.state_w[0] != nullptr) + (l0.state_w[1] != nullptr));
    if (k > first.back() && bytes + need > kGroupBytes) first.push_back(k), bytes = 0;
    bytes += need;
  }
  first.push_back(K);
  const index_t groups = static_cast<index_t>(first.size()) - 1;
  const int threads = get_num_threads();
  // Enough groups: one per thread at a time, each on its own core's cache, kernels on one thread.
  // Else the groups one after the other, each on every thread (threads over models within it).
  const bool over_groups = groups >= threads && threads > 1;
  std::vector<MlpTrainResult> r(K);
  for (index_t k = 0; k < K; ++k) r[k].loss_sum = models[k].loss_sum;
  const std::size_t batch_bytes = 2 * sizeof(T) * batch_size * models[0].layers[0].in;
  const index_t part_rows = std::max<index_t>(1, index_t(kPartBytes / batch_bytes)) * batch_size;
  for (index_t start = 0; start < n_order; start += part_rows) {
    const index_t n = std::min(part_rows, n_order - start);
    const PartBatches<T> xs = gather_part(models[0], order + start, n, batch_size);
    auto run = [&](index_t g) {
      const index_t k0 = first[g], m = first[g + 1] - k0;
      const int inner = over_groups ? 1 : (m >= kModelsPerThread * threads ? threads : 1);
      train_group<T>(models.data() + k0, m, order + start, n, batch_size, start / batch_size, xs,
                     lrs.data() + k0, inner, r.data() + k0);
    };
    parallel_for(groups, over_groups ? threads : 1, run);
  }
  return r;
}

template std::vector<MlpTrainResult> mlp_many_train_batches<float>(
    std::vector<MlpProblem<float>>&, const std::int64_t*, index_t, index_t,
    const std::vector<const double*>&);
template std::vector<MlpTrainResult> mlp_many_train_batches<double>(
    std::vector<MlpProblem<double>>&, const std::int64_t*, index_t, index_t,
    const std::vector<const double*>&);

}  // namespace blockprop
