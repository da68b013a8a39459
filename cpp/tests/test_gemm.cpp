// GEMM against a naive triple loop, for every transpose, awkward sizes and every instruction set.
#include "blockprop/gemm.h"
#include "blockprop/threading.h"

#include "test_util.h"

namespace {

using namespace bptest;

// C = alpha·A·B + beta·C with A(i,p) = a[i·rsa + p·csa] etc., in double.
template <typename T>
std::vector<double> naive_gemm(index_t m, index_t n, index_t k, double alpha, const T* a,
                               index_t rsa, index_t csa, const T* b, index_t rsb, index_t csb,
                               double beta, const std::vector<T>& c) {
  std::vector<double> out(m * n);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double s = 0;
      for (index_t p = 0; p < k; ++p) s += double(a[i * rsa + p * csa]) * double(b[p * rsb + j * csb]);
      out[i * n + j] = alpha * s + (beta != 0 ? beta * double(c[i * n + j]) : 0.0);
    }
  return out;
}

template <typename T>
void check_gemm(index_t m, index_t n, index_t k, bool ta, bool tb, double alpha, double beta) {
  auto a = random_vector<T>(m * k, 1 + m + 7 * k);
  auto b = random_vector<T>(k * n, 2 + n + 5 * k);
  auto c = random_vector<T>(m * n, 3 + m * n);
  const index_t lda = ta ? m : k, ldb = tb ? k : n;
  const index_t rsa = ta ? 1 : lda, csa = ta ? lda : 1, rsb = tb ? 1 : ldb, csb = tb ? ldb : 1;
  const auto want = naive_gemm<T>(m, n, k, alpha, a.data(), rsa, csa, b.data(), rsb, csb, beta, c);
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    auto got = c;
    blockprop::gemm<T>(ta, tb, m, n, k, T(alpha), a.data(), lda, b.data(), ldb, T(beta), got.data(), n);
    double worst = 0;
    for (index_t i = 0; i < m * n; ++i) worst = std::max(worst, std::abs(double(got[i]) - want[i]));
    EXPECT_LE(worst, sum_tolerance<T>(k) * (std::abs(alpha) + std::abs(beta) + 1))
        << "m=" << m << " n=" << n << " k=" << k << " trans_a=" << ta << " trans_b=" << tb
        << " " << isa_label(isa) << " dtype=" << (sizeof(T) == 4 ? "float32" : "float64");
  }
}

const index_t kSizes[] = {1, 2, 7, 15, 17, 31, 33, 97};

template <typename T>
void sweep() {
  for (index_t m : kSizes)
    for (index_t n : kSizes)
      for (index_t k : {index_t(1), index_t(13), index_t(64)})
        for (int t = 0; t < 4; ++t) check_gemm<T>(m, n, k, t & 1, t & 2, 1.0, 0.0);
}

TEST(Gemm, SmallShapesFloat) { sweep<float>(); }
TEST(Gemm, SmallShapesDouble) { sweep<double>(); }

// The shapes of CrossesEveryBlockBoundary, per dtype: together larger than MC, NC and KC of every
// instruction set (m and n by the first, k by the first on AVX2 and generic, KC 256, and by the
// second everywhere: over AVX-512's KC twice), and multiples of none.
struct Shape {
  index_t m, n, k;
};
const Shape kBlockShapesFloat[] = {{1031, 541, 401}, {61, 45, 2101}};
const Shape kBlockShapesDouble[] = {{1031, 541, 263}, {61, 45, 1201}};

template <typename T, std::size_t N>
void expect_crossing_every_block(const Shape (&shapes)[N]) {
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    bool m_crossed = false, n_crossed = false, k_crossed = false;
    for (const Shape& s : shapes) {
      const auto p = blockprop::gemm_plan<T>(s.m, s.n, s.k, s.k, 1, s.n, 1, 1);
      m_crossed |= p.mc < s.m;
      n_crossed |= p.nc < s.n;
      k_crossed |= p.kc < s.k;
    }
    EXPECT_TRUE(m_crossed && n_crossed && k_crossed)
        << isa_label(isa) << " dtype=" << (sizeof(T) == 4 ? "float32" : "float64")
        << ": MC crossed " << m_crossed << ", NC " << n_crossed << ", KC " << k_crossed;
  }
}

TEST(Gemm, BlockShapesCrossEveryBlock) {
  expect_crossing_every_block<float>(kBlockShapesFloat);
  expect_crossing_every_block<double>(kBlockShapesDouble);
}

TEST(Gemm, CrossesEveryBlockBoundary) {
  for (int t = 0; t < 4; ++t) {
    for (const Shape& s : kBlockShapesFloat) check_gemm<float>(s.m, s.n, s.k, t & 1, t & 2, 1.0, 0.0);
    for (const Shape& s : kBlockShapesDouble)
      check_gemm<double>(s.m, s.n, s.k, t & 1, t & 2, 1.0, 0.0);
  }
}

TEST(Gemm, AlphaBeta) {
  check_gemm<float>(37, 41, 43, false, false, -0.5, 2.0);
  check_gemm<double>(37, 41, 43, true, true, 3.0, -1.0);
  check_gemm<float>(37, 41, 1100, false, true, 1.0, 1.0);  // beta applied once across k slices
}

TEST(Gemm, ZeroKScalesC) {
  std::vector<float> c = {1, 2, 3, 4};
  blockprop::gemm<float>(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{0.5f, 1, 1.5f, 2}));
  blockprop::gemm<float>(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{0, 0, 0, 0}));
}

TEST(Gemm, BetaZeroIgnoresNaNInC) {
  std::vector<float> a = {1, 2}, b = {3, 4}, c = {NAN};
  blockprop::gemm<float>(false, false, 1, 1, 2, 1.0f, a.data(), 2, b.data(), 1, 0.0f, c.data(), 1);
  EXPECT_EQ(c[0], 11.0f);
}

