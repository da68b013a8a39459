#include <string>

#include "bind_checks.h"
#include "bindings.h"
#include "blockprop/dropout.h"

namespace blockprop {
namespace bind {

namespace {

using namespace checks;

double dropout_rate(py::handle obj, const char* fn) {
  const double p = finite_number(obj, fn, "p");
  if (p < 0.0 || p > 1.0)
    throw py::value_error(std::string(fn) + ": p must lie in [0, 1], got " +
                          py::repr(py::float_(p)).cast<std::string>());
  return p;
}

// out = in ⊙ keep(seed, step, i)/(1 − p), any shape (element i in C order)
py::array dropout_py(const char* fn, const char* name, py::handle x_obj, py::handle p_obj,
                     py::handle seed_obj, py::handle step_obj, bool backward) {
  py::array xa = float_array(x_obj, fn, name);
  const double p = dropout_rate(p_obj, fn);
  const std::uint64_t seed = uint64_arg(seed_obj, fn, "seed"), step = uint64_arg(step_obj, fn, "step");
  return dispatch_float(xa, [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto x = contiguous<T>(xa);
    py::array_t<T> y(shape_of(x));
    {
      py::gil_scoped_release release;
      if (backward) dropout_backward<T>(x.size(), x.data(), y.mutable_data(), p, seed, step);
      else dropout_forward<T>(x.size(), x.data(), y.mutable_data(), p, seed, step);
    }
    return y;
  });
}

}  // namespace

void bind_dropout(py::module_& m) {
  m.def("dropout", [](py::handle x, py::handle p, py::handle seed, py::handle step) {
    return dropout_py("dropout", "x", x, p, seed, step, false);
  }, py::arg("x"), py::arg("p"), py::arg("seed"), py::arg("step"));
  m.def("dropout_backward", [](py::handle dy, py::handle p, py::handle seed, py::handle step) {
    return dropout_py("dropout_backward", "dy", dy, p, seed, step, true);
  }, py::arg("dy"), py::arg("p"), py::arg("seed"), py::arg("step"));
}

}  // namespace bind
}  // namespace blockprop
