#include <string>

#include "bind_checks.h"
#include "bindings.h"
#include "blockprop/diagnostics.h"

namespace blockprop {
namespace bind {

namespace {

using namespace checks;

// A reduction over every element of one float array of any shape: kernel(n, data) on the
// contiguous array of its dtype, with the GIL released.
template <typename R, typename Kernel>
R reduce_array(py::handle x_obj, const char* fn, Kernel kernel) {
  py::array xa = float_array(x_obj, fn, "x");
  return dispatch_float(xa, [&](auto tag) -> R {
    using T = decltype(tag);
    auto x = contiguous<T>(xa);
    py::gil_scoped_release release;
    return kernel(x.size(), x.data());
  });
}

double sum_squares_py(py::handle x) {
  return reduce_array<double>(x, "sum_squares",
                              [](index_t n, const auto* p) { return sum_squares(n, p); });
}

// Number of NaN and ±inf elements.
index_t count_nonfinite_py(py::handle x) {
  return reduce_array<index_t>(x, "count_nonfinite",
                               [](index_t n, const auto* p) { return count_nonfinite(n, p); });
}

double sum_squared_diff_py(py::handle a_obj, py::handle b_obj) {
  const char* fn = "sum_squared_diff";
  py::array aa = float_array(a_obj, fn, "a");
  py::array ba = matching(b_obj, fn, "b", aa, "a", shape_of(aa));
  return dispatch_float(aa, [&](auto tag) -> double {
    using T = decltype(tag);
    auto a = contiguous<T>(aa);
    auto b = contiguous<T>(ba);
    py::gil_scoped_release release;
    return sum_squared_diff<T>(a.size(), a.data(), b.data());
  });
}

// active |= any(y > 0, axis=0), active a bool array (cols,) updated in place
void mark_active_py(py::handle y_obj, py::handle active_obj) {
  const char* fn = "mark_active";
  py::array ya = matrix(y_obj, fn, "y");
  if (!py::isinstance<py::array>(active_obj))
    throw py::type_error(std::string(fn) + ": active must be a NumPy bool array (updated in place), got " +
                         type_name(active_obj));
  auto act = py::reinterpret_borrow<py::array>(active_obj);
  if (act.dtype().kind() != 'b')
    throw py::type_error(std::string(fn) + ": active must have dtype bool, got " +
                         py::str(act.dtype()).cast<std::string>());
  check_shape(fn, act, "active", {ya.shape(1)});
  if (!(act.flags() & py::array::c_style) || !act.writeable())
    throw py::value_error(std::string(fn) + ": active must be C-contiguous and writeable");
  auto* flags = static_cast<std::uint8_t*>(act.mutable_data());
  dispatch_float(ya, [&](auto tag) {
    using T = decltype(tag);
    auto y = contiguous<T>(ya);
    py::gil_scoped_release release;
    mark_active<T>(y.shape(0), y.shape(1), y.data(), flags);
  });
}

double weight_penalty_py(py::handle w_obj, py::handle l1_obj, py::handle l2_obj, py::handle g_obj) {
  const char* fn = "weight_penalty";
  py::array wa = float_array(w_obj, fn, "w");
  const double l1 = finite_number(l1_obj, fn, "l1"), l2 = finite_number(l2_obj, fn, "l2");
  if (l1 < 0 || l2 < 0) throw py::value_error(std::string(fn) + ": l1 and l2 must be ≥ 0");
  // (a default-constructed py::array is an empty array, not null: keep "no grad" as a flag)
  const bool has_grad = !g_obj.is_none();
  py::array ga;
  if (has_grad) {
    ga = inplace(g_obj, fn, "grad", wa, "w", shape_of(wa));
    if (may_overlap(wa, ga)) throw py::value_error(std::string(fn) + ": grad must not overlap w");
  }
  return dispatch_float(wa, [&](auto tag) -> double {
    using T = decltype(tag);
    auto w = contiguous<T>(wa);
    T* g = has_grad ? static_cast<T*>(ga.mutable_data()) : nullptr;
    py::gil_scoped_release release;
    return weight_penalty<T>(w.size(), w.data(), l1, l2, g);
  });
}

}  // namespace

void bind_diagnostics(py::module_& m) {
  m.def("sum_squares", &sum_squares_py, py::arg("x"));
  m.def("count_nonfinite", &count_nonfinite_py, py::arg("x"));
  m.def("sum_squared_diff", &sum_squared_diff_py, py::arg("a"), py::arg("b"));
  m.def("mark_active", &mark_active_py, py::arg("y"), py::arg("active"));
  m.def("weight_penalty", &weight_penalty_py, py::arg("w"), py::arg("l1"), py::arg("l2"),
        py::arg("grad") = py::none());
}

}  // namespace bind
}  // namespace blockprop
