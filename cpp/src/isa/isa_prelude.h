// First include of every per-instruction-set source (cpp/src/isa/*.cpp). Those files are compiled
// once per instruction set with that set's compiler flags and BP_ISA_NS naming the namespace
// (generic, avx2, avx512), so each build of a kernel gets symbols of its own.
//
// Keep everything the kernels define inside namespace blockprop::BP_ISA_NS: an inline function
// defined outside it would be emitted by each build, and the linker could keep an AVX-512 copy
// and call it on a CPU without AVX-512.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "blockprop/activations.h"
#include "blockprop/gemm.h"
#include "blockprop/isa.h"
#include "blockprop/losses.h"
#include "blockprop/optimizers.h"
#include "blockprop/types.h"

#ifndef BP_ISA_NS
#error "BP_ISA_NS must name the instruction set this file is compiled for"
#endif

namespace blockprop {
namespace BP_ISA_NS {
#include "isa/isa_api.h"
}  // namespace BP_ISA_NS
}  // namespace blockprop
