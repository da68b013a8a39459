// Thread count used by the parallel kernels (OpenMP underneath).
#pragma once

namespace blockprop {

// n >= 1 fixes the thread count; n <= 0 returns to the default, OpenMP's own
// (OMP_NUM_THREADS, or what threadpoolctl / omp_set_num_threads last set).
void set_num_threads(int n);
int get_num_threads();

}  // namespace blockprop
