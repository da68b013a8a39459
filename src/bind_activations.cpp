#include <Python.h>

#include <cmath>
#include <string>

#include "arrays.h"
#include "bind_checks.h"
#include "bindings.h"
#include "blockprop/activations.h"

namespace blockprop {
namespace bind {

namespace {

// leaky_relu's slope or elu's α: None means the fused default; else a finite number
// (α ≥ 0, so that elu stays monotone and its derivative through y, y + α, is right).
double activation_param(py::handle obj, Activation act, const char* fn) {
  if (obj.is_none()) return act == Activation::elu ? kEluAlpha : kLeakySlope;
  const char* name = act == Activation::elu ? "alpha" : "negative_slope";
  if (!checks::real_number(obj))
    throw py::type_error(std::string(fn) + ": " + name + " must be a number, got " + checks::type_name(obj));
  const double p = PyFloat_AsDouble(obj.ptr());  // NumPy scalars too (cast<double> takes only float/int)
  if (!std::isfinite(p)) throw py::value_error(std::string(fn) + ": " + name + " must be finite");
  if (act == Activation::elu && p < 0) throw py::value_error(std::string(fn) + ": alpha must be ≥ 0");
  return p;
}

// y = f(x), any shape
py::array activation_forward_py(py::handle x_obj, py::handle act_obj, py::handle param_obj) {
  const char* fn = "activation_forward";
  py::array xa = float_array(x_obj, fn, "x");
  const Activation act = parse_activation(act_obj, fn);
  const double param = activation_param(param_obj, act, fn);
  return dispatch_float(xa, [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto x = contiguous<T>(xa);
    py::array_t<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    {
      py::gil_scoped_release release;
      activation_forward<T>(act, x.size(), x.data(), y.mutable_data(), param);
    }
    return y;
  });
}

// dx = dy ⊙ f'(x) through y = f(x) (GELU: through x), any shape
py::array activation_backward_py(py::handle dy_obj, py::handle y_obj, py::handle act_obj,
                                 py::handle param_obj) {
  const char* fn = "activation_backward";
  py::array dya = float_array(dy_obj, fn, "dy");
  py::array ya = float_array(y_obj, fn, "y");
  check_same_dtype(fn, dya, "dy", ya, "y");
  check_shape(fn, ya, "y", std::vector<py::ssize_t>(dya.shape(), dya.shape() + dya.ndim()));
  const Activation act = parse_activation(act_obj, fn);
  const double param = activation_param(param_obj, act, fn);
  return dispatch_float(dya, [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto dy = contiguous<T>(dya);
    auto y = contiguous<T>(ya);
    py::array_t<T> dx(std::vector<py::ssize_t>(dy.shape(), dy.shape() + dy.ndim()));
    {
      py::gil_scoped_release release;
      activation_backward<T>(act, dy.size(), dy.data(), y.data(), dx.mutable_data(), param);
    }
    return dx;
  });
}

// rows × cols view of an array whose last axis is the softmax axis.
void softmax_dims(const char* fn, const py::array& a, const char* name, index_t* rows, index_t* cols) {
  if (a.ndim() < 1) throw py::value_error(std::string(fn) + ": " + name + " must have at least 1 dimension");
  *cols = a.shape(a.ndim() - 1);
  *rows = *cols ? a.size() / *cols : 0;
}

py::array softmax_py(py::handle x_obj) {
  const char* fn = "softmax";
  py::array xa = float_array(x_obj, fn, "x");
  index_t rows, cols;
  softmax_dims(fn, xa, "x", &rows, &cols);
  return dispatch_float(xa, [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto x = contiguous<T>(xa);
    py::array_t<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    {
      py::gil_scoped_release release;
      softmax_forward<T>(rows, cols, x.data(), y.mutable_data());
    }
    return y;
  });
}

py::array softmax_backward_py(py::handle dy_obj, py::handle y_obj) {
  const char* fn = "softmax_backward";
  py::array dya = float_array(dy_obj, fn, "dy");
  py::array ya = float_array(y_obj, fn, "y");
  check_same_dtype(fn, dya, "dy", ya, "y");
  check_shape(fn, ya, "y", std::vector<py::ssize_t>(dya.shape(), dya.shape() + dya.ndim()));
  index_t rows, cols;
  softmax_dims(fn, dya, "dy", &rows, &cols);
  return dispatch_float(dya, [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto dy = contiguous<T>(dya);
    auto y = contiguous<T>(ya);
    py::array_t<T> dx(std::vector<py::ssize_t>(dy.shape(), dy.shape() + dy.ndim()));
    {
      py::gil_scoped_release release;
      softmax_backward<T>(rows, cols, dy.data(), y.data(), dx.mutable_data());
    }
    return dx;
  });
}

}  // namespace

void bind_activations(py::module_& m) {
  m.def("activation_forward", &activation_forward_py, py::arg("x"), py::arg("activation"),
        py::arg("param") = py::none());
  m.def("activation_backward", &activation_backward_py, py::arg("dy"), py::arg("y"),
        py::arg("activation"), py::arg("param") = py::none());
  m.def("softmax", &softmax_py, py::arg("x"));
  m.def("softmax_backward", &softmax_backward_py, py::arg("dy"), py::arg("y"));
}

}  // namespace bind
}  // namespace blockprop
