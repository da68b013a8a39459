#include "workspace.h"

#include <cstdlib>
#include <new>

namespace blockprop {
namespace {

struct Buffer {
  void* ptr = nullptr;
  std::size_t size = 0;
  ~Buffer() { std::free(ptr); }
};

constexpr std::size_t kAlign = 64;  // a cache line, and a zmm register

}  // namespace

void* thread_workspace(WorkspaceSlot slot, std::size_t bytes) {
  thread_local Buffer buffers[kWorkspaceSlots];
  Buffer& buf = buffers[slot];
  if (bytes > buf.size) {
    const std::size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, rounded);
    if (!p) throw std::bad_alloc();
    std::free(buf.ptr);
    buf.ptr = p;
    buf.size = rounded;
  }
  return buf.ptr;
}

}  // namespace blockprop
