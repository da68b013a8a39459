#include "blockprop/threading.h"

#include <omp.h>

#include <atomic>

namespace blockprop {
namespace {
std::atomic<int> g_num_threads{0};  // 0: follow OpenMP's own setting
}

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 0); }

int get_num_threads() {
  const int n = g_num_threads.load();
  return n > 0 ? n : omp_get_max_threads();
}

}  // namespace blockprop
