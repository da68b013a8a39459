// Long element-wise loops split across the thread pool.
#pragma once
#include "isa/isa_prelude.h"

#include <algorithm>

#include "blockprop/threading.h"
#include "isa/blocking.h"

namespace blockprop {
namespace BP_ISA_NS {

// Runs f(lo, hi) over pieces of [0, n): on one thread below kMinParallelElements, else on the
// pool. Elements are independent, so the result is the same however the loop is cut.
template <typename F>
inline void elementwise(index_t n, F&& f) {
  const index_t nt = n >= blocking::kMinParallelElements ? get_num_threads() : 1;
  if (nt <= 1) return f(index_t(0), n);
  const index_t pieces = nt * blocking::kChunksPerThread;
  const index_t step = std::max<index_t>(64, (n / pieces + 63) / 64 * 64);  // whole cache lines
  auto piece = [&](index_t p) { f(p * step, std::min(n, (p + 1) * step)); };
  parallel_for((n + step - 1) / step, static_cast<int>(nt), piece);
}

}  // namespace BP_ISA_NS
}  // namespace blockprop
