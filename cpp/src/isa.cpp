#include "blockprop/isa.h"

#include <atomic>
#include <cstring>
#include <initializer_list>

namespace blockprop {
namespace {

bool cpu_has(Isa isa) {
#if BLOCKPROP_X86
  switch (isa) {
    case Isa::avx512:
      // __builtin_cpu_supports also checks that the OS saves the wider registers.
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("fma");
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::generic:
      return true;
  }
  return false;
#else
  return isa == Isa::generic;
#endif
}

Isa detect_best() {
  for (Isa isa : {Isa::avx512, Isa::avx2})
    if (cpu_has(isa)) return isa;
  return Isa::generic;
}

std::atomic<int>& active() {
  static std::atomic<int> value{static_cast<int>(detect_best())};
  return value;
}

}  // namespace

Isa best_isa() {
  static const Isa best = detect_best();
  return best;
}

bool isa_supported(Isa isa) { return static_cast<int>(isa) <= static_cast<int>(best_isa()); }

Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

bool set_active_isa(Isa isa) {
  if (!isa_supported(isa)) return false;
  active().store(static_cast<int>(isa));
  return true;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::generic: return "generic";
  }
  return "unknown";
}

bool parse_isa(const char* name, Isa* out) {
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512}) {
    if (std::strcmp(name, isa_name(isa)) == 0) {
      *out = isa;
      return true;
    }
  }
  return false;
}

}  // namespace blockprop
