#include "arrays.h"

#include <algorithm>
#include <sstream>

namespace blockprop {
namespace bind {

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  if (a.ndim() == 1) s << ",";
  s << ")";
  return s.str();
}

py::array as_ndarray(const py::handle& obj, const char* fn, const char* name, const char* what) {
  // Exact ndarrays are used as they are. Anything else, subclasses included, goes through
  // PyArray_FromAny with ENSUREARRAY: a subclass becomes a base-class view of the same memory, so
  // no method it overrides (copy, astype, ...) runs later. A failed allocation raises MemoryError
  // (array::ensure would return a null array and drop the error).
  if (PyArray_CheckExact_(obj)) return py::reinterpret_borrow<py::array>(obj);
  auto& api = py::detail::npy_api::get();
  PyObject* r = api.PyArray_FromAny_(obj.ptr(), nullptr, 0, 0,
                                     py::detail::npy_api::NPY_ARRAY_ENSUREARRAY_, nullptr);
  if (!r) {
    if (PyErr_ExceptionMatches(PyExc_MemoryError)) throw py::error_already_set();
    PyErr_Clear();
    throw py::type_error(std::string(fn) + ": " + name + " must be " + what);
  }
  return py::reinterpret_steal<py::array>(r);
}

py::array fresh_copy(const py::array& a) {
  // NumPy's own copy (never a subclass's copy()), checked: the kernels rely on dtype and shape.
  PyObject* r = py::detail::npy_api::get().PyArray_NewCopy_(a.ptr(), 0 /* NPY_CORDER */);
  if (!r) throw py::error_already_set();
  py::array c = py::reinterpret_steal<py::array>(r);
  bool same = c.dtype().equal(a.dtype()) && c.ndim() == a.ndim() && aligned(c) &&
              (c.flags() & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_);
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = c.shape(i) == a.shape(i);
  if (!same) throw std::logic_error("fresh_copy: NumPy returned a copy of another dtype or shape");
  return c;
}

py::array float_array(const py::handle& obj, const char* fn, const char* name) {
  if (obj.is_none()) throw py::type_error(std::string(fn) + ": " + name + " must be an array, not None");
  py::array a = as_ndarray(obj, fn, name, "an array of float32 or float64");
  const auto dt = a.dtype();
  if (!dt.equal(py::dtype::of<float>()) && !dt.equal(py::dtype::of<double>())) {
    throw py::type_error(std::string(fn) + ": " + name + " must have dtype float32 or float64, got " +
                         py::str(dt).cast<std::string>());
  }
  return a;
}

Precision precision_for(const char* fn, const py::array& a, bool bf16) {
  if (!bf16) return Precision::float32;
  if (!a.dtype().equal(py::dtype::of<float>()))
    throw py::type_error(std::string(fn) + ": precision='bfloat16' takes float32 arrays (bfloat16 "
                         "products, float32 accumulation), got " + py::str(a.dtype()).cast<std::string>());
  return Precision::bfloat16;
}

void check_same_dtype(const char* fn, const py::array& a, const char* name_a, const py::array& b,
                      const char* name_b) {
  if (!a.dtype().equal(b.dtype())) {
    throw py::type_error(std::string(fn) + ": " + name_a + " and " + name_b +
                         " must have the same dtype, got " + py::str(a.dtype()).cast<std::string>() +
                         " and " + py::str(b.dtype()).cast<std::string>());
  }
}

void check_ndim(const char* fn, const py::array& a, const char* name, int ndim) {
  if (a.ndim() != ndim) {
    throw py::value_error(std::string(fn) + ": " + name + " must be " + std::to_string(ndim) +
                          "-D, got shape " + shape_str(a));
  }
}

void check_shape(const char* fn, const py::array& a, const char* name,
                 const std::vector<py::ssize_t>& shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) {
    std::ostringstream s;
    s << "(";
    for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    if (shape.size() == 1) s << ",";
    s << ")";
    throw py::value_error(std::string(fn) + ": " + name + " must have shape " + s.str() + ", got " +
                          shape_str(a));
  }
}

bool element_strides(const py::array& a, index_t* rs, index_t* cs) {
  const index_t item = a.itemsize();
  const index_t s0 = a.strides(0), s1 = a.strides(1);
  if (s0 % item != 0 || s1 % item != 0) return false;
  *rs = s0 / item;
  *cs = s1 / item;
  return true;
}

namespace {
// [lo, hi) byte span covered by an array's elements.
void byte_span(const py::array& a, std::uintptr_t* lo, std::uintptr_t* hi) {
  std::intptr_t start = reinterpret_cast<std::intptr_t>(a.data());
  std::intptr_t low = start, high = start + a.itemsize();
  if (a.size() == 0) {
    *lo = *hi = static_cast<std::uintptr_t>(start);
    return;
  }
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    const std::intptr_t ext = static_cast<std::intptr_t>(a.shape(i) - 1) * a.strides(i);
    if (ext < 0) low += ext; else high += ext;
  }
  *lo = static_cast<std::uintptr_t>(low);
  *hi = static_cast<std::uintptr_t>(high);
}
}  // namespace

bool may_overlap(const py::array& a, const py::array& b) {
  std::uintptr_t alo, ahi, blo, bhi;
  byte_span(a, &alo, &ahi);
  byte_span(b, &blo, &bhi);
  return alo < bhi && blo < ahi;
}

py::array_t<std::int64_t, py::array::c_style> class_labels(const py::handle& obj, const char* fn,
                                                           const char* name, index_t n,
                                                           index_t n_classes) {
  py::array a = as_ndarray(obj, fn, name, "an array of integer class labels");
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u') {
    throw py::type_error(std::string(fn) + ": " + name + " must hold integer class labels, got dtype " +
                         py::str(a.dtype()).cast<std::string>());
  }
  if (a.ndim() != 1 || a.shape(0) != n) {
    throw py::value_error(std::string(fn) + ": " + name + " must have shape (" + std::to_string(n) +
                          ",), got " + shape_str(a));
  }
  // The throwing constructor: a copy that cannot be allocated raises MemoryError (ensure returned
  // a null array here, read through: SIGSEGV for a huge zero-stride view).
  py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> labels(a);
  const std::int64_t* p = labels.data();
  for (index_t i = 0; i < n; ++i) {
    if (p[i] < 0 || p[i] >= n_classes) {
      throw py::value_error(std::string(fn) + ": " + name + "[" + std::to_string(i) + "] = " +
                            std::to_string(p[i]) + " is out of range for " +
                            std::to_string(n_classes) + " classes (labels must be in [0, " +
                            std::to_string(n_classes) + "))");
    }
  }
  return labels;
}

Activation parse_activation(const py::handle& obj, const char* fn) {
  if (obj.is_none()) return Activation::linear;
  if (!py::isinstance<py::str>(obj))
    throw py::type_error(std::string(fn) + ": activation must be a string");
  const std::string s = obj.cast<std::string>();
  if (s == "linear" || s == "identity") return Activation::linear;
  if (s == "relu") return Activation::relu;
  if (s == "sigmoid") return Activation::sigmoid;
  if (s == "tanh") return Activation::tanh;
  if (s == "leaky_relu") return Activation::leaky_relu;
  if (s == "elu") return Activation::elu;
  if (s == "gelu") return Activation::gelu;
  if (s == "softplus") return Activation::softplus;
  throw py::value_error(std::string(fn) + ": unknown activation '" + s +
                        "' (expected 'linear', 'relu', 'sigmoid', 'tanh', 'leaky_relu', 'elu', "
                        "'gelu' or 'softplus')");
}

}  // namespace bind
}  // namespace blockprop
