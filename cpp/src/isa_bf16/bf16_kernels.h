// Leaf kernels of the bfloat16 GEMM for AVX512-BF16 (gemm_bf16_avx512.cpp) and AMX
// (gemm_bf16_amx.cpp). Only those two files are compiled with -mavx512bf16 -mamx-tile -mamx-bf16
// (into bp_isa_avx512); only the avx512 build's bf16 driver (isa/gemm_bf16_kernel.cpp) calls
// them, and only on the path cpuid (and Linux, for AMX) allowed: see isa.h, Bf16Path.
// Declarations only: no inline code shared with the other avx512 objects, so no function can be
// emitted twice with different instruction sets.
#pragma once
#include <cstdint>

#include "blockprop/types.h"

namespace blockprop {
namespace avx512 {
namespace bf16 {

using bf16_t = std::uint16_t;

// A micro-panel of MR (blocking::avx512_bf16) rows: rows [0,mr) × cols [0,kc) of A(i,p) =
// a[i·rsa + p·csa] rounded to bf16, pair q of row i (A(i,2q), A(i,2q+1)) as the 32-bit word
// dst32[q·MR + i]; zero past mr rows and past kc up to kp (even).
void pack_a_pairs(index_t mr, index_t kc, const float* a, index_t rsa, index_t csa, bf16_t* dst,
                  index_t kp);
// A micro-panel of NR columns of B(p,j) = b[p·rsb + j·csb]: pair q of column j (B(2q,j),
// B(2q+1,j)) as dst32[q·NR + j]; zero past nr columns and past kc up to kp (even).
void pack_b_pairs(index_t kc, index_t nr, const float* b, index_t rsb, index_t csb, bf16_t* dst,
                  index_t kp);
// C[0:mr, 0:nr] = alpha·(Ã·B̃) + beta·C over kp/2 pairs of k with VDPBF16PS (beta 0: C not read).
void kernel_dpbf16(index_t kp, const bf16_t* a, const bf16_t* b, float alpha, float beta, float* c,
                   index_t rsc, index_t csc, index_t mr, index_t nr);

// AMX: A panel of 32 rows in tile order: k block kb (32 values), row i at dst + (kb·32 + i)·32;
// zero past mr rows and past kc up to kp (a multiple of 32).
void pack_a_amx(index_t mr, index_t kc, const float* a, index_t rsa, index_t csa, bf16_t* dst,
                index_t kp);
// Loads the tile configuration on the calling thread (amx_end releases it).
void amx_begin();
void amx_end();
// C[0:mr, 0:nr] = alpha·(Ã·B̃) + beta·C, Ã from pack_a_amx, B̃ from pack_b_pairs (kp: a multiple of 32).
void kernel_amx(index_t kp, const bf16_t* a, const bf16_t* b, float alpha, float beta, float* c,
                index_t rsc, index_t csc, index_t mr, index_t nr);

}  // namespace bf16
}  // namespace avx512
}  // namespace blockprop
