// Dense layer forward and backward against naive double loops, on every instruction set.
#include "blockprop/dense.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "test_util.h"

namespace {

using namespace bptest;
using blockprop::Activation;

template <typename T>
const char* dtype() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

template <typename T>
double max_abs_err(const std::vector<T>& got, const std::vector<double>& want) {
  double worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - want[i]));
  return worst;
}

const Activation kActs[] = {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh};
const index_t kDims[] = {1, 7, 17, 33};

// y = f(x·Wᵀ + b), with and without bias
template <typename T>
void check_forward(index_t batch, index_t in, index_t out) {
  const auto x = random_vector<T>(batch * in, 60 + batch + in), w = random_vector<T>(out * in, 61 + out + in);
  const auto b = random_vector<T>(out, 62 + out);
  for (bool with_bias : {true, false})
    for (Activation act : kActs) {
      std::vector<double> want(batch * out);
      for (index_t i = 0; i < batch; ++i)
        for (index_t o = 0; o < out; ++o) {
          double z = with_bias ? double(b[o]) : 0.0;
          for (index_t k = 0; k < in; ++k) z += double(x[i * in + k]) * double(w[o * in + k]);
          want[i * out + o] = naive_f(act, z);
        }
      for (Isa isa : testable_isas()) {
        IsaScope scope(isa);
        std::vector<T> y(batch * out, T(-7));
        blockprop::dense_forward<T>(batch, in, out, x.data(), w.data(), with_bias ? b.data() : nullptr, act,
                                    y.data());
        EXPECT_LE(max_abs_err(y, want), 2 * sum_tolerance<T>(in + 1))
            << "batch=" << batch << " in=" << in << " out=" << out << " bias=" << with_bias
            << " act=" << int(act) << " dtype=" << dtype<T>() << " " << isa_label(isa);
      }
    }
}

// δ = dy ⊙ f'(y); dx = δ·W; dW (+)= δᵀ·x; db (+)= Σ_batch δ — with dx, db null or not.
template <typename T>
void check_backward(index_t batch, index_t in, index_t out, Activation act, bool accumulate, bool need_dx,
                    bool need_db) {
  const auto x = random_vector<T>(batch * in, 70 + batch + in), w = random_vector<T>(out * in, 71 + out);
  const auto dy = random_vector<T>(batch * out, 72 + batch + out);
  auto y = random_vector<T>(batch * out, 73 + out);  // any values in f's range will do
  for (auto& v : y) v = T(naive_f(act, v));
  const auto dw0 = random_vector<T>(out * in, 74), db0 = random_vector<T>(out, 75);
  std::vector<double> delta(batch * out), want_dx(batch * in), want_dw(out * in), want_db(out);
  for (index_t i = 0; i < batch * out; ++i) delta[i] = double(dy[i]) * naive_df(act, y[i]);
  for (index_t i = 0; i < batch; ++i)
    for (index_t k = 0; k < in; ++k)
      for (index_t o = 0; o < out; ++o) want_dx[i * in + k] += delta[i * out + o] * double(w[o * in + k]);
  for (index_t o = 0; o < out; ++o) {
    want_db[o] = accumulate ? double(db0[o]) : 0.0;
    for (index_t i = 0; i < batch; ++i) want_db[o] += delta[i * out + o];
    for (index_t k = 0; k < in; ++k) {
      double s = accumulate ? double(dw0[o * in + k]) : 0.0;
      for (index_t i = 0; i < batch; ++i) s += delta[i * out + o] * double(x[i * in + k]);
      want_dw[o * in + k] = s;
    }
  }
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    std::vector<T> dx(batch * in, T(-7)), dw = dw0, db = db0;
    blockprop::dense_backward<T>(batch, in, out, x.data(), w.data(), dy.data(),
                                 act == Activation::linear ? nullptr : y.data(), act,
                                 need_dx ? dx.data() : nullptr, dw.data(), need_db ? db.data() : nullptr,
                                 accumulate);
    std::ostringstream where;
    where << "batch=" << batch << " in=" << in << " out=" << out << " act=" << int(act)
          << " accumulate=" << accumulate << " dx=" << need_dx << " db=" << need_db << " dtype=" << dtype<T>()
          << " " << isa_label(isa);
    if (need_dx) EXPECT_LE(max_abs_err(dx, want_dx), 2 * sum_tolerance<T>(out)) << where.str() << " (dx)";
    else EXPECT_EQ(dx, std::vector<T>(batch * in, T(-7))) << where.str() << " (dx untouched)";
    EXPECT_LE(max_abs_err(dw, want_dw), 2 * sum_tolerance<T>(batch + 1)) << where.str() << " (dW)";
    if (need_db) EXPECT_LE(max_abs_err(db, want_db), 2 * sum_tolerance<T>(batch + 1)) << where.str() << " (db)";
    else EXPECT_EQ(db, db0) << where.str() << " (db untouched)";
  }
}

template <typename T>
void sweep() {
  for (index_t batch : kDims)
    for (index_t in : kDims)
      for (index_t out : kDims) {
        check_forward<T>(batch, in, out);
        for (Activation act : kActs) check_backward<T>(batch, in, out, act, false, true, true);
      }
  // Gradient accumulation and the optional outputs, on shapes past the vector widths.
  for (bool accumulate : {false, true})
    for (bool need_dx : {false, true})
      for (bool need_db : {false, true})
        for (Activation act : {Activation::linear, Activation::tanh}) {
          check_backward<T>(13, 29, 19, act, accumulate, need_dx, need_db);
          check_backward<T>(1, 1, 1, act, accumulate, need_dx, need_db);
        }
}

TEST(Dense, Float) { sweep<float>(); }
TEST(Dense, Double) { sweep<double>(); }

TEST(Dense, LargerThanGemmBlocks) {
  check_forward<float>(257, 513, 131);
  check_backward<float>(257, 513, 131, Activation::relu, true, true, true);
  check_backward<double>(129, 300, 67, Activation::sigmoid, true, true, true);
}

// dense_forward's count of non-finite values of x·Wᵀ + b (before f): NaN and ±inf in x reach
// every column of their row (through a zero weight as NaN); ReLU's zeroing of -inf is not counted
// as finite; a finite x gives 0.
TEST(Dense, CountsNonFiniteBeforeTheActivation) {
  const index_t batch = 37, in = 29, out = 45;
  auto w = random_vector<float>(out * in, 71);
  const auto b = random_vector<float>(out, 72);
  for (index_t o = 0; o < out; ++o) w[o * in] = std::abs(w[o * in]) + 1;  // column 0 > 0
  w[3 * in + 5] = 0;
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    auto x = random_vector<float>(batch * in, 70);
    std::vector<float> y(batch * out);
    index_t bad = -1;
    blockprop::dense_forward<float>(batch, in, out, x.data(), w.data(), b.data(), Activation::relu,
                                    y.data(), &bad);
    EXPECT_EQ(bad, 0) << isa_label(isa);
    x[4 * in + 0] = -std::numeric_limits<float>::infinity();  // -inf in every column: ReLU → 0
    x[20 * in + 5] = std::numeric_limits<float>::infinity();  // NaN in column 3, inf elsewhere
    x[36 * in + 28] = std::numeric_limits<float>::quiet_NaN();
    blockprop::dense_forward<float>(batch, in, out, x.data(), w.data(), b.data(), Activation::relu,
                                    y.data(), &bad);
    EXPECT_EQ(bad, 3 * out) << isa_label(isa);
    for (index_t o = 0; o < out; ++o) EXPECT_EQ(y[4 * out + o], 0.0f) << isa_label(isa);
  }
}

}  // namespace
