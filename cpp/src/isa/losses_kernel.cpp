// Losses and their gradients, one build per instruction set. Each returns the mean loss, summed
// in double so that large batches in float32 do not lose the small terms.
#include "isa/isa_prelude.h"

namespace blockprop {
namespace BP_ISA_NS {

// L = mean((pred − target)²);  grad = 2·(pred − target)/n
template <typename T>
double mse_loss(index_t n, const T* pred, const T* target, T* grad) {
  if (n <= 0) return 0.0;
  double sum = 0.0;
  if (grad) {
    const T scale = T(2.0 / double(n));
#pragma omp simd reduction(+ : sum)
    for (index_t i = 0; i < n; ++i) {
      const T d = pred[i] - target[i];
      grad[i] = scale * d;
      sum += double(d) * double(d);
    }
  } else {
#pragma omp simd reduction(+ : sum)
    for (index_t i = 0; i < n; ++i) {
      const double d = double(pred[i] - target[i]);
      sum += d * d;
    }
  }
  return sum / double(n);
}

// L = mean_r(logsumexp(z_r) − z_r[label_r]);  grad = (softmax(z) − onehot(label))/rows
// The row maximum is subtracted before exp, so logits of any magnitude stay finite.
template <typename T>
double softmax_cross_entropy(index_t rows, index_t cols, const T* logits,
                             const std::int64_t* labels, T* grad) {
  if (rows <= 0 || cols <= 0) return 0.0;
  const double inv_rows = 1.0 / double(rows);
  double total = 0.0;
  for (index_t r = 0; r < rows; ++r) {
    const T* z = logits + r * cols;
    const index_t label = labels[r];
    T mx = z[0];
    for (index_t j = 1; j < cols; ++j) mx = z[j] > mx ? z[j] : mx;
    // Read before grad is written, so grad may alias logits.
    const double z_label = double(z[label]) - double(mx);
    double sum = 0.0;
    if (grad) {
      T* g = grad + r * cols;
      for (index_t j = 0; j < cols; ++j) {
        g[j] = std::exp(z[j] - mx);
        sum += double(g[j]);
      }
      const T scale = T(inv_rows / sum);
      for (index_t j = 0; j < cols; ++j) g[j] *= scale;
      g[label] -= T(inv_rows);
    } else {
      for (index_t j = 0; j < cols; ++j) sum += double(std::exp(z[j] - mx));
    }
    total += std::log(sum) - z_label;
  }
  return total * inv_rows;
}

// L = mean(max(z,0) − z·t + log1p(exp(−|z|)));  grad = (sigmoid(z) − t)/n
// Worked in double; e = exp(−|z|) ≤ 1 serves both the loss and sigmoid, so nothing overflows.
template <typename T>
double binary_cross_entropy(index_t n, const T* logits, const T* targets, T* grad) {
  if (n <= 0) return 0.0;
  const double inv_n = 1.0 / double(n);
  double total = 0.0;
  for (index_t i = 0; i < n; ++i) {
    const double z = logits[i], t = targets[i];
    const double e = std::exp(-std::abs(z));
    total += (z > 0.0 ? z : 0.0) - z * t + std::log1p(e);
    if (grad) {
      const double s = z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      grad[i] = T((s - t) * inv_n);
    }
  }
  return total * inv_n;
}

#define BP_INSTANTIATE(T)                                                                    \
  template double mse_loss<T>(index_t, const T*, const T*, T*);                              \
  template double softmax_cross_entropy<T>(index_t, index_t, const T*, const std::int64_t*, \
                                           T*);                                              \
  template double binary_cross_entropy<T>(index_t, const T*, const T*, T*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace BP_ISA_NS
}  // namespace blockprop
