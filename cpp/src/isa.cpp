#include "blockprop/isa.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#if BLOCKPROP_X86
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

// --- bfloat16 paths ---------------------------------------------------------------------------

namespace {

#if BLOCKPROP_X86
// XCR0: which register states the OS saves (xgetbv with ecx 0), read without -mxsave.
std::uint64_t xcr0() {
  std::uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (std::uint64_t(hi) << 32) | lo;
}

bool cpu_has_avx512_bf16() {
  unsigned a, b, c, d;
  if (!cpu_has(Isa::avx512) || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return (a >> 5) & 1;  // CPUID.(7,1):EAX[5] AVX512_BF16
}

// AMX-TILE and AMX-BF16 (CPUID.(7,0):EDX[24], [22]), the OS saving the tile state (XCR0 bits 17,
// 18), and Linux granting this process the tile data (arch_prctl, asked once; a kernel that
// refuses or predates it leaves AMX off and the bf16 GEMMs on AVX512-BF16).
bool cpu_has_amx() {
  unsigned a, b, c, d;
  if (!cpu_has_avx512_bf16() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!((d >> 24) & 1) || !((d >> 22) & 1)) return false;
  if ((xcr0() & (3u << 17)) != (3u << 17)) return false;
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

Bf16Path detect_bf16() {
#if BLOCKPROP_X86
  if (cpu_has_amx()) return Bf16Path::amx;
  if (cpu_has_avx512_bf16()) return Bf16Path::avx512_bf16;
#endif
  return Bf16Path::portable;
}

std::atomic<int>& requested_bf16() {
  static std::atomic<int> value{static_cast<int>(best_bf16_path())};
  return value;
}

}  // namespace

Bf16Path best_bf16_path() {
  static const Bf16Path best = detect_bf16();
  return best;
}

bool bf16_path_supported(Bf16Path path) {
  return static_cast<int>(path) <= static_cast<int>(best_bf16_path());
}

bool set_bf16_path(Bf16Path path) {
  if (!bf16_path_supported(path)) return false;
  requested_bf16().store(static_cast<int>(path));
  return true;
}

Bf16Path active_bf16_path() {
  if (active_isa() != Isa::avx512) return Bf16Path::portable;
  return static_cast<Bf16Path>(requested_bf16().load(std::memory_order_relaxed));
}

const char* bf16_path_name(Bf16Path path) {
  switch (path) {
    case Bf16Path::portable: return "portable";
    case Bf16Path::avx512_bf16: return "avx512_bf16";
    case Bf16Path::amx: return "amx";
  }
  return "unknown";
}

bool parse_bf16_path(const char* name, Bf16Path* out) {
  for (Bf16Path path : {Bf16Path::portable, Bf16Path::avx512_bf16, Bf16Path::amx}) {
    if (std::strcmp(name, bf16_path_name(path)) == 0) {
      *out = path;
      return true;
    }
  }
  return false;
}

}  // namespace blockprop
