// mlp_train_batches against the same kernel calls written out one by one (the training step of
// blockprop.step): the weights, optimizer state, loss and accuracy must agree to the bit,
// with and without weight penalties, on every instruction set, float and double.
#include "blockprop/mlp.h"

#include <cstring>

#include "blockprop/dense.h"
#include "blockprop/diagnostics.h"
#include "blockprop/dropout.h"
#include "blockprop/losses.h"
#include "test_util.h"

namespace {

using namespace bptest;
using blockprop::Activation;
using blockprop::LossKind;
using blockprop::MlpLayer;
using blockprop::MlpProblem;
using blockprop::OptimizerKind;

// The model and data of one case, owned here; each run starts from a fresh copy.
template <typename T>
struct Case {
  std::vector<index_t> widths = {5, 9, 6, 3};
  std::vector<Activation> acts = {Activation::relu, Activation::tanh, Activation::linear};
  std::vector<bool> bias = {true, false, true};
  std::vector<double> l1, l2;  // per layer
  std::vector<double> drop = {0, 0, 0};  // Dropout p after each layer (0: none)
  std::uint64_t drop_seed = 99, drop_step = 40;
  LossKind loss = LossKind::cross_entropy;
  OptimizerKind opt = OptimizerKind::sgd;
  std::vector<std::vector<T>> w, b, sw[2], sb[2];
  std::vector<T> x, targets;
  std::vector<std::int64_t> labels, order;
  std::vector<double> weights;  // sample weights (n), or empty: unweighted
  index_t n = 37, batch = 8;
  std::vector<double> lrs;

  Case(LossKind loss_, OptimizerKind opt_, bool penalties) : loss(loss_), opt(opt_) {
    const size_t L = acts.size();
    l1.assign(L, 0.0);
    l2.assign(L, 0.0);
    if (penalties) {  // not on layer 1: a layer without a penalty adds nothing
      l1[0] = 1e-3, l2[0] = 1e-2, l2[2] = 5e-3, l1[2] = 2e-3;
    }
    for (size_t l = 0; l < L; ++l) {
      const index_t in = widths[l], out = widths[l + 1];
      w.push_back(random_vector<T>(out * in, 10 + l));
      b.push_back(bias[l] ? random_vector<T>(out, 20 + l, -0.1, 0.1) : std::vector<T>());
      for (int s = 0; s < 2; ++s) {
        sw[s].emplace_back(out * in, T(0));
        sb[s].emplace_back(bias[l] ? out : 0, T(0));
      }
    }
    x = random_vector<T>(n * widths[0], 1, -2, 2);
    targets = random_vector<T>(n * widths.back(), 2, 0, 1);
    if (loss == LossKind::bce)
      for (auto& t : targets) t = t > T(0.5) ? T(1) : T(0);
    for (index_t i = 0; i < n; ++i) labels.push_back((i * 7) % widths.back());
    for (index_t i = 0; i < n; ++i) order.push_back((i * 11) % n);  // a permutation (11 ⟂ 37)
    for (index_t i = 0; i < (n + batch - 1) / batch; ++i) lrs.push_back(0.05 + 0.01 * i);
  }

  bool has_state() const { return opt == OptimizerKind::adam || sgd.momentum != 0; }

