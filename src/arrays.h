// Conversion and validation of NumPy arrays at the Python boundary. Every check raises a Python
// exception (TypeError for dtypes, ValueError for shapes and values) that names the argument.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "blockprop/types.h"

namespace blockprop {
namespace bind {

namespace py = pybind11;

// "(3, 4)"-style text of an array's shape.
std::string shape_str(const py::array& a);

// obj as a base-class ndarray (exact ndarrays as they are, subclasses as base-class views, other
// objects converted); MemoryError when a conversion cannot be allocated, else TypeError
// "fn: name must be <what>".
py::array as_ndarray(const py::handle& obj, const char* fn, const char* name, const char* what);

// A C-contiguous, aligned copy of a made by NumPy itself, checked to have a's dtype and shape.
py::array fresh_copy(const py::array& a);

// obj as a NumPy array of float32 or float64 (lists are converted), else TypeError naming `name`.
py::array float_array(const py::handle& obj, const char* fn, const char* name);

// The precision of a kernel's products: bfloat16 when bf16 is set, which takes float32 arrays
// only (TypeError naming fn for a float64 a); the name itself is checked in Python
// (blockprop._precision), which passes this flag.
Precision precision_for(const char* fn, const py::array& a, bool bf16);

// TypeError unless b has a's dtype.
void check_same_dtype(const char* fn, const py::array& a, const char* name_a, const py::array& b,
                      const char* name_b);

// ValueError unless a.ndim == ndim.
void check_ndim(const char* fn, const py::array& a, const char* name, int ndim);

// ValueError unless a.shape == shape.
void check_shape(const char* fn, const py::array& a, const char* name,
                 const std::vector<py::ssize_t>& shape);

// Whether a's data pointer and strides suit its item type (NumPy allows misaligned views, e.g. at
// an odd byte offset of a buffer; reading T through them is undefined behaviour).
inline bool aligned(const py::array& a) {
  return (a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0;
}

inline bool PyArray_CheckExact_(const py::handle& obj) {
  return Py_TYPE(obj.ptr()) == py::detail::npy_api::get().PyArray_Type_;
}

// a as an aligned C-contiguous array of T (a copy only if a is not already one). A failed copy
// raises (e.g. MemoryError for a huge zero-stride view); array_t::ensure would return a null array.
template <typename T>
py::array_t<T, py::array::c_style> contiguous(const py::array& a) {
  py::array_t<T, py::array::c_style> c(py::reinterpret_borrow<py::object>(a));
  if (!aligned(c)) c = py::array_t<T, py::array::c_style>(fresh_copy(c));
  return c;
}

// Element strides of a 2-D array, or false when a stride is not a whole number of elements.
bool element_strides(const py::array& a, index_t* rs, index_t* cs);

// Whether the memory spans of two arrays overlap (then one must be copied before writing).
bool may_overlap(const py::array& a, const py::array& b);

// Integer class labels as contiguous int64, each checked to lie in [0, n_classes).
py::array_t<std::int64_t, py::array::c_style> class_labels(const py::handle& obj, const char* fn,
                                                           const char* name, index_t n,
                                                           index_t n_classes);

// Activation from its name ("linear", "relu", "sigmoid", "tanh"; None means linear).
Activation parse_activation(const py::handle& obj, const char* fn);

// Calls f(float{}) or f(double{}) by the array's dtype (already checked to be one of them).
template <typename F>
auto dispatch_float(const py::array& a, F&& f) {
  if (a.dtype().equal(py::dtype::of<float>())) return f(float{});
  return f(double{});
}

}  // namespace bind
}  // namespace blockprop
