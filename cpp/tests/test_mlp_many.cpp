// mlp_many_train_batches against mlp_train_batches of each model alone: models of different
// widths, depths, activations, biases, penalties, Dropout and optimizers, trained together on the
// same batches, must end with the weights, optimizer state, loss and accuracy of their own run,
// to the bit, on every instruction set, float and double, on 1 and 2 threads, in one cache-sized
// group and in several.
#include "blockprop/mlp_many.h"

#include <cstring>
#include <stdexcept>

#include "blockprop/threading.h"
#include "test_util.h"

namespace {

using namespace bptest;
using blockprop::Activation;
using blockprop::LossKind;
using blockprop::MlpLayer;
using blockprop::MlpProblem;
using blockprop::MlpTrainResult;
using blockprop::OptimizerKind;

// One model: its arrays, owned here (a copy is an independent model).
template <typename T>
struct Model {
  std::vector<index_t> widths;
  std::vector<Activation> acts;
  std::vector<bool> bias;
  std::vector<double> drop;
  double l2 = 0;
  OptimizerKind opt = OptimizerKind::sgd;
  std::vector<std::vector<T>> w, b, sw[2], sb[2];
  std::vector<double> lrs;

  Model(int i, index_t in, index_t batches) {
    const Activation kinds[] = {Activation::relu, Activation::tanh, Activation::sigmoid,
                                Activation::leaky_relu, Activation::elu, Activation::softplus,
                                Activation::linear};
    widths = {in, index_t(16 + 9 * (i % 5))};
    if (i % 2) widths.push_back(7);
    widths.push_back(3);
    for (size_t l = 0; l + 1 < widths.size(); ++l) {
      acts.push_back(l + 2 == widths.size() ? Activation::linear : kinds[(i + l) % 7]);
      bias.push_back((i + l) % 4 != 3);
      drop.push_back(l == 0 && i % 3 == 1 ? 0.25 : 0.0);
    }
    l2 = 0.01 * (i % 3);
    opt = i % 2 ? OptimizerKind::adam : OptimizerKind::sgd;
    for (size_t l = 0; l < acts.size(); ++l) {
      const index_t a = widths[l], o = widths[l + 1];
      w.push_back(random_vector<T>(o * a, 100 * i + l, -0.3, 0.3));
      b.push_back(bias[l] ? random_vector<T>(o, 200 * i + l, -0.1, 0.1) : std::vector<T>());
      for (int s = 0; s < 2; ++s) {
        sw[s].emplace_back(o * a, T(0));
        sb[s].emplace_back(bias[l] ? o : 0, T(0));
      }
    }
    for (index_t k = 0; k < batches; ++k) lrs.push_back((0.02 + 0.01 * (i % 4)) * (1.0 - 0.02 * k));
  }

