// Shared by the two bf16 leaf-kernel files (compiled with the same flags): rounding to bf16 in
// pairs of k, a 16×16 transpose of 32-bit words, and the write-back of a float tile to C.
// Everything is in namespace blockprop::avx512::bf16 and static: no symbol is shared with the
// objects built without the bf16 flags.
#pragma once
#include <immintrin.h>

#include <cstring>

#include "isa_bf16/bf16_kernels.h"

namespace blockprop {
namespace avx512 {
namespace bf16 {
namespace {

inline __mmask16 first(index_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Two vectors of 16 floats rounded to bf16 (VCVTNE2PS2BF16: nearest even), lo in elements 0–15.
inline __m512i to_bf16(__m512 lo, __m512 hi) {
  __m512bh v = _mm512_cvtne2ps_pbh(hi, lo);
  __m512i r;
  std::memcpy(&r, &v, sizeof r);
  return r;
}

// The 16 pairs (x[2t], x[2t+1]) of the n (≤ 32; the rest zero) consecutive floats at x, as 32-bit words.
inline __m512i pairs_along(const float* x, index_t n) {
  return to_bf16(_mm512_maskz_loadu_ps(first(n), x), _mm512_maskz_loadu_ps(first(n - 16), x + 16));
}

// The pairs (x[t], y[t]) of two vectors, as 32-bit words.
inline __m512i pairs_across(__m512 x, __m512 y) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, to_bf16(x, y));
}

// The unmasked unpack/shuffle intrinsics pass an undefined vector that GCC 12 reports as used
// uninitialized (GCC bug 105593, as in isa/gemm_pack.h): the masked forms with every lane
// selected are the same instructions.
inline __m512i lo32(__m512i a, __m512i b) { return _mm512_mask_unpacklo_epi32(a, 0xFFFF, a, b); }
inline __m512i hi32(__m512i a, __m512i b) { return _mm512_mask_unpackhi_epi32(a, 0xFFFF, a, b); }
inline __m512i lo64(__m512i a, __m512i b) { return _mm512_mask_unpacklo_epi64(a, 0xFF, a, b); }
inline __m512i hi64(__m512i a, __m512i b) { return _mm512_mask_unpackhi_epi64(a, 0xFF, a, b); }
template <int Imm>
inline __m512i lanes128(__m512i a, __m512i b) {
  return _mm512_mask_shuffle_i32x4(a, 0xFFFF, a, b, Imm);
}

// r[c] ← column c of the 16×16 matrix of 32-bit words whose rows are r.
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = lo32(r[i], r[i + 1]);
    t[i + 1] = hi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {
    r[g] = lo64(t[g], t[g + 2]);
    r[g + 1] = hi64(t[g], t[g + 2]);
    r[g + 2] = lo64(t[g + 1], t[g + 3]);
    r[g + 3] = hi64(t[g + 1], t[g + 3]);
  }
  __m512i o[16];
  for (int c = 0; c < 4; ++c) {
    const __m512i c0 = lanes128<0x88>(r[c], r[4 + c]), c1 = lanes128<0xDD>(r[c], r[4 + c]);
    const __m512i d0 = lanes128<0x88>(r[8 + c], r[12 + c]), d1 = lanes128<0xDD>(r[8 + c], r[12 + c]);
    o[c] = lanes128<0x88>(c0, d0);
    o[4 + c] = lanes128<0x88>(c1, d1);
    o[8 + c] = lanes128<0xDD>(c0, d0);
    o[12 + c] = lanes128<0xDD>(c1, d1);
  }
  for (int i = 0; i < 16; ++i) r[i] = o[i];
}

// x rounded to bf16 (nearest even; NaN kept NaN): the scalar form, for strided operands.
inline bf16_t round_scalar(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return bf16_t((u >> 16) | 0x40);
  return bf16_t((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

// C[0:mr, 0:nr] = alpha·tile + beta·C (beta 0: C not read); tile row i at tile + i·ldt.
inline void write_back(const float* tile, index_t ldt, float alpha, float beta, float* c,
                       index_t rsc, index_t csc, index_t mr, index_t nr) {
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (index_t i = 0; i < mr; ++i) {
    const float* t = tile + i * ldt;
    float* ci = c + i * rsc;
    if (csc == 1) {
      for (index_t j = 0; j < nr; j += 16) {
        const __mmask16 m = first(nr - j);
        __m512 r = _mm512_mul_ps(va, _mm512_loadu_ps(t + j));
        if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, ci + j), r);
        _mm512_mask_storeu_ps(ci + j, m, r);
      }
    } else {
      for (index_t j = 0; j < nr; ++j) {
        const float r = alpha * t[j];
        ci[j * csc] = beta != 0.0f ? r + beta * ci[j * csc] : r;
      }
    }
  }
}

}  // namespace
}  // namespace bf16
}  // namespace avx512
}  // namespace blockprop
