#include <Python.h>

#include <cmath>
#include <string>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "blockprop/optimizers.h"

namespace blockprop {
namespace bind {

namespace {

std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

std::string repr(double x) { return py::repr(py::float_(x)).cast<std::string>(); }

// ValueError "fn: name must be <what>, got <x>" unless ok.
void require(bool ok, const char* fn, const char* name, const char* what, double x) {
  if (!ok) throw py::value_error(std::string(fn) + ": " + name + " must be " + what + ", got " + repr(x));
}

// A Python number as double, else TypeError naming it (strings are not parsed as numbers).
double to_double(py::handle obj, const char* fn, const char* name) {
  const double x = PyFloat_AsDouble(obj.ptr());
  if (x == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::type_error(std::string(fn) + ": " + name + " must be a number, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  return x;
}

// The array `name`, updated in place: a writeable C-contiguous float array; when `like` is
// given, of its dtype and shape.
py::array inplace_array(py::handle obj, const char* fn, const char* name, const py::array* like) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(std::string(fn) + ": " + name + " must be a NumPy array (it is updated in place), got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  py::array a = float_array(obj, fn, name);
  if (like) {
    check_same_dtype(fn, *like, "param", a, name);
    check_shape(fn, a, name, shape_of(*like));
  }
  if (!(a.flags() & py::array::c_style)) {
    std::string strides;
    for (py::ssize_t i = 0; i < a.ndim(); ++i) strides += (i ? ", " : "") + std::to_string(a.strides(i));
    throw py::value_error(std::string(fn) + ": " + name +
                          " must be C-contiguous (it is updated in place), got shape " + shape_str(a) +
                          " with byte strides (" + strides + ")");
  }
  if (!a.writeable()) throw py::value_error(std::string(fn) + ": " + name + " must be writeable");
  if (!aligned(a))
    throw py::value_error(std::string(fn) + ": " + name + " must be aligned to its item size (it is updated in place)");
  return a;
}

// ValueError if two arrays updated in place share memory (one's update would corrupt the other).
void check_disjoint(const char* fn, const py::array& a, const char* name_a, const py::array& b,
                    const char* name_b) {
  if (may_overlap(a, b))
    throw py::value_error(std::string(fn) + ": " + name_a + " and " + name_b + " must not share memory");
}

// grad as a contiguous T array that no in-place array overlaps (copied if needed), so the update
// reads the gradient as it was on entry even when grad is a view of param, m or v.
template <typename T>
py::array_t<T, py::array::c_style> gradient(const py::array& ga,
                                            const std::vector<const py::array*>& written) {
  auto g = contiguous<T>(ga);
  for (const py::array* w : written)
    if (may_overlap(g, *w)) return contiguous<T>(fresh_copy(g));
  return g;
}

// g = grad + wd·p;  v = μ·v + g;  p −= lr·(nesterov ? g + μ·v : v)   (in place)
void sgd_step_py(py::handle param_obj, py::handle grad_obj, py::handle velocity_obj,
                 py::handle lr_obj, py::handle momentum_obj, bool nesterov, py::handle wd_obj) {
  const char* fn = "sgd_step";
  SgdParams hp;
  hp.lr = to_double(lr_obj, fn, "lr");
  hp.momentum = to_double(momentum_obj, fn, "momentum");
  hp.weight_decay = to_double(wd_obj, fn, "weight_decay");
  hp.nesterov = nesterov;
  require(std::isfinite(hp.lr) && hp.lr >= 0, fn, "lr", "finite and >= 0", hp.lr);
  require(hp.momentum >= 0 && hp.momentum < 1, fn, "momentum", "in [0, 1)", hp.momentum);
  require(std::isfinite(hp.weight_decay) && hp.weight_decay >= 0, fn, "weight_decay",
          "finite and >= 0", hp.weight_decay);
  if (nesterov && hp.momentum == 0)
    throw py::value_error(std::string(fn) + ": nesterov requires momentum > 0");

  py::array pa = inplace_array(param_obj, fn, "param", nullptr);
  py::array ga = float_array(grad_obj, fn, "grad");
  check_same_dtype(fn, pa, "param", ga, "grad");
  check_shape(fn, ga, "grad", shape_of(pa));
  py::array va;  // a default py::array is an empty array, not null: has_velocity says if given
  const bool has_velocity = !velocity_obj.is_none();
  if (!has_velocity) {
    if (hp.momentum != 0)
      throw py::value_error(std::string(fn) + ": velocity is required when momentum != 0 (got None)");
  } else {
    va = inplace_array(velocity_obj, fn, "velocity", &pa);
    check_disjoint(fn, pa, "param", va, "velocity");
  }
  dispatch_float(pa, [&](auto tag) {
    using T = decltype(tag);
    std::vector<const py::array*> written = {&pa};
    if (has_velocity) written.push_back(&va);
    auto g = gradient<T>(ga, written);
    T* p = static_cast<T*>(pa.mutable_data());
    T* v = has_velocity ? static_cast<T*>(va.mutable_data()) : nullptr;
    const index_t n = pa.size();
    py::gil_scoped_release release;
    sgd_step<T>(n, p, g.data(), v, hp);
  });
}

// m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= lr·m̂/(sqrt(v̂) + eps)   (in place)
void adam_step_py(py::handle param_obj, py::handle grad_obj, py::handle m_obj, py::handle v_obj,
                  py::handle step_obj, py::handle lr_obj, py::handle beta1_obj,
                  py::handle beta2_obj, py::handle eps_obj, py::handle wd_obj,
                  bool decoupled_weight_decay) {
  const char* fn = "adam_step";
  AdamParams hp;
  hp.lr = to_double(lr_obj, fn, "lr");
  hp.beta1 = to_double(beta1_obj, fn, "beta1");
  hp.beta2 = to_double(beta2_obj, fn, "beta2");
  hp.eps = to_double(eps_obj, fn, "eps");
  hp.weight_decay = to_double(wd_obj, fn, "weight_decay");
  hp.decoupled_weight_decay = decoupled_weight_decay;
  // step must be a true integer (int or NumPy integer), not a float that happens to be whole.
  if (PyBool_Check(step_obj.ptr()) || !PyIndex_Check(step_obj.ptr())) {
    throw py::type_error(std::string(fn) + ": step must be an integer, got " +
                         std::string(py::str(py::type::of(step_obj).attr("__name__"))));
  }
  py::int_ step_int = py::reinterpret_steal<py::int_>(PyNumber_Index(step_obj.ptr()));
  if (!step_int) {  // e.g. an array: NumPy's own message would not say which argument
    PyErr_Clear();
    throw py::type_error(std::string(fn) + ": step must be an integer, got " +
                         std::string(py::str(py::type::of(step_obj).attr("__name__"))));
  }
  int overflow = 0;
  const long long step = PyLong_AsLongLongAndOverflow(step_int.ptr(), &overflow);
  if (overflow < 0 || (overflow == 0 && step < 1)) {
    throw py::value_error(std::string(fn) + ": step must be >= 1 (it counts updates from 1), got " +
                          std::string(py::str(step_int)));
  }
  // Past 2^63 updates the bias corrections are exactly 1 anyway.
  hp.step = overflow > 0 ? INT64_MAX : step;
  require(std::isfinite(hp.lr) && hp.lr >= 0, fn, "lr", "finite and >= 0", hp.lr);
  require(hp.beta1 >= 0 && hp.beta1 < 1, fn, "beta1", "in [0, 1)", hp.beta1);
  require(hp.beta2 >= 0 && hp.beta2 < 1, fn, "beta2", "in [0, 1)", hp.beta2);
  require(std::isfinite(hp.eps) && hp.eps > 0, fn, "eps", "finite and > 0", hp.eps);
  require(std::isfinite(hp.weight_decay) && hp.weight_decay >= 0, fn, "weight_decay",
          "finite and >= 0", hp.weight_decay);

  py::array pa = inplace_array(param_obj, fn, "param", nullptr);
  py::array ga = float_array(grad_obj, fn, "grad");
  check_same_dtype(fn, pa, "param", ga, "grad");
  check_shape(fn, ga, "grad", shape_of(pa));
  py::array ma = inplace_array(m_obj, fn, "m", &pa);
  py::array va = inplace_array(v_obj, fn, "v", &pa);
  check_disjoint(fn, pa, "param", ma, "m");
  check_disjoint(fn, pa, "param", va, "v");
  check_disjoint(fn, ma, "m", va, "v");
  dispatch_float(pa, [&](auto tag) {
    using T = decltype(tag);
    auto g = gradient<T>(ga, {&pa, &ma, &va});
    T* p = static_cast<T*>(pa.mutable_data());
    T* m = static_cast<T*>(ma.mutable_data());
    T* v = static_cast<T*>(va.mutable_data());
    const index_t n = pa.size();
    py::gil_scoped_release release;
    adam_step<T>(n, p, g.data(), m, v, hp);
  });
}

}  // namespace

void bind_optimizers(py::module_& m) {
  m.def("sgd_step", &sgd_step_py, py::arg("param"), py::arg("grad"), py::arg("velocity"),
        py::arg("lr"), py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"));
  m.def("adam_step", &adam_step_py, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"),
        py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("decoupled_weight_decay"));
}

}  // namespace bind
}  // namespace blockprop
