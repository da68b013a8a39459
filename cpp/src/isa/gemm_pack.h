// Packing for the blocked GEMM: copies a block of A or B, whatever its strides, into the
// contiguous, zero-padded micro-panel order the micro-kernel streams through.
#pragma once
#include "isa/isa_prelude.h"

namespace blockprop {
namespace BP_ISA_NS {

// One A micro-panel: rows [0,mr) × cols [0,kc) of A(i,p) = a[i·rsa + p·csa], stored p-major
// (dst[p·MR + i]) and padded with zero rows up to MR.
template <typename T, int MR>
inline void pack_a_panel(index_t mr, index_t kc, const T* a, index_t rsa, index_t csa, T* dst) {
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

// One B micro-panel: rows [0,kc) × cols [0,nr) of B(p,j) = b[p·rsb + j·csb], stored p-major
// (dst[p·NR + j]) and padded with zero columns up to NR.
template <typename T, int NR>
inline void pack_b_panel(index_t kc, index_t nr, const T* b, index_t rsb, index_t csb, T* dst) {
  if (csb == 1 && nr == NR) {  // row-major B: NR contiguous values per row
    for (index_t p = 0; p < kc; ++p) std::memcpy(dst + p * NR, b + p * rsb, NR * sizeof(T));
    return;
  }
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
