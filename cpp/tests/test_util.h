// Helpers shared by the C++ tests: random data, naive loops, and running a check on every
// instruction set this CPU supports.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "blockprop/isa.h"
#include "blockprop/types.h"

namespace bptest {

using blockprop::index_t;
using blockprop::Isa;

// Instruction sets to test here: every one this build and CPU can run.
inline std::vector<Isa> testable_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
    if (blockprop::isa_supported(isa)) out.push_back(isa);
  return out;
}

// Makes `isa` active for a scope and restores the previous one after.
struct IsaScope {
  Isa saved;
  explicit IsaScope(Isa isa) : saved(blockprop::active_isa()) { blockprop::set_active_isa(isa); }
  ~IsaScope() { blockprop::set_active_isa(saved); }
};

template <typename T>
std::vector<T> random_vector(std::size_t n, std::uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(gen));
  return v;
}

// Tolerance for a sum of k products of values in [-1, 1]: a few ulps per term.
template <typename T>
double sum_tolerance(index_t k) {
  const double eps = std::is_same<T, float>::value ? 1.2e-7 : 2.3e-16;
  return 8.0 * eps * (static_cast<double>(k) + 1.0);
}

inline std::string isa_label(Isa isa) { return std::string("isa=") + blockprop::isa_name(isa); }

// f(x) for the classic activations, in double.
inline double naive_f(blockprop::Activation act, double x) {
  switch (act) {
    case blockprop::Activation::relu: return x > 0 ? x : 0;
    case blockprop::Activation::sigmoid: return 1 / (1 + std::exp(-x));
    case blockprop::Activation::tanh: return std::tanh(x);
    default: return x;
  }
}

// f'(x) through y = f(x), for the classic activations.
inline double naive_df(blockprop::Activation act, double y) {
  switch (act) {
    case blockprop::Activation::relu: return y > 0 ? 1 : 0;
    case blockprop::Activation::sigmoid: return y * (1 - y);
    case blockprop::Activation::tanh: return 1 - y * y;
    default: return 1;
  }
}

}  // namespace bptest
