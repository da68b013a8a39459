// One function per file of bindings, each adding its functions to the module.
#pragma once
#include <pybind11/pybind11.h>

namespace blockprop {
namespace bind {

void bind_runtime(pybind11::module_& m);      // instruction set, threads
void bind_gemm(pybind11::module_& m);
void bind_dense(pybind11::module_& m);
void bind_activations(pybind11::module_& m);
void bind_losses(pybind11::module_& m);
void bind_optimizers(pybind11::module_& m);
void bind_mlp(pybind11::module_& m);          // whole training loop in C++
void bind_dropout(pybind11::module_& m);
void bind_normalization(pybind11::module_& m);
void bind_diagnostics(pybind11::module_& m);  // norms, dead units, weight penalties

}  // namespace bind
}  // namespace blockprop
