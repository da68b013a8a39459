// A register-only FMA loop: the compute roof that GEMM speeds are quoted against.
#include "isa/simd.h"

namespace blockprop {
namespace BP_ISA_NS {

// Runs `iterations` rounds of kChains independent vector FMA chains and returns the flops done.
// Enough chains cover FMA latency × throughput (4 cycles × 2 units on Skylake-SP), so the loop is
// bound by FMA throughput alone.
template <typename T>
double fma_loop(long iterations) {
  using V = vec_t<T>;
  constexpr int kChains = 12;
  V acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = vbroadcast<T>(T(c) * T(1e-3));
  const V mul = vbroadcast<T>(T(0.999999));
  const V add = vbroadcast<T>(T(1e-7));
  for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * mul + add;
  }
  T sink = 0;  // every chain feeds the result, so none is optimised away
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < lanes<T>; ++l) sink += acc[c][l];
  volatile T keep = sink;
  (void)keep;
  return 2.0 * kChains * lanes<T> * static_cast<double>(iterations);
}

template double fma_loop<float>(long);
template double fma_loop<double>(long);

}  // namespace BP_ISA_NS
}  // namespace blockprop
