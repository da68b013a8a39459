#include "blockprop/normalization.h"

#include <vector>

#include "dispatch.h"

namespace blockprop {

// Scratch lives here (baseline build), not in the per-instruction-set kernels.

template <typename T>
void batch_norm_forward(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                        double eps, T* y, T* mean, T* var) {
  std::vector<double> acc(2 * cols);
  std::vector<T> scale(cols);
  BP_DISPATCH(batch_norm_forward<T>, rows, cols, x, gamma, beta, eps, y, mean, var, acc.data(),
              scale.data());
}

template <typename T>
void batch_norm_inference(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                          const T* mean, const T* var, double eps, T* y) {
  std::vector<T> scale(cols);
  BP_DISPATCH(batch_norm_inference<T>, rows, cols, x, gamma, beta, mean, var, eps, y, scale.data());
}

template <typename T>
void batch_norm_backward(index_t rows, index_t cols, const T* dy, const T* x, const T* mean,
                         const T* var, const T* gamma, double eps, bool batch_stats, T* dx,
                         T* dgamma, T* dbeta) {
  std::vector<double> acc(2 * cols);
  std::vector<T> tmp(3 * cols);
  BP_DISPATCH(batch_norm_backward<T>, rows, cols, dy, x, mean, var, gamma, eps, batch_stats, dx,
              dgamma, dbeta, acc.data(), tmp.data());
}

template <typename T>
void layer_norm_forward(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                        double eps, T* y, T* mean, T* var) {
  BP_DISPATCH(layer_norm_forward<T>, rows, cols, x, gamma, beta, eps, y, mean, var);
}

template <typename T>
void layer_norm_backward(index_t rows, index_t cols, const T* dy, const T* x, const T* mean,
                         const T* var, const T* gamma, double eps, T* dx, T* dgamma, T* dbeta) {
  std::vector<double> acc(2 * cols);
  BP_DISPATCH(layer_norm_backward<T>, rows, cols, dy, x, mean, var, gamma, eps, dx, dgamma, dbeta,
              acc.data());
}

#define BP_INSTANTIATE(T)                                                                       \
  template void batch_norm_forward<T>(index_t, index_t, const T*, const T*, const T*, double,   \
                                      T*, T*, T*);                                              \
  template void batch_norm_inference<T>(index_t, index_t, const T*, const T*, const T*,         \
                                        const T*, const T*, double, T*);                        \
  template void batch_norm_backward<T>(index_t, index_t, const T*, const T*, const T*,          \
                                       const T*, const T*, double, bool, T*, T*, T*);           \
  template void layer_norm_forward<T>(index_t, index_t, const T*, const T*, const T*, double,   \
                                      T*, T*, T*);                                              \
  template void layer_norm_backward<T>(index_t, index_t, const T*, const T*, const T*,          \
                                       const T*, const T*, double, T*, T*, T*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace blockprop
