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

// Row-major convenience form: C = alpha·op(A)·op(B) + beta·C, op(X) = X or Xᵀ,
// with leading dimensions lda, ldb, ldc as in BLAS (row-major).
template <typename T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha,
          const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc);

}  // namespace blockprop
