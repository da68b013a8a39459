#include "blockprop/threading.h"

#include <omp.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace blockprop {
namespace {

std::atomic<int> g_num_threads{0};  // 0: follow OpenMP's own setting
thread_local int t_thread_limit = 0;  // this thread's cap (set_thread_limit), 0: none

// Helpers spin this many rounds for the next job before they sleep: long enough to catch the next
// kernel of a training step (a few µs away), short enough not to steal a busy machine's cores.
constexpr int kSpinRounds = 20000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

struct Job {
  void (*body)(void*, index_t);
  void* ctx;
  index_t n;
  int helpers;                      // helpers allowed to join (threads − 1)
  std::atomic<index_t> next{0};     // next index to take
  std::atomic<index_t> done{0};     // indices finished
  std::atomic<bool> failed{false};
  std::exception_ptr error;

  // Takes and runs indices until none is left.
  void work() {
    for (index_t i; (i = next.fetch_add(1)) < n;) {
      if (!failed.load(std::memory_order_relaxed)) {
        try {
          body(ctx, i);
        } catch (...) {
          if (!failed.exchange(true)) error = std::current_exception();
        }
      }
      done.fetch_add(1, std::memory_order_release);
    }
  }
};

class Pool {
 public:
  void run(Job& job) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock() || job.helpers == 0) return job.work();  // pool in use: run alone
    grow(job.helpers);
    current_.store(&job);
    {
      std::lock_guard<std::mutex> lk(m_);  // under the lock, so a helper going to sleep sees it
      generation_.fetch_add(1);
    }
    if (sleepers_.load() > 0) cv_.notify_all();
    job.work();
    // Wait for indices other threads hold (not for threads that never came).
    for (int spins = 0; job.done.load(std::memory_order_acquire) < job.n; ++spins) {
      if (spins < 1000) cpu_relax();
      else std::this_thread::yield();  // let a descheduled helper finish on this core
    }
    // Retire the job: after this no helper can reach it (they register in users_ first).
    current_.store(nullptr);
    while (users_.load() != 0) std::this_thread::yield();
  }

  // In a child after fork() the helpers do not exist: start over with an empty pool.
  // (The old objects are overwritten, not destroyed: their threads and lock owners are gone.)
  void reset_after_fork() {
    new (&busy_) std::mutex();
    new (&m_) std::mutex();
    new (&cv_) std::condition_variable();
    new (&workers_) std::vector<std::thread>();
    current_.store(nullptr);
    users_.store(0);
    sleepers_.store(0);
  }

 private:
  void grow(int helpers) {
    while (static_cast<int>(workers_.size()) < helpers) {
      const int index = static_cast<int>(workers_.size());
      workers_.emplace_back([this, index] { loop(index); });
    }
  }

  void loop(int index) {
    unsigned long seen = 0;
    for (;;) {
      for (int r = 0; r < kSpinRounds && generation_.load() == seen; ++r) cpu_relax();
      {
        std::unique_lock<std::mutex> lk(m_);
        if (generation_.load() == seen) {
          sleepers_.fetch_add(1);
          cv_.wait(lk, [&] { return generation_.load() != seen; });
          sleepers_.fetch_sub(1);
        }
        seen = generation_.load();
      }
      users_.fetch_add(1);
      Job* job = current_.load();
      if (job && index < job->helpers) job->work();
      users_.fetch_sub(1);
    }
  }

  std::mutex busy_;                    // one job at a time
  std::mutex m_;                       // guards generation_ and the sleep
  std::condition_variable cv_;
  std::atomic<unsigned long> generation_{0};  // counts jobs published
  std::atomic<Job*> current_{nullptr};
  std::atomic<int> users_{0};          // helpers that may be looking at current_
  std::atomic<int> sleepers_{0};
  std::vector<std::thread> workers_;   // never joined: they live as long as the process
};

Pool& pool() {
  // Deliberately leaked: helpers must not be destroyed while the process exits.
  static Pool* p = [] {
    auto* q = new Pool();
    pthread_atfork(nullptr, nullptr, [] { pool().reset_after_fork(); });
    return q;
  }();
  return *p;
}

}  // namespace

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 0); }

int get_num_threads() {
  const int g = g_num_threads.load();
  const int n = g > 0 ? g : omp_get_max_threads();
  return t_thread_limit > 0 ? std::min(n, t_thread_limit) : n;
}

void set_thread_limit(int n) { t_thread_limit = n > 0 ? n : 0; }

int thread_limit() { return t_thread_limit; }

void parallel_run(index_t n, int threads, void (*body)(void*, index_t), void* ctx) {
  if (n <= 0) return;
  Job job;
  job.body = body;
  job.ctx = ctx;
  job.n = n;
  job.helpers = static_cast<int>(std::max<index_t>(0, std::min<index_t>(threads, n) - 1));
  pool().run(job);
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace blockprop
