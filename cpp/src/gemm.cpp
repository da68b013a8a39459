#include "blockprop/gemm.h"

#include <stdexcept>
#include <type_traits>

#include "dispatch.h"

namespace blockprop {

template <typename T>
void gemm(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rsa, index_t csa,
          const T* b, index_t rsb, index_t csb, T beta, T* c, index_t rsc, index_t csc,
          const Epilogue<T>& epilogue) {
  BP_DISPATCH(gemm_blocked<T>, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc,
              epilogue);
}

void gemm_bf16(index_t m, index_t n, index_t k, float alpha, const float* a, index_t rsa,
               index_t csa, const float* b, index_t rsb, index_t csb, float beta, float* c,
               index_t rsc, index_t csc, const Epilogue<float>& epilogue) {
  BP_DISPATCH(gemm_bf16_blocked, active_bf16_path(), m, n, k, alpha, a, rsa, csa, b, rsb, csb,
              beta, c, rsc, csc, epilogue);
}

template <typename T>
void gemm(Precision precision, index_t m, index_t n, index_t k, T alpha, const T* a, index_t rsa,
          index_t csa, const T* b, index_t rsb, index_t csb, T beta, T* c, index_t rsc,
          index_t csc, const Epilogue<T>& epilogue) {
  if (precision == Precision::float32)
    return gemm<T>(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, epilogue);
  if constexpr (std::is_same_v<T, float>)
    gemm_bf16(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, epilogue);
  else
    throw std::invalid_argument("gemm: bfloat16 precision takes float32 operands, not float64");
}

template <typename T>
GemmPlan gemm_plan(index_t m, index_t n, index_t k, index_t rsa, index_t csa, index_t rsb,
                   index_t csb, int threads) {
  BP_DISPATCH(gemm_plan<T>, m, n, k, rsa, csa, rsb, csb, threads);
}

const char* gemm_strategy_name(GemmStrategy s) {
  switch (s) {
    case GemmStrategy::serial: return "serial";
    case GemmStrategy::private_chunks: return "private_chunks";
    case GemmStrategy::own_b_columns: return "own_b_columns";
    case GemmStrategy::shared_b: return "shared_b";
    case GemmStrategy::shared_b_k_slices: return "shared_b_k_slices";
  }
  return "unknown";
}

// op(A) is m×k: A itself (m×k, row stride lda) or the transpose of a k×m matrix.
template <typename T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a,
          index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  gemm<T>(m, n, k, alpha, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, trans_b ? 1 : ldb,
          trans_b ? ldb : 1, beta, c, ldc, 1);
}

template void gemm<float>(index_t, index_t, index_t, float, const float*, index_t, index_t,
                          const float*, index_t, index_t, float, float*, index_t, index_t,
                          const Epilogue<float>&);
template void gemm<double>(index_t, index_t, index_t, double, const double*, index_t, index_t,
                           const double*, index_t, index_t, double, double*, index_t, index_t,
                           const Epilogue<double>&);
template void gemm<float>(Precision, index_t, index_t, index_t, float, const float*, index_t,
                          index_t, const float*, index_t, index_t, float, float*, index_t, index_t,
                          const Epilogue<float>&);
template void gemm<double>(Precision, index_t, index_t, index_t, double, const double*, index_t,
                           index_t, const double*, index_t, index_t, double, double*, index_t,
                           index_t, const Epilogue<double>&);
template GemmPlan gemm_plan<float>(index_t, index_t, index_t, index_t, index_t, index_t, index_t,
                                   int);
template GemmPlan gemm_plan<double>(index_t, index_t, index_t, index_t, index_t, index_t, index_t,
                                    int);
template void gemm<float>(bool, bool, index_t, index_t, index_t, float, const float*, index_t,
                          const float*, index_t, float, float*, index_t);
template void gemm<double>(bool, bool, index_t, index_t, index_t, double, const double*, index_t,
                           const double*, index_t, double, double*, index_t);

}  // namespace blockprop
