// Run-time dispatch to the kernels of the active instruction set.
#pragma once
#include <cstdint>

#include "blockprop/gemm.h"
#include "blockprop/isa.h"
#include "blockprop/optimizers.h"
#include "blockprop/types.h"

namespace blockprop {
namespace generic {
#include "isa/isa_api.h"
}
#if BLOCKPROP_X86
namespace avx2 {
#include "isa/isa_api.h"
}
namespace avx512 {
#include "isa/isa_api.h"
}
#endif
}  // namespace blockprop

// BP_DISPATCH(fn, args...) returns fn(args...) from the active instruction set's namespace.
#if BLOCKPROP_X86
#define BP_DISPATCH(fn, ...)                                            \
  switch (::blockprop::active_isa()) {                                 \
    case ::blockprop::Isa::avx512: return ::blockprop::avx512::fn(__VA_ARGS__); \
    case ::blockprop::Isa::avx2: return ::blockprop::avx2::fn(__VA_ARGS__);     \
    default: return ::blockprop::generic::fn(__VA_ARGS__);              \
  }
#else
#define BP_DISPATCH(fn, ...) return ::blockprop::generic::fn(__VA_ARGS__)
#endif