  blockprop::SgdParams sgd = [] {
    blockprop::SgdParams p;
    p.momentum = 0.9;
    p.weight_decay = 1e-3;
    return p;
  }();
  blockprop::AdamParams adam = [] {
    blockprop::AdamParams p;
    p.weight_decay = 1e-2;
    p.decoupled_weight_decay = true;
    p.step = 3;  // as after two earlier updates
    return p;
  }();
};

struct Result {
  double loss_sum = 0;
  index_t correct = 0, samples = 0;
};

template <typename T>
Result run_core(Case<T>& c) {
  MlpProblem<T> p;
  for (size_t l = 0; l < c.acts.size(); ++l) {
    MlpLayer<T> layer;
    layer.in = c.widths[l];
    layer.out = c.widths[l + 1];
    layer.act = c.acts[l];
    layer.w = c.w[l].data();
    layer.b = c.bias[l] ? c.b[l].data() : nullptr;
    layer.l1 = c.l1[l];
    layer.l2 = c.l2[l];
    layer.dropout = c.drop[l];
    layer.dropout_seed = c.drop_seed + l;
    const int n_state = c.opt == OptimizerKind::adam ? 2 : c.has_state() ? 1 : 0;
    for (int s = 0; s < n_state; ++s) {
      layer.state_w[s] = c.sw[s][l].data();
      layer.state_b[s] = c.bias[l] ? c.sb[s][l].data() : nullptr;
    }
    p.layers.push_back(layer);
  }
  p.loss = c.loss;
  p.optimizer = c.opt;
  p.sgd = c.sgd;
  p.adam = c.adam;
  p.dropout_step = c.drop_step;
  p.x = c.x.data();
  p.labels = c.labels.data();
  p.targets = c.targets.data();
  p.weights = c.weights.empty() ? nullptr : c.weights.data();
  auto r = blockprop::mlp_train_batches<T>(p, c.order.data(), c.n, c.batch, c.lrs.data());
  return {r.loss_sum, r.correct, r.samples};
}

// The same batches as a sequence of kernel calls, in the order of the Python step.
template <typename T>
Result run_by_hand(Case<T>& c) {
  const size_t L = c.acts.size();
  const index_t n_in = c.widths[0], n_out = c.widths.back();
  Result r;
  std::int64_t step = c.adam.step;
  for (index_t start = 0, k = 0; start < c.n; start += c.batch, ++k) {
    const index_t B = std::min(c.batch, c.n - start);
    std::vector<T> xb(B * n_in), tb(B * n_out);
    std::vector<std::int64_t> lb(B);
    std::vector<double> wb(B);
    for (index_t i = 0; i < B; ++i) {
      const std::int64_t row = c.order[start + i];
      if (!c.weights.empty()) wb[i] = c.weights[row];
      std::copy_n(c.x.data() + row * n_in, n_in, xb.data() + i * n_in);
      std::copy_n(c.targets.data() + row * n_out, n_out, tb.data() + i * n_out);
      lb[i] = c.labels[row];
    }
    std::vector<std::vector<T>> act(L), out_drop(L), dw(L), db(L);
    const T* in = xb.data();
    for (size_t l = 0; l < L; ++l) {
      act[l].resize(B * c.widths[l + 1]);
      blockprop::dense_forward<T>(B, c.widths[l], c.widths[l + 1], in, c.w[l].data(),
                                  c.bias[l] ? c.b[l].data() : nullptr, c.acts[l], act[l].data());
      in = act[l].data();
      if (c.drop[l] > 0) {
        out_drop[l].resize(act[l].size());
        blockprop::dropout_forward<T>(index_t(act[l].size()), in, out_drop[l].data(), c.drop[l],
                                      c.drop_seed + l, c.drop_step + k);
        in = out_drop[l].data();
      }
    }
    std::vector<T> grad(B * n_out);
    double loss = 0;
    if (!c.weights.empty())
      loss = blockprop::weighted_loss<T>(c.loss, B, n_out, in, lb.data(), tb.data(), wb.data(), grad.data());
    if (c.loss == LossKind::cross_entropy) {
      if (c.weights.empty()) loss = blockprop::softmax_cross_entropy<T>(B, n_out, in, lb.data(), grad.data());
      r.correct += blockprop::count_correct<T>(B, n_out, in, lb.data(), nullptr);
    } else if (c.loss == LossKind::bce) {
      if (c.weights.empty()) loss = blockprop::binary_cross_entropy<T>(B * n_out, in, tb.data(), grad.data());
      r.correct += blockprop::count_correct<T>(B, n_out, in, nullptr, tb.data());
    } else if (c.weights.empty()) {
      loss = blockprop::mse_loss<T>(B * n_out, in, tb.data(), grad.data());
    }
    std::vector<T> dy = grad;
    for (size_t l = L; l-- > 0;) {
      dw[l].resize(c.w[l].size());
      db[l].resize(c.b[l].size());
      std::vector<T> dx(l ? B * c.widths[l] : 0);
      if (c.drop[l] > 0)
        blockprop::dropout_backward<T>(index_t(dy.size()), dy.data(), dy.data(), c.drop[l], c.drop_seed + l,
                                       c.drop_step + k);
      const T* x_l = !l ? xb.data() : c.drop[l - 1] > 0 ? out_drop[l - 1].data() : act[l - 1].data();
      blockprop::dense_backward<T>(B, c.widths[l], c.widths[l + 1], x_l,
                                   c.w[l].data(), dy.data(), act[l].data(), c.acts[l],
                                   l ? dx.data() : nullptr, dw[l].data(),
                                   c.bias[l] ? db[l].data() : nullptr);
      dy.swap(dx);
    }
    double penalty = 0.0;
    for (size_t l = 0; l < L; ++l)
      if (c.l1[l] != 0 || c.l2[l] != 0)
        penalty += blockprop::weight_penalty<T>(index_t(c.w[l].size()), c.w[l].data(), c.l1[l], c.l2[l],
                                                dw[l].data());
    loss += penalty;
    r.loss_sum += loss * double(B);
    r.samples += B;
    for (size_t l = 0; l < L; ++l) {
      auto update = [&](std::vector<T>& param, std::vector<T>& g, std::vector<T>& s0, std::vector<T>& s1) {
        if (c.opt == OptimizerKind::sgd) {
          auto hp = c.sgd;
          hp.lr = c.lrs[k];
          blockprop::sgd_step<T>(index_t(param.size()), param.data(), g.data(),
                                 c.has_state() ? s0.data() : nullptr, hp);
        } else {
          auto hp = c.adam;
          hp.lr = c.lrs[k];
          hp.step = step;
          blockprop::adam_step<T>(index_t(param.size()), param.data(), g.data(), s0.data(), s1.data(), hp);
        }
      };
      update(c.w[l], dw[l], c.sw[0][l], c.sw[1][l]);
      if (c.bias[l]) update(c.b[l], db[l], c.sb[0][l], c.sb[1][l]);
    }
    ++step;
  }
  return r;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <typename T>
void check(LossKind loss, OptimizerKind opt, bool penalties, bool momentum = true,
           std::vector<double> drop = {0, 0, 0}, std::vector<double> weights = {}) {
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    Case<T> core(loss, opt, penalties);
    if (!momentum) core.sgd.momentum = 0;
    core.drop = drop;
    core.weights = weights;
    Case<T> hand = core;
    const Result a = run_core(core), b = run_by_hand(hand);
    SCOPED_TRACE(isa_label(isa) + (sizeof(T) == 4 ? " float32" : " float64") +
                 (penalties ? " with penalties" : " without penalties"));
    EXPECT_EQ(a.loss_sum, b.loss_sum);
    EXPECT_EQ(a.correct, b.correct);
    EXPECT_EQ(a.samples, core.n);
    EXPECT_EQ(b.samples, core.n);
    for (size_t l = 0; l < core.acts.size(); ++l) {
      EXPECT_TRUE(same_bits(core.w[l], hand.w[l])) << "W of layer " << l;
      EXPECT_TRUE(same_bits(core.b[l], hand.b[l])) << "b of layer " << l;
      for (int s = 0; s < 2; ++s) {
        EXPECT_TRUE(same_bits(core.sw[s][l], hand.sw[s][l])) << "state " << s << " of W, layer " << l;
        EXPECT_TRUE(same_bits(core.sb[s][l], hand.sb[s][l])) << "state " << s << " of b, layer " << l;
      }
    }
  }
}

TEST(MlpTrainBatches, CrossEntropySgdMomentumEqualsTheKernelSequence) {
  for (bool pen : {false, true}) {
    check<float>(LossKind::cross_entropy, OptimizerKind::sgd, pen);
    check<double>(LossKind::cross_entropy, OptimizerKind::sgd, pen);
  }
}

TEST(MlpTrainBatches, BceAdamWEqualsTheKernelSequence) {
  for (bool pen : {false, true}) {
    check<float>(LossKind::bce, OptimizerKind::adam, pen);
    check<double>(LossKind::bce, OptimizerKind::adam, pen);
  }
}

TEST(MlpTrainBatches, MsePlainSgdEqualsTheKernelSequence) {
  for (bool pen : {false, true}) {
    check<float>(LossKind::mse, OptimizerKind::sgd, pen, false);
    check<double>(LossKind::mse, OptimizerKind::sgd, pen, false);
  }
}

// Dropout after a hidden layer and after the output, masks at step dropout_step + batch.
TEST(MlpTrainBatches, DropoutEqualsTheKernelSequence) {
  check<float>(LossKind::cross_entropy, OptimizerKind::adam, true, true, {0.3, 0, 0.2});
  check<double>(LossKind::mse, OptimizerKind::sgd, false, true, {0, 0.5, 0});
  Case<float> with(LossKind::cross_entropy, OptimizerKind::sgd, false), without = with;
  with.drop = {0.3, 0, 0};
  run_core(with);
  run_core(without);
  EXPECT_FALSE(same_bits(with.w[0], without.w[0]));
}

// Sample weights: weighted_loss in place of the loss, the rest as without; the first batch
// (rows order[0..7]) weighs 0 altogether, and changes nothing but the optimizer's step.
std::vector<double> sample_weights() {
  std::vector<double> w(37);
  for (index_t i = 0; i < 37; ++i) w[i] = (i % 5 == 0) ? 0.0 : 0.25 * double(i % 7);
  for (index_t i = 0; i < 8; ++i) w[(i * 11) % 37] = 0.0;
  return w;
}

TEST(MlpTrainBatches, SampleWeightsEqualTheKernelSequence) {
  const auto w = sample_weights();
  for (bool pen : {false, true}) {
    check<float>(LossKind::cross_entropy, OptimizerKind::sgd, pen, true, {0, 0, 0}, w);
    check<double>(LossKind::bce, OptimizerKind::adam, pen, true, {0, 0, 0}, w);
    check<float>(LossKind::mse, OptimizerKind::adam, pen, true, {0.3, 0, 0}, w);
  }
  Case<double> with(LossKind::mse, OptimizerKind::sgd, false), without = with;
  with.weights = w;
  run_core(with);
  run_core(without);
  EXPECT_FALSE(same_bits(with.w[0], without.w[0]));
}

// The penalty is really there: in the loss and in the weights.
TEST(MlpTrainBatches, PenaltiesChangeLossAndWeights) {
  Case<float> with(LossKind::cross_entropy, OptimizerKind::sgd, true);
  Case<float> without(LossKind::cross_entropy, OptimizerKind::sgd, false);
  const Result a = run_core(with), b = run_core(without);
  EXPECT_GT(a.loss_sum, b.loss_sum);
  EXPECT_FALSE(same_bits(with.w[0], without.w[0]));
  EXPECT_TRUE(same_bits(with.b[1], without.b[1]));  // layer 1 has no bias: both empty
}

// count_correct: np.argmax's choice (first maximum, first NaN) and the binary rule.
TEST(CountCorrect, ArgmaxTiesAndNaNAsNumPy) {
  const double nan = std::nan("");
  const std::vector<double> z = {1, 3, 3, 0,  2, 2, 2, 2,  1, nan, 5, nan,  nan, nan, 1, 9};
  EXPECT_EQ(blockprop::count_correct<double>(4, 4, z.data(), std::vector<std::int64_t>{1, 0, 1, 0}.data(), nullptr), 4);
  EXPECT_EQ(blockprop::count_correct<double>(4, 4, z.data(), std::vector<std::int64_t>{2, 1, 2, 3}.data(), nullptr), 0);
  const std::vector<float> logits = {1, -1, 0, 2,  float(nan), 3};
  const std::vector<float> t = {1, 0, 0, 1,  0, 0.75f};
  EXPECT_EQ(blockprop::count_correct<float>(3, 2, logits.data(), nullptr, t.data()), 3);
  const std::vector<float> t2 = {1, 0.5f, 0, 1,  1, 1};  // 0.5 is target 0; NaN predicts 0
  EXPECT_EQ(blockprop::count_correct<float>(3, 2, logits.data(), nullptr, t2.data()), 2);
}

}  // namespace
