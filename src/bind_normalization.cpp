#include <string>

#include "bind_checks.h"
#include "bindings.h"
#include "blockprop/normalization.h"

namespace blockprop {
namespace bind {

namespace {

using namespace checks;

double eps_arg(py::handle obj, const char* fn) {
  const double eps = finite_number(obj, fn, "eps");
  if (eps < 0.0)
    throw py::value_error(std::string(fn) + ": eps must be ≥ 0, got " +
                          py::repr(py::float_(eps)).cast<std::string>());
  return eps;
}

// (y, mean, var) of batch (per column) or layer (per row) normalization in training.
py::tuple norm_forward(py::handle x_obj, py::handle g_obj, py::handle b_obj, py::handle eps_obj,
                       bool batch) {
  const char* fn = batch ? "batch_norm_forward" : "layer_norm_forward";
  py::array xa = matrix(x_obj, fn, "x");
  const py::ssize_t rows = xa.shape(0), cols = xa.shape(1);
  py::array ga = matching(g_obj, fn, "gamma", xa, "x", {cols});
  py::array ba = matching(b_obj, fn, "beta", xa, "x", {cols});
  const double eps = eps_arg(eps_obj, fn);
  return dispatch_float(xa, [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    auto x = contiguous<T>(xa);
    auto g = contiguous<T>(ga);
    auto b = contiguous<T>(ba);
    const py::ssize_t nstat = batch ? cols : rows;
    py::array_t<T> y({rows, cols}), mean(nstat), var(nstat);
    {
      py::gil_scoped_release release;
      if (batch)
        batch_norm_forward<T>(rows, cols, x.data(), g.data(), b.data(), eps, y.mutable_data(),
                              mean.mutable_data(), var.mutable_data());
      else
        layer_norm_forward<T>(rows, cols, x.data(), g.data(), b.data(), eps, y.mutable_data(),
                              mean.mutable_data(), var.mutable_data());
    }
    return py::make_tuple(y, mean, var);
  });
}

py::array bn_inference(py::handle x_obj, py::handle g_obj, py::handle b_obj, py::handle m_obj,
                       py::handle v_obj, py::handle eps_obj) {
  const char* fn = "batch_norm_inference";
  py::array xa = matrix(x_obj, fn, "x");
  const py::ssize_t rows = xa.shape(0), cols = xa.shape(1);
  py::array ga = matching(g_obj, fn, "gamma", xa, "x", {cols});
  py::array ba = matching(b_obj, fn, "beta", xa, "x", {cols});
  py::array ma = matching(m_obj, fn, "mean", xa, "x", {cols});
  py::array va = matching(v_obj, fn, "var", xa, "x", {cols});
  const double eps = eps_arg(eps_obj, fn);
  return dispatch_float(xa, [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto x = contiguous<T>(xa);
    auto g = contiguous<T>(ga);
    auto b = contiguous<T>(ba);
    auto m = contiguous<T>(ma);
    auto v = contiguous<T>(va);
    py::array_t<T> y({rows, cols});
    {
      py::gil_scoped_release release;
      batch_norm_inference<T>(rows, cols, x.data(), g.data(), b.data(), m.data(), v.data(), eps,
                              y.mutable_data());
    }
    return y;
  });
}

// (dx or None, dgamma, dbeta)
py::tuple norm_backward(py::handle dy_obj, py::handle x_obj, py::handle m_obj, py::handle v_obj,
                        py::handle g_obj, py::handle eps_obj, bool batch_stats, bool need_dx,
                        bool batch) {
  const char* fn = batch ? "batch_norm_backward" : "layer_norm_backward";
  py::array dya = matrix(dy_obj, fn, "dy");
  const py::ssize_t rows = dya.shape(0), cols = dya.shape(1), nstat = batch ? cols : rows;
  py::array xa = matching(x_obj, fn, "x", dya, "dy", {rows, cols});
  py::array ma = matching(m_obj, fn, "mean", dya, "dy", {nstat});
  py::array va = matching(v_obj, fn, "var", dya, "dy", {nstat});
  py::array ga = matching(g_obj, fn, "gamma", dya, "dy", {cols});
  const double eps = eps_arg(eps_obj, fn);
  return dispatch_float(dya, [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    auto dy = contiguous<T>(dya);
    auto x = contiguous<T>(xa);
    auto m = contiguous<T>(ma);
    auto v = contiguous<T>(va);
    auto g = contiguous<T>(ga);
    py::array_t<T> dgamma(cols), dbeta(cols);
    py::object dx_obj = py::none();
    T* dx = nullptr;
    if (need_dx) {
      py::array_t<T> dx_a({rows, cols});
      dx = dx_a.mutable_data();
      dx_obj = dx_a;
    }
    {
      py::gil_scoped_release release;
      if (batch)
        batch_norm_backward<T>(rows, cols, dy.data(), x.data(), m.data(), v.data(), g.data(), eps,
                               batch_stats, dx, dgamma.mutable_data(), dbeta.mutable_data());
      else
        layer_norm_backward<T>(rows, cols, dy.data(), x.data(), m.data(), v.data(), g.data(), eps,
                               dx, dgamma.mutable_data(), dbeta.mutable_data());
    }
    return py::make_tuple(dx_obj, dgamma, dbeta);
  });
}

}  // namespace

void bind_normalization(py::module_& m) {
  m.def("batch_norm_forward", [](py::handle x, py::handle g, py::handle b, py::handle eps) {
    return norm_forward(x, g, b, eps, true);
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("eps"));
  m.def("batch_norm_inference", &bn_inference, py::arg("x"), py::arg("gamma"), py::arg("beta"),
        py::arg("mean"), py::arg("var"), py::arg("eps"));
  m.def("batch_norm_backward",
        [](py::handle dy, py::handle x, py::handle mean, py::handle var, py::handle g,
           py::handle eps, bool batch_stats, bool need_dx) {
          return norm_backward(dy, x, mean, var, g, eps, batch_stats, need_dx, true);
        },
        py::arg("dy"), py::arg("x"), py::arg("mean"), py::arg("var"), py::arg("gamma"),
        py::arg("eps"), py::arg("batch_stats"), py::arg("need_dx"));
  m.def("layer_norm_forward", [](py::handle x, py::handle g, py::handle b, py::handle eps) {
    return norm_forward(x, g, b, eps, false);
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("eps"));
  m.def("layer_norm_backward",
        [](py::handle dy, py::handle x, py::handle mean, py::handle var, py::handle g,
           py::handle eps, bool need_dx) {
          return norm_backward(dy, x, mean, var, g, eps, true, need_dx, false);
        },
        py::arg("dy"), py::arg("x"), py::arg("mean"), py::arg("var"), py::arg("gamma"),
        py::arg("eps"), py::arg("need_dx"));
}

}  // namespace bind
}  // namespace blockprop
