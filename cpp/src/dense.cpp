#include "blockprop/dense.h"

#include "blockprop/activations.h"
#include "blockprop/gemm.h"
#include <stdexcept>
#include <type_traits>

#include "dispatch.h"
#include "workspace.h"

namespace blockprop {

// y = f(x·Wᵀ + b): GEMM with A = x (batch×in), B = Wᵀ (W read with swapped strides), C = y.
template <typename T>
void dense_forward(index_t batch, index_t in, index_t out, const T* x, const T* w, const T* b,
                   Activation act, T* y, index_t* nonfinite, Precision precision) {
  std::atomic<index_t> count{0};
  Epilogue<T> ep;
  ep.bias = b;
  ep.act = act;
  if (nonfinite) ep.nonfinite = &count;
  gemm<T>(precision, batch, out, in, T(1), x, in, 1, w, 1, in, T(0), y, out, 1, ep);
  if (nonfinite) *nonfinite = count.load();
}

template <typename T>
void dense_backward(index_t batch, index_t in, index_t out, const T* x, const T* w, const T* dy,
                    const T* y, Activation act, T* dx, T* dw, T* db, bool accumulate,
                    Precision precision) {
  if (precision == Precision::bfloat16 && !std::is_same_v<T, float>)
    throw std::invalid_argument("dense_backward: bfloat16 precision takes float32 arrays");
  // δ = dy ⊙ f'(y); for a linear layer δ is dy itself.
  const T* delta = dy;
  if (act != Activation::linear) {
    T* buf = static_cast<T*>(thread_workspace(kDelta, sizeof(T) * batch * out));
    activation_backward<T>(act, batch * out, dy, y, buf);
    delta = buf;
  }
  const T beta = accumulate ? T(1) : T(0);
  // dx = δ·W      (batch×out · out×in)
  if (dx) gemm<T>(precision, batch, in, out, T(1), delta, out, 1, w, in, 1, T(0), dx, in, 1);
  // dW = δᵀ·x     (out×batch · batch×in), δᵀ read with swapped strides
  gemm<T>(precision, out, in, batch, T(1), delta, 1, out, x, in, 1, beta, dw, in, 1);
  // db = Σ_batch δ
  if (db) {
    auto colsum = [&]() { BP_DISPATCH(column_sum<T>, batch, out, delta, db, accumulate); };
    colsum();
  }
}

template void dense_forward<float>(index_t, index_t, index_t, const float*, const float*,
                                   const float*, Activation, float*, index_t*, Precision);
template void dense_forward<double>(index_t, index_t, index_t, const double*, const double*,
                                    const double*, Activation, double*, index_t*, Precision);
template void dense_backward<float>(index_t, index_t, index_t, const float*, const float*,
                                    const float*, const float*, Activation, float*, float*, float*,
                                    bool, Precision);
template void dense_backward<double>(index_t, index_t, index_t, const double*, const double*,
                                     const double*, const double*, Activation, double*, double*,
                                     double*, bool, Precision);

}  // namespace blockprop
