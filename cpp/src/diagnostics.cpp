#include "blockprop/diagnostics.h"

#include "dispatch.h"

namespace blockprop {

template <typename T>
double sum_squares(index_t n, const T* x) {
  BP_DISPATCH(sum_squares<T>, n, x);
}

template <typename T>
index_t count_nonfinite(index_t n, const T* x) {
  BP_DISPATCH(count_nonfinite<T>, n, x);
}

template <typename T>
double sum_squared_diff(index_t n, const T* a, const T* b) {
  BP_DISPATCH(sum_squared_diff<T>, n, a, b);
}

template <typename T>
void mark_active(index_t rows, index_t cols, const T* y, std::uint8_t* active) {
  BP_DISPATCH(mark_active<T>, rows, cols, y, active);
}

template <typename T>
double weight_penalty(index_t n, const T* w, double l1, double l2, T* grad) {
  BP_DISPATCH(weight_penalty<T>, n, w, l1, l2, grad);
}

#define BP_INSTANTIATE(T)                                                   \
  template double sum_squares<T>(index_t, const T*);                       \
  template index_t count_nonfinite<T>(index_t, const T*);                  \
  template double sum_squared_diff<T>(index_t, const T*, const T*);        \
  template void mark_active<T>(index_t, index_t, const T*, std::uint8_t*); \
  template double weight_penalty<T>(index_t, const T*, double, double, T*);
BP_INSTANTIATE(float)
BP_INSTANTIATE(double)
#undef BP_INSTANTIATE

}  // namespace blockprop