  MlpProblem<T> problem(const T* x, const std::int64_t* labels) {
    MlpProblem<T> p;
    for (size_t l = 0; l < acts.size(); ++l) {
      MlpLayer<T> layer;
      layer.in = widths[l], layer.out = widths[l + 1], layer.act = acts[l];
      layer.w = w[l].data();
      layer.b = bias[l] ? b[l].data() : nullptr;
      layer.l2 = l == 0 ? l2 : 0.0;
      layer.dropout = drop[l], layer.dropout_seed = 7 + l;
      for (int s = 0; s < (opt == OptimizerKind::adam ? 2 : 1); ++s) {
        layer.state_w[s] = sw[s][l].data();
        layer.state_b[s] = bias[l] ? sb[s][l].data() : nullptr;
      }
      p.layers.push_back(layer);
    }
    p.loss = LossKind::cross_entropy;
    p.optimizer = opt;
    p.sgd.momentum = 0.9;
    p.adam.step = 1;
    p.dropout_step = 5;
    p.x = x;
    p.labels = labels;
    return p;
  }
};

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// k models on `in` features: each alone, then all together; every array must agree.
template <typename T>
void check(int k, index_t in, index_t n, index_t batch) {
  const index_t batches = (n + batch - 1) / batch;
  const std::vector<T> x = random_vector<T>(n * in, 1, -1, 1);
  std::vector<std::int64_t> labels, order;
  for (index_t i = 0; i < n; ++i) labels.push_back((i * 7) % 3), order.push_back((i * 11) % n);
  std::vector<Model<T>> alone, together;
  for (int i = 0; i < k; ++i) alone.emplace_back(i, in, batches);
  together = alone;
  for (Isa isa : testable_isas()) {
    for (int threads : {1, 2}) {
      IsaScope scope(isa);
      blockprop::set_num_threads(threads);
      std::vector<Model<T>> a = alone, t = together;
      std::vector<MlpTrainResult> want;
      for (auto& m : a) {
        auto p = m.problem(x.data(), labels.data());
        want.push_back(blockprop::mlp_train_batches<T>(p, order.data(), n, batch, m.lrs.data()));
      }
      std::vector<MlpProblem<T>> problems;
      std::vector<const double*> lrs;
      for (auto& m : t) problems.push_back(m.problem(x.data(), labels.data())), lrs.push_back(m.lrs.data());
      const auto got = blockprop::mlp_many_train_batches<T>(problems, order.data(), n, batch, lrs);
      SCOPED_TRACE(isa_label(isa) + (sizeof(T) == 4 ? " float32" : " float64") + " threads=" +
                   std::to_string(threads) + " models=" + std::to_string(k) + " in=" + std::to_string(in));
      ASSERT_EQ(got.size(), size_t(k));
      for (int i = 0; i < k; ++i) {
        EXPECT_EQ(got[i].loss_sum, want[i].loss_sum) << "model " << i;
        EXPECT_EQ(got[i].correct, want[i].correct) << "model " << i;
        EXPECT_EQ(got[i].samples, n) << "model " << i;
        for (size_t l = 0; l < a[i].w.size(); ++l) {
          EXPECT_TRUE(same_bits(t[i].w[l], a[i].w[l])) << "W of model " << i << " layer " << l;
          EXPECT_TRUE(same_bits(t[i].b[l], a[i].b[l])) << "b of model " << i << " layer " << l;
          for (int s = 0; s < 2; ++s) {
            EXPECT_TRUE(same_bits(t[i].sw[s][l], a[i].sw[s][l])) << "state " << s << " of W, model " << i;
            EXPECT_TRUE(same_bits(t[i].sb[s][l], a[i].sb[s][l])) << "state " << s << " of b, model " << i;
          }
        }
      }
      EXPECT_EQ(problems[0].layers[0].w, t[0].w[0].data()) << "the model's own W is given back";
    }
  }
  blockprop::set_num_threads(0);
}

TEST(MlpManyTrainBatches, SmallModelsInOneGroupEqualTheirOwnRuns) {
  check<float>(6, 5, 37, 8);
  check<double>(6, 5, 37, 8);
}

TEST(MlpManyTrainBatches, WideModelsInSeveralCacheSizedGroupsEqualTheirOwnRuns) {
  // 1500 inputs: several k blocks, and 9 models too large for one 2 MiB group; an uneven last batch.
  check<float>(9, 1500, 70, 33);
  check<double>(9, 1500, 70, 33);
}

TEST(MlpManyTrainBatches, OneModelEqualsItsOwnRun) {
  check<float>(1, 40, 20, 6);
}

TEST(MlpManyTrainBatches, RefusesModelsThatDoNotShareX) {
  const std::vector<float> x1 = random_vector<float>(10 * 4, 1), x2 = x1;
  std::vector<std::int64_t> labels(10, 0), order(10);
  for (int i = 0; i < 10; ++i) order[i] = i;
  Model<float> m1(0, 4, 2), m2(2, 4, 2);
  std::vector<MlpProblem<float>> ps = {m1.problem(x1.data(), labels.data()),
                                       m2.problem(x2.data(), labels.data())};
  std::vector<const double*> lrs = {m1.lrs.data(), m2.lrs.data()};
  EXPECT_THROW(blockprop::mlp_many_train_batches<float>(ps, order.data(), 10, 5, lrs), std::invalid_argument);
  ps[1] = m2.problem(x1.data(), labels.data());
  ps[1].layers[0].act = Activation::gelu;
  EXPECT_THROW(blockprop::mlp_many_train_batches<float>(ps, order.data(), 10, 5, lrs), std::invalid_argument);
  lrs.pop_back();
  EXPECT_THROW(blockprop::mlp_many_train_batches<float>(ps, order.data(), 10, 5, lrs), std::invalid_argument);
}

}  // namespace
