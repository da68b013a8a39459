// The GEMM's epilogue, applied to each finished block of C (float32 and bfloat16 drivers alike).
#pragma once
#include <cmath>

#include "isa/activation_math.h"

namespace blockprop {
namespace BP_ISA_NS {

// bias and activation on rows [0,mr) × cols [0,nr) of a finished block of C.
template <typename T>
inline void apply_epilogue(const Epilogue<T>& ep, T* c, index_t rsc, index_t csc, index_t mr,
                    index_t nr, index_t col0) {
  if (!ep.bias && ep.act == Activation::linear && !ep.nonfinite) return;
  index_t bad = 0;
  for (index_t i = 0; i < mr; ++i) {
    T* row = c + i * rsc;
    if (ep.bias)
      for (index_t j = 0; j < nr; ++j) row[j * csc] += ep.bias[col0 + j];
    if (ep.nonfinite)
      for (index_t j = 0; j < nr; ++j) bad += !std::isfinite(row[j * csc]);
    apply_activation(ep.act, row, nr, csc);
  }
  if (bad) ep.nonfinite->fetch_add(bad, std::memory_order_relaxed);
}

}  // namespace BP_ISA_NS
}  // namespace blockprop
