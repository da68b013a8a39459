// Batch and layer normalization, forward and backward, one build per instruction set. Sums run
// in double and in a fixed order, so results do not depend on the thread count. Scratch space
// (acc: 2·cols doubles, tmp: 3·cols T) comes from the front end: no std:: containers here, whose
// inline code would be emitted outside this instruction set's namespace.
#include "isa/isa_prelude.h"

namespace blockprop {
namespace BP_ISA_NS {

// mean_j = Σ_r x[r,j]/rows;  var_j = Σ_r (x[r,j] − mean_j)²/rows;  y = (x − mean)·invstd·γ + β
template <typename T>
void batch_norm_forward(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                        double eps, T* y, T* mean, T* var, double* acc, T* scale) {
  for (index_t j = 0; j < cols; ++j) acc[j] = 0.0;
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) acc[j] += double(x[r * cols + j]);
  const double inv_rows = rows ? 1.0 / double(rows) : 0.0;
  for (index_t j = 0; j < cols; ++j) mean[j] = T(acc[j] * inv_rows);
  for (index_t j = 0; j < cols; ++j) acc[j] = 0.0;
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) {
      const double d = double(x[r * cols + j]) - double(mean[j]);
      acc[j] += d * d;
    }
  for (index_t j = 0; j < cols; ++j) {
    var[j] = T(acc[j] * inv_rows);
    scale[j] = T(1) / std::sqrt(var[j] + T(eps)) * gamma[j];
  }
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j)
      y[r * cols + j] = (x[r * cols + j] - mean[j]) * scale[j] + beta[j];
}

// y = (x − mean)·(γ/√(var + eps)) + β
template <typename T>
void batch_norm_inference(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                          const T* mean, const T* var, double eps, T* y, T* scale) {
  for (index_t j = 0; j < cols; ++j) scale[j] = T(1) / std::sqrt(var[j] + T(eps)) * gamma[j];
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j)
      y[r * cols + j] = (x[r * cols + j] - mean[j]) * scale[j] + beta[j];
}

// dβ = Σ_r dy;  dγ = Σ_r dy·x̂;  dx = γ·invstd·(dy − [dβ + x̂·dγ]/rows)   (bracket only with batch_stats)
template <typename T>
void batch_norm_backward(index_t rows, index_t cols, const T* dy, const T* x, const T* mean,
                         const T* var, const T* gamma, double eps, bool batch_stats, T* dx,
                         T* dgamma, T* dbeta, double* acc, T* tmp) {
  double *sg = acc, *sgx = acc + cols;
  T *invstd = tmp, *a = tmp + cols, *c = tmp + 2 * cols;
  for (index_t j = 0; j < cols; ++j) {
    sg[j] = sgx[j] = 0.0;
    invstd[j] = T(1) / std::sqrt(var[j] + T(eps));
  }
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) {
      const double g = double(dy[r * cols + j]);
      sg[j] += g;
      sgx[j] += g * (double(x[r * cols + j]) - double(mean[j])) * double(invstd[j]);
    }
  for (index_t j = 0; j < cols; ++j) {
    dbeta[j] = T(sg[j]);
    dgamma[j] = T(sgx[j]);
  }
  if (!dx) return;
  const double inv_rows = rows ? 1.0 / double(rows) : 0.0;
  for (index_t j = 0; j < cols; ++j) {
    a[j] = batch_stats ? T(sg[j] * inv_rows) : T(0);   // mean of dy
    c[j] = batch_stats ? T(sgx[j] * inv_rows) : T(0);  // mean of dy·x̂
  }
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) {
      const T xhat = (x[r * cols + j] - mean[j]) * invstd[j];
      dx[r * cols + j] = gamma[j] * invstd[j] * (dy[r * cols + j] - a[j] - xhat * c[j]);
    }
}

// per row: mean = Σ_j x/cols;  var = Σ_j (x − mean)²/cols;  y = (x − mean)·invstd·γ + β
template <typename T>
void layer_norm_forward(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                        double eps, T* y, T* mean, T* var) {
  const double inv_cols = cols ? 1.0 / double(cols) : 0.0;
  for (index_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    double s = 0.0;
    for (index_t j = 0; j < cols; ++j) s += double(xr[j]);
    const T m = T(s * inv_cols);
    double q = 0.0;
    for (index_t j = 0; j < cols; ++j) {
      const double d = double(xr[j]) - double(m);
      q += d * d;
    }
    mean[r] = m;
    var[r] = T(q * inv_cols);
    const T invstd = T(1) / std::sqrt(var[r] + T(eps));
    for (index_t j = 0; j < cols; ++j) y[r * cols + j] = (xr[j] - m) * invstd * gamma[j] + beta[j];
  }
}

// g = dy·γ;  dx = invstd·(g − mean_j g − x̂·mean_j(g·x̂));  dγ = Σ_r dy·x̂;  dβ = Σ_r dy
template <typename T>
void layer_norm_backward(index_t rows, index_t cols, const T* dy, const T* x, const T* mean,
                         const T* var, const T* gamma, double eps, T* dx, T* dgamma, T* dbeta,
                         double* acc) {
  double *sg = acc, *sgx = acc + cols;
  for (index_t j = 0; j < cols; ++j) sg[j] = sgx[j] = 0.0;
  const double inv_cols = cols ? 1.0 / double(cols) : 0.0;
  for (index_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T* dyr = dy + r * cols;
    const T invstd = T(1) / std::sqrt(var[r] + T(eps));
    double mg = 0.0, mgx = 0.0;
    for (index_t j = 0; j < cols; ++j) {
      const double xhat = (double(xr[j]) - double(mean[r])) * double(invstd);
      const double g = double(dyr[j]);
      sg[j] += g;
      sgx[j] += g * xhat;
      mg += g * double(gamma[j]);
      mgx += g * double(gamma[j]) * xhat;
    }
    if (!dx) continue;
    const T a = T(mg * inv_cols), c = T(mgx * inv_cols);
    for (index_t j = 0; j < cols; ++j) {
      const T xhat = (xr[j] - mean[r]) * invstd;
      dx[r * cols + j] = invstd * (dyr[j] * gamma[j] - a - xhat * c);
    }
  }
  for (index_t j = 0; j < cols; ++j) {
    dbeta[j] = T(sg[j]);
    dgamma[j] = T(sgx[j]);
  }
}

#define BP_INSTANTIATE(T)                                                                       \
  template void batch_norm_forward<T>(index_t, index_t, const T*, const T*, const T*, double,   \
                                      T*, T*, T*, double*, T*);                                 \
  template void batch_norm_inference<T>(index_t, index_t, const T*, const T*, const T*,         \
                                        const T*, const T*, double, T*, T*);                    \
  template void batch_norm_backward<T>(index_t, index_t, const T*, const T*, const T*,          \
                                       const T*, const T*, double, bool, T*, T*, T*, double*,   \
                                       T*);                                                     \
  template void layer_norm_forward<T>(index_t, index_t, const T*, const T*, const T*, double,   \
                                      T*, T*, T*);                                              \
  template void layer_norm_backward<T>(index_t, index_t, const T*, const T*, const T*,          \
                                       const T*, const T*, double, T*, T*, T*, double*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace BP_ISA_NS
}  // namespace blockprop
