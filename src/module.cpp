// blockprop._core: the compiled kernels. Thin: converts and checks arrays, releases the GIL and
// calls the C++ core. The Python API in blockprop.kernels documents each function.
#include "bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "blockprop compiled core (see blockprop.kernels for the documented API)";
  using namespace blockprop::bind;
  bind_runtime(m);
  bind_gemm(m);
  bind_dense(m);
  bind_activations(m);
  bind_losses(m);
  bind_optimizers(m);
  bind_mlp(m);
  bind_dropout(m);
  bind_normalization(m);
  bind_diagnostics(m);
}
