// Portable SIMD vectors (GCC/Clang vector extensions) of the width of the instruction set this
// file is compiled for: BP_VEC_BYTES is 64 for AVX-512, 32 for AVX2 and 16 for the portable build
// (SSE2, the x86-64 baseline). One kernel source thus serves every instruction set.
#pragma once
#include "isa/isa_prelude.h"

#ifndef BP_VEC_BYTES
#error "BP_VEC_BYTES must give the vector width in bytes"
#endif

namespace blockprop {
namespace BP_ISA_NS {

template <typename T>
struct Simd;

template <>
struct Simd<float> {
  typedef float vec __attribute__((vector_size(BP_VEC_BYTES)));
  typedef float uvec __attribute__((vector_size(BP_VEC_BYTES), aligned(4), may_alias));
};

template <>
struct Simd<double> {
  typedef double vec __attribute__((vector_size(BP_VEC_BYTES)));
  typedef double uvec __attribute__((vector_size(BP_VEC_BYTES), aligned(8), may_alias));
};

template <typename T>
using vec_t = typename Simd<T>::vec;

template <typename T>
constexpr int lanes = BP_VEC_BYTES / sizeof(T);

template <typename T>
inline vec_t<T> vload(const T* p) {
  return *reinterpret_cast<const typename Simd<T>::uvec*>(p);
}

template <typename T>
inline void vstore(T* p, vec_t<T> v) {
  *reinterpret_cast<typename Simd<T>::uvec*>(p) = v;
}

template <typename T>
inline vec_t<T> vbroadcast(T x) {
  return vec_t<T>{} + x;
}

}  // namespace BP_ISA_NS
}  // namespace blockprop
