// Instruction-set selection: every hot kernel is compiled once per instruction set and the one
// used is chosen at run time, so one binary runs on any x86-64 and uses the best the CPU has.
#pragma once

namespace blockprop {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

// Best instruction set that both this build and this CPU (and its OS) support.
Isa best_isa();
// Instruction set the kernels currently run on (starts as best_isa()).
Isa active_isa();
// Force an instruction set at or below best_isa(); returns false (and changes nothing) otherwise.
bool set_active_isa(Isa isa);
// Whether `isa` was compiled into this build and runs on this CPU.
bool isa_supported(Isa isa);

const char* isa_name(Isa isa);
// Parses "generic" / "avx2" / "avx512"; returns false for anything else.
bool parse_isa(const char* name, Isa* out);

// How bfloat16 products are computed (Precision::bfloat16): operands rounded to bfloat16 while
// packed, products accumulated in float32, on one of
//   portable     the active instruction set's float32 micro-kernel on the rounded values (any CPU)
//   avx512_bf16  VDPBF16PS on pairs of k (AVX512-BF16: Cooper Lake, Sapphire Rapids, Zen 4 on)
//   amx          TDPBF16PS on 16×32 tiles (AMX-BF16: Sapphire Rapids on; Linux must grant the
//                process the tile data state, asked for once)
enum class Bf16Path : int { portable = 0, avx512_bf16 = 1, amx = 2 };

// Best bf16 path this build, CPU and OS support (the AVX-512 ones need the avx512 ISA too).
Bf16Path best_bf16_path();
bool bf16_path_supported(Bf16Path path);
// The path asked for (starts as best_bf16_path()); false (nothing changed) if unsupported.
bool set_bf16_path(Bf16Path path);
// The path bf16 GEMMs run on: the one asked for, but portable while the active ISA is not avx512.
Bf16Path active_bf16_path();
const char* bf16_path_name(Bf16Path path);
// Parses "portable" / "avx512_bf16" / "amx"; returns false for anything else.
bool parse_bf16_path(const char* name, Bf16Path* out);

}  // namespace blockprop
