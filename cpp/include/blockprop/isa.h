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

}  // namespace blockprop
