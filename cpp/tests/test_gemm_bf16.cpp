// gemm_bf16 against a naive loop on bfloat16-rounded operands, for every transpose, awkward sizes
// (odd k for the pairs, k across AMX's 32 and KC), every bf16 path this CPU has, the portable one
// on every instruction set; and the ISA cap, the path names, double refused.
#include <cstring>
#include <stdexcept>

#include "blockprop/dense.h"
#include "blockprop/gemm.h"

#include "test_util.h"

namespace {

using namespace bptest;
using blockprop::Bf16Path;

// x rounded to the nearest bfloat16, ties to even (the definition, written out on the bits).
double round_bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  const std::uint32_t lower = u & 0xFFFFu, kept = u & 0xFFFF0000u;
  std::uint32_t r = kept;
  if (lower > 0x8000u || (lower == 0x8000u && (kept & 0x10000u))) r = kept + 0x10000u;
  float y;
  std::memcpy(&y, &r, 4);
  return y;
}

struct PathScope {
  Isa isa;
  Bf16Path path;
  PathScope(Isa i, Bf16Path p) : isa(blockprop::active_isa()), path(blockprop::best_bf16_path()) {
    blockprop::set_active_isa(i);
    blockprop::set_bf16_path(p);
  }
  ~PathScope() {
    blockprop::set_active_isa(isa);
    blockprop::set_bf16_path(path);
  }
};

// (isa, path) pairs to test: portable on every ISA, the others on avx512.
std::vector<std::pair<Isa, Bf16Path>> testable_paths() {
  std::vector<std::pair<Isa, Bf16Path>> out;
  for (Isa isa : testable_isas()) out.push_back({isa, Bf16Path::portable});
  for (Bf16Path p : {Bf16Path::avx512_bf16, Bf16Path::amx})
    if (blockprop::bf16_path_supported(p)) out.push_back({Isa::avx512, p});
  return out;
}

void check(index_t m, index_t n, index_t k, bool ta, bool tb, float alpha, float beta) {
  auto a = random_vector<float>(m * k, 11 + m + 7 * k);
  auto b = random_vector<float>(k * n, 12 + n + 5 * k);
  auto c = random_vector<float>(m * n, 13 + m * n);
  const index_t rsa = ta ? 1 : k, csa = ta ? m : 1, rsb = tb ? 1 : n, csb = tb ? k : 1;
  std::vector<double> want(m * n), scale(m * n);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double s = 0, mag = 0;
      for (index_t p = 0; p < k; ++p) {
        const double t = round_bf16(a[i * rsa + p * csa]) * round_bf16(b[p * rsb + j * csb]);
        s += t;
        mag += std::abs(t);
      }
      want[i * n + j] = alpha * s + (beta != 0 ? beta * double(c[i * n + j]) : 0.0);
      scale[i * n + j] = std::abs(alpha) * mag + std::abs(beta * double(c[i * n + j])) + 1e-30;
    }
  for (auto [isa, path] : testable_paths()) {
    PathScope scope(isa, path);
    ASSERT_EQ(blockprop::active_bf16_path(), path);
    auto got = c;
    blockprop::gemm_bf16(m, n, k, alpha, a.data(), rsa, csa, b.data(), rsb, csb, beta, got.data(),
                         n, 1);
    double worst = 0;  // error relative to the summed magnitude, in units of eps32·sqrt(k)
    for (index_t i = 0; i < m * n; ++i)
      worst = std::max(worst, std::abs(double(got[i]) - want[i]) / scale[i]);
    worst /= 1.2e-7 * std::sqrt(double(k) + 1);
    EXPECT_LE(worst, 16.0) << "m=" << m << " n=" << n << " k=" << k << " trans_a=" << ta
                           << " trans_b=" << tb << " " << isa_label(isa)
                           << " bf16_path=" << blockprop::bf16_path_name(path);
  }
}

TEST(GemmBf16, AwkwardShapesEveryPath) {
  for (index_t m : {1, 2, 13, 14, 15, 32, 33, 70})
    for (index_t n : {1, 5, 16, 31, 32, 33, 65})
      for (index_t k : {1, 2, 3, 31, 32, 33, 67})
        for (int t = 0; t < 4; ++t) check(m, n, k, t & 1, t & 2, 1.0f, 0.0f);
}

TEST(GemmBf16, AlphaBetaAndLongK) {
  for (int t = 0; t < 4; ++t) {
    check(29, 37, 2049, t & 1, t & 2, -0.5f, 1.5f);
    check(100, 130, 300, t & 1, t & 2, 2.0f, -1.0f);
  }
}

TEST(GemmBf16, IsaCapsThePath) {
  for (Isa isa : testable_isas()) {
    PathScope scope(isa, blockprop::best_bf16_path());
    EXPECT_EQ(blockprop::active_bf16_path(),
              isa == Isa::avx512 ? blockprop::best_bf16_path() : Bf16Path::portable);
  }
  Bf16Path p;
  EXPECT_TRUE(blockprop::parse_bf16_path("amx", &p) && p == Bf16Path::amx);
  EXPECT_FALSE(blockprop::parse_bf16_path("fp8", &p));
}

TEST(GemmBf16, DoubleRefused) {
  std::vector<double> x(6, 1.0), w(6, 1.0), y(4);
  EXPECT_THROW(blockprop::dense_forward<double>(2, 3, 2, x.data(), w.data(), nullptr,
                                                blockprop::Activation::linear, y.data(), nullptr,
                                                blockprop::Precision::bfloat16),
               std::invalid_argument);
}

}  // namespace
