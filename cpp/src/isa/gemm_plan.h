// Block-size rules shared by the GEMM's plan (gemm_plan.cpp) and its loops (gemm_kernel.cpp).
#pragma once
#include "isa/blocking.h"

namespace blockprop {
namespace BP_ISA_NS {

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// k cut into equal slices of at most KC (KC 256: 784 → 4 × 196, not 256 + 256 + 256 + 16):
// a thin last slice would pay a full write-back of C for a few multiply-adds.
template <typename T>
index_t k_slice(index_t k) {
  return ceil_div(k, ceil_div(k, blocking::BP_ISA_NS<T>::KC));
}

// m cut into equal blocks of whole micro-panels (1024 → 2 × 518, not 1008 + 16).
template <typename T>
index_t m_block(index_t m) {
  using Blk = blocking::BP_ISA_NS<T>;
  return ceil_div(ceil_div(m, ceil_div(m, Blk::MC)), Blk::MR) * Blk::MR;
}

}  // namespace BP_ISA_NS
}  // namespace blockprop