TEST(Gemm, FusedBiasAndActivation) {
  const index_t m = 19, n = 37, k = 29;
  auto a = random_vector<float>(m * k, 4), b = random_vector<float>(k * n, 5), bias = random_vector<float>(n, 6);
  std::vector<float> c0(m * n);
  const auto lin = naive_gemm<float>(m, n, k, 1.0, a.data(), k, 1, b.data(), n, 1, 0.0, c0);
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    for (auto act : {blockprop::Activation::linear, blockprop::Activation::relu,
                     blockprop::Activation::sigmoid, blockprop::Activation::tanh}) {
      blockprop::Epilogue<float> ep;
      ep.bias = bias.data();
      ep.act = act;
      std::vector<float> c(m * n);
      blockprop::gemm<float>(m, n, k, 1.0f, a.data(), k, 1, b.data(), n, 1, 0.0f, c.data(), n, 1, ep);
      for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) {
          double z = lin[i * n + j] + bias[j], want = z;
          if (act == blockprop::Activation::relu) want = z > 0 ? z : 0;
          if (act == blockprop::Activation::sigmoid) want = 1 / (1 + std::exp(-z));
          if (act == blockprop::Activation::tanh) want = std::tanh(z);
          ASSERT_NEAR(c[i * n + j], want, 1e-5) << isa_label(isa) << " act=" << int(act);
        }
    }
  }
}

// A row of A·B is the same bits whatever panel of A it falls in (fit_many's bit-identity with fit
// rests on it): the last rows of a 128-row or 16-row A (a thin last panel, its own micro-kernel)
// equal the same rows computed as part of a full panel, and the naive product; every ISA, both
// dtypes, B in place (row-major) and not (transposed), epilogue with bias and ReLU.
template <typename T>
void thin_last_panel_rows_match_full_panels() {
  const index_t shapes[][3] = {{128, 784, 32}, {16, 100, 129}, {15, 64, 7}, {2, 200, 33}, {1, 96, 5}};
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    for (const auto& s : shapes) {
      const index_t m = s[0], n = s[1], k = s[2];
      const auto a = random_vector<T>(m * k, 11), b = random_vector<T>(k * n, 12);
      const auto bias = random_vector<T>(n, 13);
      std::vector<T> c0(m * n);
      const auto want = naive_gemm<T>(m, n, k, 1.0, a.data(), k, 1, b.data(), n, 1, 0.0, c0);
      for (bool trans_b : {false, true}) {
        std::vector<T> bt(k * n);
        for (index_t p = 0; p < k; ++p)
          for (index_t j = 0; j < n; ++j) bt[j * k + p] = b[p * n + j];
        const T* bp = trans_b ? bt.data() : b.data();
        const index_t rsb = trans_b ? 1 : n, csb = trans_b ? k : 1;
        blockprop::Epilogue<T> ep;
        ep.bias = bias.data();
        ep.act = blockprop::Activation::relu;
        std::vector<T> c(m * n);
        blockprop::gemm<T>(m, n, k, T(1), a.data(), k, 1, bp, rsb, csb, T(0), c.data(), n, 1, ep);
        // The last two rows again, as rows 12–13 of a 14-row A (a full panel): the same bits.
        const index_t r0 = m >= 2 ? m - 2 : 0, rows = m - r0;
        std::vector<T> a14(14 * k, T(0)), c14(14 * n);
        std::copy(a.begin() + r0 * k, a.end(), a14.begin() + (14 - rows) * k);
        blockprop::gemm<T>(14, n, k, T(1), a14.data(), k, 1, bp, rsb, csb, T(0), c14.data(), n, 1, ep);
        const std::string where = isa_label(isa) + " m=" + std::to_string(m) + " n=" +
                                  std::to_string(n) + " k=" + std::to_string(k) +
                                  (trans_b ? " B transposed" : " B row-major");
        for (index_t i = 0; i < rows; ++i)
          for (index_t j = 0; j < n; ++j)
            ASSERT_EQ(c[(r0 + i) * n + j], c14[(14 - rows + i) * n + j]) << where << " row " << r0 + i;
        for (index_t i = 0; i < m; ++i)
          for (index_t j = 0; j < n; ++j) {
            const double z = want[i * n + j] + double(bias[j]);
            ASSERT_NEAR(c[i * n + j], z > 0 ? z : 0, sum_tolerance<T>(k) * (1 + std::abs(z))) << where;
          }
      }
    }
  }
}

TEST(Gemm, ThinLastPanelRowsMatchFullPanelsFloat) { thin_last_panel_rows_match_full_panels<float>(); }
TEST(Gemm, ThinLastPanelRowsMatchFullPanelsDouble) { thin_last_panel_rows_match_full_panels<double>(); }

TEST(Gemm, ThreadCountDoesNotChangeBits) {
  const index_t m = 301, n = 257, k = 900;
  // The two-thread run must be split across threads, or the test compares a run with itself.
  const auto plan = blockprop::gemm_plan<float>(m, n, k, k, 1, 1, k, 2);
  ASSERT_EQ(plan.threads, 2) << blockprop::gemm_strategy_name(plan.strategy);
  ASSERT_NE(plan.strategy, blockprop::GemmStrategy::serial);
  auto a = random_vector<float>(m * k, 7), b = random_vector<float>(k * n, 8);
  std::vector<float> c1(m * n), c2(m * n);
  blockprop::set_num_threads(1);
  blockprop::gemm<float>(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c1.data(), n);
  blockprop::set_num_threads(2);
  blockprop::gemm<float>(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c2.data(), n);
  blockprop::set_num_threads(0);
  EXPECT_EQ(c1, c2);
}

}  // namespace
