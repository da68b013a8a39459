// Basic types shared by the whole core.
#pragma once
#include <cstdint>

namespace blockprop {

// Sizes and strides are 64-bit so that element counts of large arrays never overflow.
using index_t = std::int64_t;

// Element-wise activations that can be fused into a dense layer's write-back.
enum class Activation : int { linear = 0, relu = 1, sigmoid = 2, tanh = 3 };

}  // namespace blockprop
