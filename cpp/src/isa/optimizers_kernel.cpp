// Optimizer updates in place, one build per instruction set. Hyper-parameters arrive in double
// and are rounded to T once, as the NumPy reference does with a Python float times a T array.
#include "isa/isa_prelude.h"

#include "isa/elementwise.h"
#include "isa/fp_env.h"

namespace blockprop {
namespace BP_ISA_NS {

// SGD with momentum for one mode (a template flag, so the loop body has no branch); values
// captured by copy and restrict pointers, so no store can seem to change them (see adam_loop).
template <typename T, bool Nesterov>
void sgd_momentum_loop(index_t n, T* param, const T* grad, T* velocity, T lr, T mu, T wd) {
  elementwise(n, [=](index_t lo, index_t hi) {
    const FlushSubnormals ftz;
    T* __restrict pp = param;
    const T* __restrict gp = grad;
    T* __restrict vp = velocity;
    for (index_t i = lo; i < hi; ++i) {
      const T g = gp[i] + wd * pp[i];
      const T v = mu * vp[i] + g;
      vp[i] = v;
      pp[i] -= lr * (Nesterov ? g + mu * v : v);
    }
  });
}

// g = grad + wd·p;  v = μ·v + g;  p −= lr·(nesterov ? g + μ·v : v)   (p −= lr·g when μ = 0)
template <typename T>
void sgd_step(index_t n, T* param, const T* grad, T* velocity, const SgdParams& hp) {
  const T lr = T(hp.lr), mu = T(hp.momentum), wd = T(hp.weight_decay);
  if (hp.momentum != 0.0) {
    if (hp.nesterov) return sgd_momentum_loop<T, true>(n, param, grad, velocity, lr, mu, wd);
    return sgd_momentum_loop<T, false>(n, param, grad, velocity, lr, mu, wd);
  }
  elementwise(n, [=](index_t lo, index_t hi) {
    const FlushSubnormals ftz;
    T* __restrict pp = param;
    const T* __restrict gp = grad;
    for (index_t i = lo; i < hi; ++i) pp[i] -= lr * (gp[i] + wd * pp[i]);
  });
}

// Adam's loop for one weight-decay mode (a template flag, so the loop body has no branch):
// Coupled adds wd·p to g; Decoupled (AdamW) first shrinks p by lr·wd·p.
template <typename T, bool Coupled, bool Decoupled>
void adam_loop(index_t n, T* param, const T* grad, T* m, T* v, const AdamParams& hp) {
  const T b1 = T(hp.beta1), b2 = T(hp.beta2), c1 = T(1.0 - hp.beta1), c2 = T(1.0 - hp.beta2);
  const T wd = T(hp.weight_decay), lr_wd = T(hp.lr * hp.weight_decay), eps = T(hp.eps);
  // Bias corrections folded into two scalars: lr·m̂ = (lr/(1−β1^t))·m, v̂ = v·(1/(1−β2^t)).
  const double bc1 = 1.0 - std::pow(hp.beta1, double(hp.step));
  const double bc2 = 1.0 - std::pow(hp.beta2, double(hp.step));
  const T step_size = T(hp.lr / bc1), inv_bc2 = T(1.0 / bc2);
  // Copies and restrict pointers: with the hyper-parameters captured by reference, GCC must
  // assume a store to m or v could change them and left this loop scalar (scalar sqrt, 3 ns per
  // parameter).
  elementwise(n, [=](index_t lo, index_t hi) {
    const FlushSubnormals ftz;
    T* __restrict pp = param;
    const T* __restrict gp = grad;
    T* __restrict mp = m;
    T* __restrict vp = v;
    for (index_t i = lo; i < hi; ++i) {
      T p = pp[i], g = gp[i];
      if (Coupled) g += wd * p;
      if (Decoupled) p -= lr_wd * p;
      const T mi = b1 * mp[i] + c1 * g;
      const T vi = b2 * vp[i] + c2 * (g * g);
      mp[i] = mi;
      vp[i] = vi;
      pp[i] = p - step_size * mi / (std::sqrt(vi * inv_bc2) + eps);
    }
  });
}

// g = grad (+ wd·p);  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
// p −= lr·(m/(1−β1^t)) / (sqrt(v/(1−β2^t)) + eps)
template <typename T>
void adam_step(index_t n, T* param, const T* grad, T* m, T* v, const AdamParams& hp) {
  const bool decay = hp.weight_decay != 0.0;
  if (decay && hp.decoupled_weight_decay)
    adam_loop<T, false, true>(n, param, grad, m, v, hp);
  else if (decay)
    adam_loop<T, true, false>(n, param, grad, m, v, hp);
  else
    adam_loop<T, false, false>(n, param, grad, m, v, hp);
}

#define BP_INSTANTIATE(T)                                                            \
  template void sgd_step<T>(index_t, T*, const T*, T*, const SgdParams&);            \
  template void adam_step<T>(index_t, T*, const T*, T*, T*, const AdamParams&);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace BP_ISA_NS
}  // namespace blockprop
