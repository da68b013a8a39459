// Thread count and the thread pool the parallel kernels run on.
#pragma once
#include "blockprop/types.h"

namespace blockprop {

// n >= 1 fixes the thread count; n <= 0 returns to the default, OpenMP's own
// (OMP_NUM_THREADS, or what threadpoolctl / omp_set_num_threads last set).
void set_num_threads(int n);
int get_num_threads();

// The calling thread's own cap on get_num_threads() (n <= 0: none), e.g. 1 in each of several
// threads that train side by side, so that their kernels do not contend for the same pool.
void set_thread_limit(int n);
int thread_limit();

// Runs body(ctx, i) for every i in [0, n) on up to `threads` threads, the caller included, which
// take indices from a shared counter; returns when every index is done. Unlike a fork-join
// region, the caller never waits for a helper that has not started: on a busy machine a
// descheduled helper costs at most the one index it holds. A second caller while the pool is busy
// runs its indices alone. An exception thrown by body is rethrown in the caller.
void parallel_run(index_t n, int threads, void (*body)(void*, index_t), void* ctx);

// parallel_run over a callable f(i).
template <typename F>
void parallel_for(index_t n, int threads, F& f) {
  parallel_run(n, threads, [](void* c, index_t i) { (*static_cast<F*>(c))(i); }, &f);
}

}  // namespace blockprop
