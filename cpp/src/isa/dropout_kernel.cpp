// Inverted dropout with a counter-based (splitmix64) mask, one build per instruction set.
#include "isa/isa_prelude.h"

namespace blockprop {
namespace BP_ISA_NS {

namespace {

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;

// splitmix64's finalizer: a bijection of 64-bit words that mixes every input bit into every output bit.
inline std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

// out = in ⊙ [u(seed, step, i) ≥ p]/(1 − p),  u = (mix(base + G·(i+1)) >> 11)·2⁻⁵³
template <typename T>
void dropout_mask_apply(index_t n, const T* in, T* out, double p, std::uint64_t seed,
                        std::uint64_t step) {
  if (p >= 1.0) {
    for (index_t i = 0; i < n; ++i) out[i] = T(0);
    return;
  }
  const T scale = T(1.0 / (1.0 - p));
  const std::uint64_t base = mix(seed + kGolden * (step + 1));
  for (index_t i = 0; i < n; ++i) {
    const std::uint64_t h = mix(base + kGolden * (std::uint64_t(i) + 1));
    const double u = double(h >> 11) * 0x1.0p-53;
    out[i] = u >= p ? in[i] * scale : T(0);
  }
}

template void dropout_mask_apply<float>(index_t, const float*, float*, double, std::uint64_t,
                                        std::uint64_t);
template void dropout_mask_apply<double>(index_t, const double*, double*, double, std::uint64_t,
                                         std::uint64_t);

}  // namespace BP_ISA_NS
}  // namespace blockprop
