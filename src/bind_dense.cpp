#include <string>

#include "arrays.h"
#include "bindings.h"
#include "blockprop/dense.h"

namespace blockprop {
namespace bind {

namespace {

struct DenseArgs {
  py::array x, w, b;
  bool has_b = false;  // a default py::array is a valid (empty float64) array, not null
  index_t batch, in, out;
};

// Checks x (batch, in), W (out, in) and optional b (out,) against each other.
DenseArgs dense_args(const char* fn, py::handle x_obj, py::handle w_obj, py::handle b_obj) {
  DenseArgs d;
  d.x = float_array(x_obj, fn, "x");
  d.w = float_array(w_obj, fn, "W");
  check_ndim(fn, d.x, "x", 2);
  check_ndim(fn, d.w, "W", 2);
  check_same_dtype(fn, d.x, "x", d.w, "W");
  d.batch = d.x.shape(0);
  d.in = d.x.shape(1);
  d.out = d.w.shape(0);
  if (d.w.shape(1) != d.in) {
    throw py::value_error(std::string(fn) + ": x has " + std::to_string(d.in) +
                          " features (shape " + shape_str(d.x) + ") but W expects " +
                          std::to_string(d.w.shape(1)) + " (shape " + shape_str(d.w) +
                          ", i.e. (out_features, in_features))");
  }
  if (!b_obj.is_none()) {
    d.b = float_array(b_obj, fn, "b");
    d.has_b = true;
    check_same_dtype(fn, d.x, "x", d.b, "b");
    check_shape(fn, d.b, "b", {d.out});
  }
  return d;
}

// y, and the count of non-finite values of x·Wᵀ + b when `nonfinite` is given.
py::array dense_forward_impl(const char* fn, py::handle x_obj, py::handle w_obj, py::handle b_obj,
                             py::handle act_obj, index_t* nonfinite, bool bf16) {
  DenseArgs d = dense_args(fn, x_obj, w_obj, b_obj);
  const Precision precision = precision_for(fn, d.x, bf16);
  const Activation act = parse_activation(act_obj, fn);
  return dispatch_float(d.x, [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto x = contiguous<T>(d.x);
    auto w = contiguous<T>(d.w);
    py::array_t<T, py::array::c_style> b;
    if (d.has_b) b = contiguous<T>(d.b);
    py::array_t<T> y({d.batch, d.out});
    const T* bp = d.has_b ? b.data() : nullptr;
    {
      py::gil_scoped_release release;
      dense_forward<T>(d.batch, d.in, d.out, x.data(), w.data(), bp, act, y.mutable_data(),
                       nonfinite, precision);
    }
    return y;
  });
}

py::array dense_forward_py(py::handle x_obj, py::handle w_obj, py::handle b_obj,
                           py::handle act_obj, bool bf16) {
  return dense_forward_impl("dense_forward", x_obj, w_obj, b_obj, act_obj, nullptr, bf16);
}

py::tuple dense_forward_counted_py(py::handle x_obj, py::handle w_obj, py::handle b_obj,
                                   py::handle act_obj, bool bf16) {
  index_t nonfinite = 0;
  py::array y = dense_forward_impl("dense_forward_counted", x_obj, w_obj, b_obj, act_obj,
                                   &nonfinite, bf16);
  return py::make_tuple(y, nonfinite);
}

py::tuple dense_backward_py(py::handle x_obj, py::handle w_obj, py::handle dy_obj,
                            py::handle y_obj, py::handle act_obj, bool need_dx, bool bf16) {
  const char* fn = "dense_backward";
  DenseArgs d = dense_args(fn, x_obj, w_obj, py::none());
  const Precision precision = precision_for(fn, d.x, bf16);
  const Activation act = parse_activation(act_obj, fn);
  py::array dy_a = float_array(dy_obj, fn, "dy");
  check_same_dtype(fn, d.x, "x", dy_a, "dy");
  check_shape(fn, dy_a, "dy", {d.batch, d.out});
  py::array y_a;
  bool has_y = false;  // y_a default-constructs to an empty array, so it cannot say "absent"
  if (act != Activation::linear) {
    if (y_obj.is_none())
      throw py::value_error("dense_backward: y (the forward's output) is required for a non-linear activation");
    y_a = float_array(y_obj, fn, "y");
    has_y = true;
    check_same_dtype(fn, d.x, "x", y_a, "y");
    check_shape(fn, y_a, "y", {d.batch, d.out});
  }
  return dispatch_float(d.x, [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    auto x = contiguous<T>(d.x);
    auto w = contiguous<T>(d.w);
    auto dy = contiguous<T>(dy_a);
    py::array_t<T, py::array::c_style> y;
    if (has_y) y = contiguous<T>(y_a);
    py::array_t<T> dw({d.out, d.in}), db({d.out});
    py::object dx_obj = py::none();
    T* dxp = nullptr;
    if (need_dx) {
      py::array_t<T> dx({d.batch, d.in});
      dxp = dx.mutable_data();
      dx_obj = dx;
    }
    const T* yp = has_y ? y.data() : nullptr;
    {
      py::gil_scoped_release release;
      dense_backward<T>(d.batch, d.in, d.out, x.data(), w.data(), dy.data(), yp, act, dxp,
                        dw.mutable_data(), db.mutable_data(), false, precision);
    }
    return py::make_tuple(dx_obj, dw, db);
  });
}

}  // namespace

void bind_dense(py::module_& m) {
  m.def("dense_forward", &dense_forward_py, py::arg("x"), py::arg("W"), py::arg("b") = py::none(),
        py::arg("activation") = "linear", py::arg("bf16") = false);
  m.def("dense_forward_counted", &dense_forward_counted_py, py::arg("x"), py::arg("W"),
        py::arg("b") = py::none(), py::arg("activation") = "linear", py::arg("bf16") = false,
        "dense_forward, and the number of non-finite values of x·Wᵀ + b (before the activation)");
  m.def("dense_backward", &dense_backward_py, py::arg("x"), py::arg("W"), py::arg("dy"),
        py::arg("y") = py::none(), py::arg("activation") = "linear", py::arg("need_dx") = true,
        py::arg("bf16") = false);
}

}  // namespace bind
}  // namespace blockprop
