// General matrix multiply, the engine under the dense layers.
#pragma once
#include <atomic>

#include "blockprop/types.h"

namespace blockprop {

// What to do with each finished element of C: c = act(c + bias[column]).
template <typename T>
struct Epilogue {
  const T* bias = nullptr;  // length n, or nullptr for no bias
  Activation act = Activation::linear;
  // If set, the number of non-finite values of c + bias (before act) is added to it: a NaN or an
  // infinity anywhere in a row of A makes its whole row of A·B non-finite, so this checks A for
  // free (predict's check of its input).
  std::atomic<index_t>* nonfinite = nullptr;
};

// C = alpha·A·B + beta·C, then the epilogue, with A (m×k), B (k×n), C (m×n) given by a pointer to
// element (0,0) and a row and column stride in elements (any sign, any order: a transpose is a
// swap of the two strides). beta == 0 never reads C. C must not overlap A or B.
template <typename T>
void gemm(index_t m, index_t n, index_t k, T alpha,
          const T* a, index_t rsa, index_t csa,
          const T* b, index_t rsb, index_t csb,
          T beta, T* c, index_t rsc, index_t csc,
          const Epilogue<T>& epilogue = Epilogue<T>());

// The same with bfloat16 products (float32 only): every element of A and B rounded to bfloat16
// (round to nearest even) as it is packed, products summed in float32, alpha, beta and the
// epilogue in float32. Runs on active_bf16_path() (isa.h). The summation order depends on the
// path, not on the thread count.
void gemm_bf16(index_t m, index_t n, index_t k, float alpha,
               const float* a, index_t rsa, index_t csa,
               const float* b, index_t rsb, index_t csb,
               float beta, float* c, index_t rsc, index_t csc,
               const Epilogue<float>& epilogue = Epilogue<float>());

// gemm<T> at `precision`: bfloat16 is gemm_bf16 (float only; std::invalid_argument for double).
template <typename T>
void gemm(Precision precision, index_t m, index_t n, index_t k, T alpha,
          const T* a, index_t rsa, index_t csa,
          const T* b, index_t rsb, index_t csb,
          T beta, T* c, index_t rsc, index_t csc,
          const Epilogue<T>& epilogue = Epilogue<T>());

// Row-major convenience form: C = alpha·op(A)·op(B) + beta·C, op(X) = X or Xᵀ,
// with leading dimensions lda, ldb, ldc as in BLAS (row-major).
template <typename T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha,
          const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc);

// How a GEMM of one shape is run (see gemm_plan): the way C is cut across threads.
enum class GemmStrategy {
  serial,             // one thread: too little work to share
  private_chunks,     // row or column strips of C, each packing its own A and B (few rows of A)
  own_b_columns,      // column strips packing their own columns of B, A read in place (narrow C)
  shared_b,           // B packed once for all threads; C cut into row strips × column groups
  shared_b_k_slices,  // B too large to share whole: shared one k slice (× column block) at a time
};

// Row strips × column groups of C over one packing of B (shared_b; each slice and block of
// shared_b_k_slices, where a narrower last block has fewer or narrower groups).
struct GemmSharedBPlan {
  index_t strip_rows = 0, strips = 0;  // rows of C per strip (whole micro-panels), strip count
  index_t group_cols = 0, groups = 0;  // columns per group (whole micro-panels), group count
  bool share_a = false;                // A packed once for all chunks, not once per chunk
};

// Everything gemm_plan decided for one shape; the GEMM executes it without deciding anything else.
struct GemmPlan {
  GemmStrategy strategy = GemmStrategy::serial;
  int threads = 1;                 // threads it runs on
  int mr = 0, nr = 0;              // micro-tile; nr is one vector for a C at most that narrow
  index_t mc = 0, kc = 0, nc = 0;  // blocks of m (for the tallest chunk), k and n
  bool b_in_place = false;         // B's full micro-panels read in place (row-major B), not packed
  index_t a_in_place_cols = 0;     // a chunk at most this wide reads A in place (0: none does) ...
  bool a_in_place = false;         // ... which the widest chunk does
  bool split_n = false;            // private_chunks, own_b_columns: column strips, not row strips
  index_t chunks = 0, chunk_size = 0;  // ... how many, and rows or columns each
  GemmSharedBPlan shared;          // shared_b, shared_b_k_slices
  index_t block_cols = 0, blocks = 0;  // shared_b_k_slices: column blocks of each k slice of kc
};

// The plan of C = A·B (strides as for gemm) on `threads` threads, for the active instruction set:
// a pure function of its arguments (no allocation, no threads).
template <typename T>
GemmPlan gemm_plan(index_t m, index_t n, index_t k, index_t rsa, index_t csa, index_t rsb,
                   index_t csb, int threads);

// "serial", "private_chunks", ... : the enumerator's name.
const char* gemm_strategy_name(GemmStrategy s);

}  // namespace blockprop
