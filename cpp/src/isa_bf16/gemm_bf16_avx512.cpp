// bfloat16 GEMM leaf kernels on AVX512-BF16: packing in the pair layout (rounding as it packs)
// and the VDPBF16PS micro-kernel. See bf16_kernels.h.
#include "isa_bf16/bf16_simd.h"

#include "isa/blocking.h"

namespace blockprop {
namespace avx512 {
namespace bf16 {

namespace {
constexpr int MR = blocking::avx512_bf16::MR, NR = blocking::avx512_bf16::NR;
}

void pack_a_pairs(index_t mr, index_t kc, const float* a, index_t rsa, index_t csa, bf16_t* dst,
                  index_t kp) {
  static_assert(MR <= 16, "a panel's rows fit one vector of 32-bit words");
  std::uint32_t* d = reinterpret_cast<std::uint32_t*>(dst);
  const index_t pairs = kp / 2, kq = (kc + 1) / 2;
  const __mmask16 rows = first(MR);  // stores: the panel's MR words, padding rows included
  if (csa == 1) {  // row-major A: 16 pairs of each row, transposed to 16 k steps of MR rows
    for (index_t q0 = 0; q0 < kq; q0 += 16) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i < mr ? pairs_along(a + i * rsa + 2 * q0, kc - 2 * q0) : _mm512_setzero_si512();
      transpose16(r);
      for (index_t u = 0; u < 16 && q0 + u < kq; ++u)
        _mm512_mask_storeu_epi32(d + (q0 + u) * MR, rows, r[u]);
    }
  } else if (rsa == 1) {  // column-major A: two columns of k interleaved into pairs
    const __mmask16 m = first(mr);
    for (index_t q = 0; q < kq; ++q) {
      const __m512 x = _mm512_maskz_loadu_ps(m, a + 2 * q * csa);
      const __m512 y = 2 * q + 1 < kc ? _mm512_maskz_loadu_ps(m, a + (2 * q + 1) * csa)
                                      : _mm512_setzero_ps();
      _mm512_mask_storeu_epi32(d + q * MR, rows, pairs_across(x, y));
    }
  } else {
    for (index_t q = 0; q < kq; ++q)
      for (index_t i = 0; i < MR; ++i) {
        const bf16_t lo = i < mr ? round_scalar(a[i * rsa + 2 * q * csa]) : 0;
        const bf16_t hi = i < mr && 2 * q + 1 < kc ? round_scalar(a[i * rsa + (2 * q + 1) * csa]) : 0;
        d[q * MR + i] = lo | std::uint32_t(hi) << 16;
      }
  }
  for (index_t q = kq; q < pairs; ++q)
    for (index_t i = 0; i < MR; ++i) d[q * MR + i] = 0;
}

void pack_b_pairs(index_t kc, index_t nr, const float* b, index_t rsb, index_t csb, bf16_t* dst,
                  index_t kp) {
  static_assert(NR == 32, "a panel is two vectors of 16 columns");
  std::uint32_t* d = reinterpret_cast<std::uint32_t*>(dst);
  const index_t pairs = kp / 2, kq = (kc + 1) / 2;
  if (csb == 1) {  // row-major B: rows 2q and 2q+1 interleaved, 16 columns at a time
    for (index_t q = 0; q < kq; ++q)
      for (index_t h = 0; h < NR; h += 16) {
        const __mmask16 m = first(nr - h);
        const float* r0 = b + 2 * q * rsb + h;
        const __m512 x = _mm512_maskz_loadu_ps(m, r0);
        const __m512 y = 2 * q + 1 < kc ? _mm512_maskz_loadu_ps(m, r0 + rsb) : _mm512_setzero_ps();
        _mm512_storeu_si512(d + q * NR + h, pairs_across(x, y));
      }
  } else if (rsb == 1) {  // B = Wᵀ: 16 pairs along each column, transposed to 16 k steps
    for (index_t q0 = 0; q0 < kq; q0 += 16)
      for (index_t h = 0; h < NR; h += 16) {
        __m512i r[16];
        for (int j = 0; j < 16; ++j)
          r[j] = h + j < nr ? pairs_along(b + (h + j) * csb + 2 * q0, kc - 2 * q0)
                            : _mm512_setzero_si512();
        transpose16(r);
        for (index_t u = 0; u < 16 && q0 + u < kq; ++u)
          _mm512_storeu_si512(d + (q0 + u) * NR + h, r[u]);
      }
  } else {
    for (index_t q = 0; q < kq; ++q)
      for (index_t j = 0; j < NR; ++j) {
        const bf16_t lo = j < nr ? round_scalar(b[2 * q * rsb + j * csb]) : 0;
        const bf16_t hi = j < nr && 2 * q + 1 < kc ? round_scalar(b[(2 * q + 1) * rsb + j * csb]) : 0;
        d[q * NR + j] = lo | std::uint32_t(hi) << 16;
      }
  }
  for (index_t q = kq; q < pairs; ++q)
    for (index_t j = 0; j < NR; ++j) d[q * NR + j] = 0;
}

namespace {

// acc[i][h] (16 float sums each) += Σ_pairs A(i, pair)·B(pair, 16h..16h+15), for R ≤ MR rows of
// a panel of MR; then the write-back of the R×NR tile (its first mr rows, nr columns).
template <int R>
void dpbf16_rows(index_t kp, const bf16_t* a, const bf16_t* b, float alpha, float beta, float* c,
                 index_t rsc, index_t csc, index_t mr, index_t nr) {
  const std::uint32_t* a32 = reinterpret_cast<const std::uint32_t*>(a);
  __m512 acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (index_t q = 0, pairs = kp / 2; q < pairs; ++q) {
    __m512bh b0, b1;
    const __m512i l0 = _mm512_loadu_si512(b), l1 = _mm512_loadu_si512(b + 32);
    std::memcpy(&b0, &l0, sizeof b0);
    std::memcpy(&b1, &l1, sizeof b1);
    __builtin_prefetch(b + 64 * blocking::kPrefetchBIterations, 0, 3);
    __builtin_prefetch(b + 64 * blocking::kPrefetchBIterations + 32, 0, 3);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      __m512bh ai;
      const __m512i bc = _mm512_set1_epi32(static_cast<int>(a32[i]));
      std::memcpy(&ai, &bc, sizeof ai);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
    }
    a32 += MR;
    b += 2 * NR;
  }
  alignas(64) float tile[R * NR];
  for (int i = 0; i < R; ++i) {
    _mm512_store_ps(tile + i * NR, acc[i][0]);
    _mm512_store_ps(tile + i * NR + 16, acc[i][1]);
  }
  write_back(tile, NR, alpha, beta, c, rsc, csc, mr, nr);
}

}  // namespace

void kernel_dpbf16(index_t kp, const bf16_t* a, const bf16_t* b, float alpha, float beta, float* c,
                   index_t rsc, index_t csc, index_t mr, index_t nr) {
  // The partial last panel of A runs the kernel of the fewest rows that covers it.
  if (mr <= 4) return dpbf16_rows<4>(kp, a, b, alpha, beta, c, rsc, csc, mr, nr);
  if (mr <= 7) return dpbf16_rows<7>(kp, a, b, alpha, beta, c, rsc, csc, mr, nr);
  if (mr <= 10) return dpbf16_rows<10>(kp, a, b, alpha, beta, c, rsc, csc, mr, nr);
  dpbf16_rows<MR>(kp, a, b, alpha, beta, c, rsc, csc, mr, nr);
}

}  // namespace bf16
}  // namespace avx512
}  // namespace blockprop
