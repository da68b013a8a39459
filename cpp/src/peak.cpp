#include "blockprop/peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>

#include "dispatch.h"

namespace blockprop {

namespace {
template <typename T>
double fma_loop(long iterations) {
  BP_DISPATCH(fma_loop<T>, iterations);
}
}  // namespace

double measure_fma_peak_gflops(bool float64, int threads, double seconds) {
  threads = std::max(threads, 1);
  auto run = [&](long iterations) {
    double flops = 0;
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    flops += float64 ? fma_loop<double>(iterations) : fma_loop<float>(iterations);
    return flops;
  };
  // Grow the iteration count until one run lasts long enough to time, then keep the best of a few.
  long iterations = 1 << 16;
  double best = 0;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    const double flops = run(iterations);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > 0) best = std::max(best, flops / dt * 1e-9);
    if (dt < 0.02) iterations *= 4;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds) break;
  }
  return best;
}

}  // namespace blockprop
