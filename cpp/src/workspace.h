// Per-thread scratch buffers that only grow, so a kernel called again with the same shapes
// allocates nothing (no malloc, no page faults on the hot path).
#pragma once
#include <cstddef>

namespace blockprop {

enum WorkspaceSlot : int {
  kPackA = 0,
  kPackB = 1,
  kDelta = 2,
  kSharedB = 3,  // B packed whole by the calling thread's GEMM, read by every pool thread
  kSharedA = 4,  // A packed whole likewise, when several chunks would each pack the same rows
  kManyGroup = 5,  // mlp_many: a group's first layers side by side (W, b, dW, Zᵀ, δ)
  kManyBatches = 6,  // mlp_many: a part's batches gathered once for every group (rows, transposes)
  kWorkspaceSlots = 7
};

// A 64-byte aligned buffer of at least `bytes` owned by the calling thread; valid until the next
// call with the same slot on the same thread. The OpenMP workers of a kernel may share it.
void* thread_workspace(WorkspaceSlot slot, std::size_t bytes);

}  // namespace blockprop
