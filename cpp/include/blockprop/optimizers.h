// Optimizer updates, in place over a flat parameter array of n elements (PyTorch semantics).
#pragma once
#include "blockprop/types.h"

namespace blockprop {

struct SgdParams {
  double lr = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// g = grad + wd·p;  v = μ·v + g;  p −= lr·(nesterov ? g + μ·v : v)   (plain p −= lr·g when μ = 0;
// velocity may then be null)
template <typename T>
void sgd_step(index_t n, T* param, const T* grad, T* velocity, const SgdParams& hp);

struct AdamParams {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;  // AdamW: p −= lr·wd·p instead of adding wd·p to g
  std::int64_t step = 1;                // 1-based count of this update, for bias correction
};

// g = grad (+ wd·p);  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
// p −= lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps)
template <typename T>
void adam_step(index_t n, T* param, const T* grad, T* m, T* v, const AdamParams& hp);

}  // namespace blockprop
