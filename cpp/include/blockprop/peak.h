// The machine's measured floating-point roof, for benchmarks to quote "% of peak" honestly.
#pragma once

namespace blockprop {

// Runs a register-only FMA loop (no memory traffic) on `threads` threads for about `seconds` with
// the active instruction set's vectors, and returns the float32 (or float64) GFLOP/s it reached.
double measure_fma_peak_gflops(bool float64, int threads, double seconds);

}  // namespace blockprop
