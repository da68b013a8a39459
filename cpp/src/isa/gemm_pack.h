// Packing for the blocked GEMM: copies a block of A or B, whatever its strides, into the
// contiguous, zero-padded micro-panel order the micro-kernel streams through.
#pragma once
#include "isa/blocking.h"
#include "isa/isa_prelude.h"

#if BP_VEC_BYTES == 64 && defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace blockprop {
namespace BP_ISA_NS {

#if BP_VEC_BYTES == 64 && defined(__AVX512F__)
#define BP_PACK_AVX512 1
// The unmasked forms of these intrinsics pass _mm512_undefined_ps() to the masked builtin, which
// GCC 12 reports as used uninitialized once inlined (70 warnings a build; GCC bug 105593). The
// masked forms with every lane selected and a defined pass-through are the same instructions.
namespace all_lanes {
inline __m512 unpacklo(__m512 a, __m512 b) { return _mm512_mask_unpacklo_ps(a, 0xFFFF, a, b); }
inline __m512 unpackhi(__m512 a, __m512 b) { return _mm512_mask_unpackhi_ps(a, 0xFFFF, a, b); }
inline __m512d unpacklo(__m512d a, __m512d b) { return _mm512_mask_unpacklo_pd(a, 0xFF, a, b); }
inline __m512d unpackhi(__m512d a, __m512d b) { return _mm512_mask_unpackhi_pd(a, 0xFF, a, b); }
template <int Imm>
inline __m512 shuffle_f32x4(__m512 a, __m512 b) {
  return _mm512_mask_shuffle_f32x4(a, 0xFFFF, a, b, Imm);
}
template <int Imm>
inline __m512d shuffle_f64x2(__m512d a, __m512d b) {
  return _mm512_mask_shuffle_f64x2(a, 0xFF, a, b, Imm);
}
}  // namespace all_lanes

// dst[c·ldd + r] = src[r·lds + c] for r < rows (≤ 16, missing rows read as zeros), c < 16; each
// dst row keeps the lanes in `keep`. Packing is a transpose whenever the packed operand is stored
// the other way round (row-major A, or B = Wᵀ); done a scalar at a time it costs ~2 cycles per
// value, 15–30% of a GEMM with n or m of a few hundred (a dense layer), in registers ~0.2.
inline void transpose16_ps(const float* src, index_t lds, index_t rows, float* dst, index_t ldd,
                           __mmask16 keep) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_loadu_ps(src + i * lds) : _mm512_setzero_ps();
  for (int i = 0; i < 16; i += 2) {  // per 128-bit lane: rows i and i+1 interleaved
    t[i] = all_lanes::unpacklo(r[i], r[i + 1]);
    t[i + 1] = all_lanes::unpackhi(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {  // now lane L of r[g + c] is column 4L + c of rows g..g+3
    const __m512d a0 = _mm512_castps_pd(t[g]), a1 = _mm512_castps_pd(t[g + 1]);
    const __m512d a2 = _mm512_castps_pd(t[g + 2]), a3 = _mm512_castps_pd(t[g + 3]);
    r[g] = _mm512_castpd_ps(all_lanes::unpacklo(a0, a2));
    r[g + 1] = _mm512_castpd_ps(all_lanes::unpackhi(a0, a2));
    r[g + 2] = _mm512_castpd_ps(all_lanes::unpacklo(a1, a3));
    r[g + 3] = _mm512_castpd_ps(all_lanes::unpackhi(a1, a3));
  }
  for (int c = 0; c < 4; ++c) {  // lane L of the four row groups together: column 4L + c
    const __m512 c0 = all_lanes::shuffle_f32x4<0x88>(r[c], r[4 + c]);
    const __m512 c1 = all_lanes::shuffle_f32x4<0xDD>(r[c], r[4 + c]);
    const __m512 d0 = all_lanes::shuffle_f32x4<0x88>(r[8 + c], r[12 + c]);
    const __m512 d1 = all_lanes::shuffle_f32x4<0xDD>(r[8 + c], r[12 + c]);
    _mm512_mask_storeu_ps(dst + c * ldd, keep, all_lanes::shuffle_f32x4<0x88>(c0, d0));
    _mm512_mask_storeu_ps(dst + (4 + c) * ldd, keep, all_lanes::shuffle_f32x4<0x88>(c1, d1));
    _mm512_mask_storeu_ps(dst + (8 + c) * ldd, keep, all_lanes::shuffle_f32x4<0xDD>(c0, d0));
    _mm512_mask_storeu_ps(dst + (12 + c) * ldd, keep, all_lanes::shuffle_f32x4<0xDD>(c1, d1));
  }
}

// The same for doubles, 8×8: dst[c·ldd + r] = src[r·lds + c] for r < rows (≤ 8, missing rows
// read as zeros), c < 8; each dst row keeps the lanes in `keep`.
inline void transpose8_pd(const double* src, index_t lds, index_t rows, double* dst, index_t ldd,
                          __mmask8 keep) {
  __m512d r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = i < rows ? _mm512_loadu_pd(src + i * lds) : _mm512_setzero_pd();
  for (int i = 0; i < 8; i += 2) {  // lane L of t[i + e]: column 2L + e of rows i and i+1
    t[i] = all_lanes::unpacklo(r[i], r[i + 1]);
    t[i + 1] = all_lanes::unpackhi(r[i], r[i + 1]);
  }
  for (int e = 0; e < 2; ++e) {  // column 2L + e is lane L of t[e], t[2 + e], t[4 + e], t[6 + e]
    const __m512d u01 = all_lanes::shuffle_f64x2<0x44>(t[e], t[2 + e]);  // lanes 0, 1 of each
    const __m512d u23 = all_lanes::shuffle_f64x2<0xEE>(t[e], t[2 + e]);  // lanes 2, 3 of each
    const __m512d w01 = all_lanes::shuffle_f64x2<0x44>(t[4 + e], t[6 + e]);
    const __m512d w23 = all_lanes::shuffle_f64x2<0xEE>(t[4 + e], t[6 + e]);
    _mm512_mask_storeu_pd(dst + e * ldd, keep, all_lanes::shuffle_f64x2<0x88>(u01, w01));
    _mm512_mask_storeu_pd(dst + (2 + e) * ldd, keep, all_lanes::shuffle_f64x2<0xDD>(u01, w01));
    _mm512_mask_storeu_pd(dst + (4 + e) * ldd, keep, all_lanes::shuffle_f64x2<0x88>(u23, w23));
    _mm512_mask_storeu_pd(dst + (6 + e) * ldd, keep, all_lanes::shuffle_f64x2<0xDD>(u23, w23));
  }
}

// The register transpose for T, a block of one vector's lanes square (16 floats, 8 doubles).
template <typename T>
constexpr index_t kTransposeBlock = 64 / sizeof(T);
template <typename T>
inline void transpose_block(const T* src, index_t lds, index_t rows, T* dst, index_t ldd,
                            unsigned keep) {
  if constexpr (sizeof(T) == 4)
    transpose16_ps(src, lds, rows, dst, ldd, static_cast<__mmask16>(keep));
  else
    transpose8_pd(src, lds, rows, dst, ldd, static_cast<__mmask8>(keep));
}
#else
#define BP_PACK_AVX512 0
#endif

// One A micro-panel: rows [0,mr) × cols [0,kc) of A(i,p) = a[i·rsa + p·csa], stored p-major
// (dst[p·MR + i]) and padded with zero rows up to MR.
template <typename T, int MR>
inline void pack_a_panel(index_t mr, index_t kc, const T* a, index_t rsa, index_t csa, T* dst) {
#if BP_PACK_AVX512
  if constexpr (MR <= 16) {
    if (csa == 1 && rsa != 1) {  // row-major A: blocks of rows × columns transposed in registers
      constexpr index_t W = kTransposeBlock<T>;
      const index_t done = kc / W * W;
      for (index_t p = 0; p < done; p += W)
        for (index_t i0 = 0; i0 < MR; i0 += W)  // float: one block of MR rows; double: 8 + 6
          transpose_block<T>(a + i0 * rsa + p, rsa, mr - i0, dst + p * MR + i0, MR,
                             (1u << (MR - i0 < W ? MR - i0 : W)) - 1);
      a += done;
      dst += done * MR;
      kc -= done;
    }
  }
#endif
  if (csa == 1 && rsa != 1) {  // row-major A: read each row contiguously
    for (index_t i = 0; i < mr; ++i) {
      const T* row = a + i * rsa;
      for (index_t p = 0; p < kc; ++p) dst[p * MR + i] = row[p];
    }
  } else {
    for (index_t p = 0; p < kc; ++p) {
      const T* col = a + p * csa;
      for (index_t i = 0; i < mr; ++i) dst[p * MR + i] = col[i * rsa];
    }
  }
  if (mr < MR)
    for (index_t p = 0; p < kc; ++p)
      for (index_t i = mr; i < MR; ++i) dst[p * MR + i] = T(0);
}

// A whole MC×KC block of a column-major A (A(i,p) = a[i + p·csa], as for Xᵀ in dW = δᵀ·X) into
// consecutive micro-panels, one column of A at a time: each read is a long contiguous run, where
// packing panel by panel would touch a new page of A for every column of every panel.
template <typename T, int MR>
inline void pack_a_block_colmajor(index_t mc, index_t kc, const T* a, index_t csa, T* dst) {
  const index_t panels = (mc + MR - 1) / MR;
  constexpr index_t kLine = 64 / sizeof(T);
  for (index_t p = 0; p < kc; ++p) {
    const T* col = a + p * csa;
    // Each column is a short run on its own page, too short for the hardware prefetcher to
    // follow: ask for a column a few ahead (prefetching past the end of A never faults).
    const T* ahead = col + blocking::kPrefetchAColumnsAhead * csa;
    for (index_t i = 0; i < mc; i += kLine) __builtin_prefetch(ahead + i, 0, 3);
    __builtin_prefetch(ahead + mc - 1, 0, 3);
#if BP_PACK_AVX512
    if constexpr (MR <= 64 / static_cast<int>(sizeof(T))) {  // one masked load and store a panel
      for (index_t ir = 0; ir < panels; ++ir) {
        const index_t i0 = ir * MR, mr = mc - i0 < MR ? mc - i0 : MR;
        const __mmask16 all = static_cast<__mmask16>((1u << MR) - 1);
        const __mmask16 rows = static_cast<__mmask16>((1u << mr) - 1);  // the rest read as 0
        T* d = dst + ir * MR * kc + p * MR;
        if constexpr (sizeof(T) == 4)
          _mm512_mask_storeu_ps(d, all, _mm512_maskz_loadu_ps(rows, col + i0));
        else
          _mm512_mask_storeu_pd(d, static_cast<__mmask8>(all),
                                _mm512_maskz_loadu_pd(static_cast<__mmask8>(rows), col + i0));
      }
      continue;
    }
#endif
    for (index_t ir = 0; ir < panels; ++ir) {
      T* d = dst + ir * MR * kc + p * MR;
      const index_t i0 = ir * MR;
      const index_t mr = mc - i0 < MR ? mc - i0 : MR;
      for (index_t i = 0; i < mr; ++i) d[i] = col[i0 + i];
      for (index_t i = mr; i < MR; ++i) d[i] = T(0);
    }
  }
}

// One B micro-panel: rows [0,kc) × cols [0,nr) of B(p,j) = b[p·rsb + j·csb], stored p-major
// (dst[p·NR + j]) and padded with zero columns up to NR.
template <typename T, int NR>
inline void pack_b_panel(index_t kc, index_t nr, const T* b, index_t rsb, index_t csb, T* dst) {
  if (csb == 1 && nr == NR) {  // row-major B: NR contiguous values per row
    for (index_t p = 0; p < kc; ++p) std::memcpy(dst + p * NR, b + p * rsb, NR * sizeof(T));
    return;
  }
#if BP_PACK_AVX512
  if constexpr (NR % kTransposeBlock<T> == 0) {
    if (rsb == 1 && csb != 1) {  // B = Wᵀ: blocks of rows of W × k transposed in registers
      constexpr index_t W = kTransposeBlock<T>;
      const index_t done = kc / W * W;
      for (index_t p = 0; p < done; p += W)
        for (index_t j = 0; j < NR; j += W)
          transpose_block<T>(b + j * csb + p, csb, nr - j, dst + p * NR + j, NR, (1u << W) - 1);
      b += done;
      dst += done * NR;
      kc -= done;
    }
  }
#endif
  if (rsb == 1) {  // B = Wᵀ with W row-major: a transpose, done a cache line of W at a time
    // Column by column over all of kc would sweep the whole panel (kc·NR values, more than L1)
    // once per column; in slices of one line of W per column it stays in L1.
    constexpr index_t kLine = 64 / sizeof(T);
    for (index_t p0 = 0; p0 < kc; p0 += kLine) {
      const index_t p1 = p0 + kLine < kc ? p0 + kLine : kc;
      for (index_t j = 0; j < nr; ++j) {
        const T* col = b + j * csb;
        for (index_t p = p0; p < p1; ++p) dst[p * NR + j] = col[p];
      }
    }
  } else {
    for (index_t p = 0; p < kc; ++p)
      for (index_t j = 0; j < nr; ++j) dst[p * NR + j] = b[p * rsb + j * csb];
  }
  if (nr < NR)
    for (index_t p = 0; p < kc; ++p)
      for (index_t j = nr; j < NR; ++j) dst[p * NR + j] = T(0);
}

}  // namespace BP_ISA_NS
}  // namespace blockprop
