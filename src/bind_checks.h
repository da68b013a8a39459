// Small argument checks shared by the dropout, normalization and diagnostics bindings.
#pragma once
#include <Python.h>

#include <cmath>
#include <string>
#include <vector>

#include "arrays.h"

namespace blockprop {
namespace bind {
namespace checks {

inline std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

inline std::string type_name(py::handle obj) {
  return std::string(py::str(py::type::of(obj).attr("__name__")));
}

// A real number as Python or NumPy spells it: int, float, np.floating, np.integer (np.float32(0.5)
// wherever 0.5 is taken); not bool / np.bool_, complex, str or an array.
inline bool real_number(py::handle obj) {
  if (PyBool_Check(obj.ptr())) return false;
  if (PyFloat_Check(obj.ptr()) || PyLong_Check(obj.ptr())) return true;
  py::module_ np = py::module_::import("numpy");
  return py::isinstance(obj, np.attr("floating")) || py::isinstance(obj, np.attr("integer"));
}

// A Python number (not bool, not str) as a finite double, else TypeError / ValueError naming it.
inline double finite_number(py::handle obj, const char* fn, const char* name) {
  if (PyBool_Check(obj.ptr()) || !(PyFloat_Check(obj.ptr()) || PyLong_Check(obj.ptr()) ||
                                   PyNumber_Check(obj.ptr())) || py::isinstance<py::str>(obj))
    throw py::type_error(std::string(fn) + ": " + name + " must be a number, got " + type_name(obj));
  const double x = PyFloat_AsDouble(obj.ptr());
  if (x == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::type_error(std::string(fn) + ": " + name + " must be a number, got " + type_name(obj));
  }
  if (!std::isfinite(x))
    throw py::value_error(std::string(fn) + ": " + name + " must be finite, got " +
                          py::repr(py::float_(x)).cast<std::string>());
  return x;
}

// A Python integer in [0, 2⁶⁴) (NumPy integers too), else TypeError / ValueError naming it.
inline std::uint64_t uint64_arg(py::handle obj, const char* fn, const char* name) {
  if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr()))
    throw py::type_error(std::string(fn) + ": " + name + " must be an integer, got " + type_name(obj));
  py::int_ v = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
  if (!v) throw py::error_already_set();
  const unsigned long long u = PyLong_AsUnsignedLongLong(v.ptr());
  if (u == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error(std::string(fn) + ": " + name + " must lie in [0, 2**64), got " +
                          py::repr(v).cast<std::string>());
  }
  return static_cast<std::uint64_t>(u);
}

// A float array argument that must be 2-D.
inline py::array matrix(py::handle obj, const char* fn, const char* name) {
  py::array a = float_array(obj, fn, name);
  check_ndim(fn, a, name, 2);
  return a;
}

// A float array of `like`'s dtype and the given shape.
inline py::array matching(py::handle obj, const char* fn, const char* name, const py::array& like,
                          const char* like_name, const std::vector<py::ssize_t>& shape) {
  py::array a = float_array(obj, fn, name);
  check_same_dtype(fn, like, like_name, a, name);
  check_shape(fn, a, name, shape);
  return a;
}

// An array updated in place: writeable, C-contiguous, of `like`'s dtype and the given shape.
inline py::array inplace(py::handle obj, const char* fn, const char* name, const py::array& like,
                         const char* like_name, const std::vector<py::ssize_t>& shape) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(fn) + ": " + name +
                         " must be a NumPy array (it is updated in place), got " + type_name(obj));
  py::array a = matching(obj, fn, name, like, like_name, shape);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(fn) + ": " + name + " must be C-contiguous (it is updated in place)");
  if (!a.writeable()) throw py::value_error(std::string(fn) + ": " + name + " must be writeable");
  return a;
}

}  // namespace checks
}  // namespace bind
}  // namespace blockprop
