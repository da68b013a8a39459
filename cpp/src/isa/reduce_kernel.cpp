// Reductions used by the layers, one build per instruction set.
#include "isa/isa_prelude.h"

namespace blockprop {
namespace BP_ISA_NS {

// out[j] (+)= Σ_r x[r, j], rows added in order so the sum is the same on every run.
template <typename T>
void column_sum(index_t rows, index_t cols, const T* x, T* out, bool accumulate) {
  if (!accumulate)
    for (index_t j = 0; j < cols; ++j) out[j] = T(0);
  for (index_t r = 0; r < rows; ++r) {
    const T* row = x + r * cols;
    for (index_t j = 0; j < cols; ++j) out[j] += row[j];
  }
}

template void column_sum<float>(index_t, index_t, const float*, float*, bool);
template void column_sum<double>(index_t, index_t, const double*, double*, bool);

}  // namespace BP_ISA_NS
}  // namespace blockprop
