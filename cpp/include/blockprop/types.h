// Basic types shared by the whole core.
#pragma once
#include <cstdint>

namespace blockprop {

// Sizes and strides are 64-bit so that element counts of large arrays never overflow.
using index_t = std::int64_t;

// Element-wise activations that can be fused into a dense layer's write-back. Fused, leaky_relu
// has slope 0.01 and elu alpha 1 (the stand-alone kernels take other values); gelu is the exact
// (erf) form, PyTorch's default.
enum class Activation : int {
  linear = 0, relu = 1, sigmoid = 2, tanh = 3,
  leaky_relu = 4, elu = 5, gelu = 6, softplus = 7
};

// What the products of a GEMM are computed from: the operands as given, or (float32 operands
// only) rounded to bfloat16, round to nearest even, with the products summed in float32.
enum class Precision : int { float32 = 0, bfloat16 = 1 };

// The fused leaky_relu slope and elu alpha.
constexpr double kLeakySlope = 0.01;
constexpr double kEluAlpha = 1.0;

}  // namespace blockprop
