// The register-blocked micro-kernel: one MR×NR tile of C, held in MR·(NR/lanes) vector
// accumulators, updated by kc rank-1 products of packed A and B micro-panels.
#pragma once
#include "isa/blocking.h"
#include "isa/simd.h"

namespace blockprop {
namespace BP_ISA_NS {

// Where the micro-kernel reads A: a packed micro-panel (element (i, p) at a[p·MR + i]), or the
// rows of a row-major A in place (element (i, p) at a[i·rsa + p]), when packing it would not pay.
enum class AForm { packed, rows };

// Where it reads B: a packed micro-panel (element (p, j) at b[p·NR + j]), or NR columns of a
// row-major B in place (element (p, j) at b[p·rsb + j]).
enum class BForm { packed, rows };

// C[0:mr, 0:nr] = alpha·tile + beta·C element by element (a partial tile), with beta·C rounded
// on its own: compiled without contraction, so the code around it (inlined differently by each
// caller) cannot fuse it into an FMA and change the bits. Called once a partial tile.
template <typename T, int NR>
__attribute__((noinline, optimize("fp-contract=off"))) void write_back_partial(
    const T* tile, T alpha, T beta, T* c, index_t rsc, index_t csc, index_t mr, index_t nr) {
  for (index_t i = 0; i < mr; ++i) {
    for (index_t j = 0; j < nr; ++j) {
      T& cij = c[i * rsc + j * csc];
      const T r = alpha * tile[i * NR + j];
      cij = beta != T(0) ? r + beta * cij : r;
    }
  }
}

// C[0:mr, 0:nr] = alpha·(A_panel · B̃_panel) + beta·C   (beta == 0 never reads C)
// A packed panel holds LDA rows per k step: MR, or more when a kernel of fewer rows runs on the
// first MR rows of a wider panel (the partial last panel of A, see gemm_kernel.cpp).
template <typename T, int MR, int NR, AForm Form = AForm::packed, int LDA = MR,
          BForm BF = BForm::packed, bool FetchNext = false>
inline void micro_kernel(index_t kc, const T* __restrict a, index_t rsa, const T* __restrict b,
                         T alpha, T beta, T* c, index_t rsc, index_t csc, index_t mr, index_t nr,
                         index_t rsb = NR, const T* l2_next = nullptr) {
  using V = vec_t<T>;
  constexpr int L = lanes<T>;
  constexpr int NV = NR / L;
  static_assert(NR % L == 0, "NR must be a whole number of vectors");

  // Rows in place: one pointer per 5 rows, each addressed as base + {0,1,2,3,4}·rsa, so the
  // MR row addresses need ceil(MR/5) pointers and 4 strides, not MR registers (no spills).
  constexpr int G = (MR + 4) / 5;
  const T* base[G];
  const index_t off[5] = {0, rsa, 2 * rsa, 3 * rsa, 4 * rsa};
  if constexpr (Form == AForm::rows)
    for (int g = 0; g < G; ++g) base[g] = a + 5 * g * rsa;

  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V{};

  // The tile of C is asked for a few steps before the write-back, not earlier: the A and B̃
  // panels streaming through L1 would evict it again (kPrefetchCIterations 0: not asked for).
  constexpr index_t ahead = blocking::kPrefetchCIterations;
  const index_t prefetch_c_at = ahead > 0 && csc == 1 ? (kc > ahead ? kc - ahead : 0) : -1;
  // FetchNext: l2_next, the next B̃ slice, asked into L2 a line every few k steps (see
  // kPrefetchNextSliceEvery).
  constexpr bool fetch_next = FetchNext && blocking::kPrefetchNextSliceEvery > 0;
  constexpr index_t l2_every = fetch_next ? blocking::kPrefetchNextSliceEvery : 1;
  const T* l2 = l2_next;
  for (index_t p = 0; p < kc; ++p) {
    if constexpr (fetch_next) {
      if (p % l2_every == 0) {
        __builtin_prefetch(l2, 0, 1);
        l2 += 64 / sizeof(T);
      }
    }
    if constexpr (ahead > 0) {
      if (p == prefetch_c_at)
        for (index_t i = 0; i < mr; ++i) {
          __builtin_prefetch(c + i * rsc, 1, 3);
          __builtin_prefetch(c + i * rsc + nr - 1, 1, 3);
        }
    }
    V bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = vload(b + j * L);
    // B̃ streams from L2/L3 (thin strips of a shared B̃ per thread): ask for it well ahead.
    // A prefetch past the end of the panel is harmless: it never faults.
    const index_t b_ahead = blocking::kPrefetchBIterations * (BF == BForm::packed ? NR : rsb);
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) __builtin_prefetch(b + b_ahead + j * L, 0, 3);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const T ai = Form == AForm::packed ? a[i] : base[i / 5][off[i % 5]];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
    if constexpr (Form == AForm::packed)
      a += LDA;
    else
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) ++base[g];
    b += BF == BForm::packed ? NR : rsb;
  }

  if (mr == MR && nr == NR && csc == 1) {  // full tile, contiguous rows: vector write-back
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        T* cp = c + i * rsc + j * L;
        V r = alpha * acc[i][j];
        if (beta != T(0)) r += beta * vload(cp);
        vstore(cp, r);
      }
    }
    return;
  }
  alignas(64) T tile[MR * NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) vstore(tile + i * NR + j * L, acc[i][j]);
  write_back_partial<T, NR>(tile, alpha, beta, c, rsc, csc, mr, nr);
}

}  // namespace BP_ISA_NS
}  // namespace blockprop
