// Inverted dropout with a counter-based mask: no random state, no stored mask.
//
// Element i at training step `step` is kept iff u ≥ p, where
//   h = mix(mix(seed + G·(step + 1)) + G·(i + 1)),   u = (h >> 11)·2⁻⁵³ ∈ [0, 1),
// mix is the splitmix64 finalizer and G = 0x9E3779B97F4A7C15 (all arithmetic mod 2⁶⁴). The mask is
// a function of (seed, step, i) alone, so it is the same for any thread count, backward
// regenerates it instead of storing it, and blockprop.reference.dropout reproduces it exactly.
#pragma once
#include <cstdint>

#include "blockprop/types.h"

namespace blockprop {

// y = x ⊙ keep/(1 − p) over n contiguous elements (y may alias x); p = 1 gives y = 0.
template <typename T>
void dropout_forward(index_t n, const T* x, T* y, double p, std::uint64_t seed, std::uint64_t step);

// dx = dy ⊙ keep/(1 − p), with the mask of the forward of the same (seed, step) (dx may alias dy).
template <typename T>
void dropout_backward(index_t n, const T* dy, T* dx, double p, std::uint64_t seed,
                      std::uint64_t step);

}  // namespace blockprop
