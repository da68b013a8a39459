// Batch and layer normalization against naive double loops, on every instruction set.
#include "blockprop/normalization.h"
#include "test_util.h"

namespace {

using namespace bptest;

struct Naive {
  std::vector<double> y, mean, var, dx, dg, db;
};

// Normalization along `per_column` (batch norm) or per row (layer norm), then its gradients.
Naive naive(index_t rows, index_t cols, const std::vector<double>& x, const std::vector<double>& g,
            const std::vector<double>& b, const std::vector<double>& dy, double eps, bool batch) {
  Naive n;
  const index_t groups = batch ? cols : rows, len = batch ? rows : cols;
  auto at = [&](index_t grp, index_t k) { return batch ? k * cols + grp : grp * cols + k; };
  n.y.assign(rows * cols, 0);
  n.dx.assign(rows * cols, 0);
  n.dg.assign(cols, 0);
  n.db.assign(cols, 0);
  for (index_t grp = 0; grp < groups; ++grp) {
    double m = 0, v = 0;
    for (index_t k = 0; k < len; ++k) m += x[at(grp, k)];
    m /= len;
    for (index_t k = 0; k < len; ++k) v += (x[at(grp, k)] - m) * (x[at(grp, k)] - m);
    v /= len;
    n.mean.push_back(m);
    n.var.push_back(v);
    const double is = 1 / std::sqrt(v + eps);
    double sg = 0, sgx = 0;
    for (index_t k = 0; k < len; ++k) {
      const index_t i = at(grp, k), j = i % cols;
      const double xh = (x[i] - m) * is;
      n.y[i] = xh * g[j] + b[j];
      n.dg[j] += dy[i] * xh;
      n.db[j] += dy[i];
      sg += dy[i] * g[j];
      sgx += dy[i] * g[j] * xh;
    }
    for (index_t k = 0; k < len; ++k) {
      const index_t i = at(grp, k), j = i % cols;
      const double xh = (x[i] - m) * is;
      n.dx[i] = is * (dy[i] * g[j] - sg / len - xh * sgx / len);
    }
  }
  return n;
}

template <typename T>
void check(index_t rows, index_t cols, bool batch) {
  const auto x = random_vector<T>(rows * cols, 80 + rows, -2, 3), dy = random_vector<T>(rows * cols, 81);
  const auto g = random_vector<T>(cols, 82, 0.5, 2), b = random_vector<T>(cols, 83);
  const double eps = 1e-5, tol = sizeof(T) == 4 ? 2e-4 : 1e-10;
  std::vector<double> xd(x.begin(), x.end()), gd(g.begin(), g.end()), bd(b.begin(), b.end()),
      dyd(dy.begin(), dy.end());
  const Naive want = naive(rows, cols, xd, gd, bd, dyd, eps, batch);
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    const std::string where = isa_label(isa) + " rows=" + std::to_string(rows) + " cols=" +
                              std::to_string(cols) + (batch ? " batch" : " layer");
    const index_t ns = batch ? cols : rows;
    std::vector<T> y(rows * cols), mean(ns), var(ns), dx(rows * cols), dg(cols), db(cols);
    if (batch) {
      blockprop::batch_norm_forward<T>(rows, cols, x.data(), g.data(), b.data(), eps, y.data(), mean.data(), var.data());
      blockprop::batch_norm_backward<T>(rows, cols, dy.data(), x.data(), mean.data(), var.data(), g.data(), eps,
                                        true, dx.data(), dg.data(), db.data());
    } else {
      blockprop::layer_norm_forward<T>(rows, cols, x.data(), g.data(), b.data(), eps, y.data(), mean.data(), var.data());
      blockprop::layer_norm_backward<T>(rows, cols, dy.data(), x.data(), mean.data(), var.data(), g.data(), eps,
                                        dx.data(), dg.data(), db.data());
    }
    for (index_t i = 0; i < ns; ++i) {
      EXPECT_NEAR(mean[i], want.mean[i], tol) << where;
      EXPECT_NEAR(var[i], want.var[i], tol * (1 + want.var[i])) << where;
    }
    for (index_t i = 0; i < rows * cols; ++i) {
      EXPECT_NEAR(y[i], want.y[i], tol * (1 + std::abs(want.y[i]))) << where << " y i=" << i;
      EXPECT_NEAR(dx[i], want.dx[i], tol * (1 + std::abs(want.dx[i]))) << where << " dx i=" << i;
    }
    for (index_t j = 0; j < cols; ++j) {
      EXPECT_NEAR(dg[j], want.dg[j], tol * (1 + std::abs(want.dg[j])) * rows) << where;
      EXPECT_NEAR(db[j], want.db[j], tol * (1 + std::abs(want.db[j])) * rows) << where;
    }
  }
}

TEST(Normalization, BatchNorm) {
  for (auto [r, c] : {std::pair<index_t, index_t>{2, 1}, {5, 3}, {64, 33}}) {
    check<float>(r, c, true);
    check<double>(r, c, true);
  }
}

TEST(Normalization, LayerNorm) {
  for (auto [r, c] : {std::pair<index_t, index_t>{1, 2}, {5, 3}, {33, 64}}) {
    check<float>(r, c, false);
    check<double>(r, c, false);
  }
}

TEST(Normalization, BatchNormInferenceUsesGivenStatistics) {
  const std::vector<double> x = {1, 2, 3, 4}, g = {2, 1}, b = {0, 1}, m = {1, 1}, v = {4, 1};
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    std::vector<double> y(4);
    blockprop::batch_norm_inference<double>(2, 2, x.data(), g.data(), b.data(), m.data(), v.data(), 0.0, y.data());
    EXPECT_DOUBLE_EQ(y[0], 0.0);
    EXPECT_DOUBLE_EQ(y[1], 2.0);
    EXPECT_DOUBLE_EQ(y[2], 2.0);
    EXPECT_DOUBLE_EQ(y[3], 4.0);
  }
}

}  // namespace
