#include <cmath>
#include <string>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "blockprop/losses.h"

namespace blockprop {
namespace bind {

namespace {

std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// Shared by the element-wise losses: (L, ∂L/∂a) for two same-shape, same-dtype arrays of any ndim.
template <typename Loss>
py::tuple elementwise_loss(const char* fn, py::handle a_obj, const char* a_name, py::handle b_obj,
                           const char* b_name, Loss loss) {
  py::array aa = float_array(a_obj, fn, a_name);
  py::array ba = float_array(b_obj, fn, b_name);
  check_same_dtype(fn, aa, a_name, ba, b_name);
  check_shape(fn, ba, b_name, shape_of(aa));
  return dispatch_float(aa, [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    auto a = contiguous<T>(aa);
    auto b = contiguous<T>(ba);
    py::array_t<T> grad(shape_of(a));
    double value;
    {
      py::gil_scoped_release release;
      value = loss(index_t(a.size()), a.data(), b.data(), grad.mutable_data());
    }
    return py::make_tuple(value, grad);
  });
}

// Logits (batch, columns) as a float array; the error names the layout fn expects.
py::array logits_matrix(py::handle obj, const char* fn, const char* columns) {
  py::array z = float_array(obj, fn, "logits");
  if (z.ndim() != 2) {
    throw py::value_error(std::string(fn) + ": logits must be 2-D (batch, " + columns +
                          "), got shape " + shape_str(z));
  }
  return z;
}

// Class labels index the logits' columns: there must be at least one.
void check_has_class(const char* fn, const py::array& z) {
  if (z.shape(1) < 1) {
    throw py::value_error(std::string(fn) + ": logits must have at least 1 class, got shape " +
                          shape_str(z));
  }
}

// L = mean((pred − target)²);  grad = 2·(pred − target)/n
py::tuple mse_loss_py(py::handle pred, py::handle target) {
  return elementwise_loss("mse_loss", pred, "pred", target, "target",
                          [](index_t n, auto* p, auto* t, auto* g) { return mse_loss(n, p, t, g); });
}

// L = mean(max(z,0) − z·t + log1p(e^−|z|));  grad = (sigmoid(z) − t)/n
py::tuple binary_cross_entropy_py(py::handle logits, py::handle targets) {
  return elementwise_loss(
      "binary_cross_entropy", logits, "logits", targets, "targets",
      [](index_t n, auto* z, auto* t, auto* g) { return binary_cross_entropy(n, z, t, g); });
}

// L = mean_r(logsumexp(z_r) − z_r[label_r]);  grad = (softmax(z) − onehot(labels))/batch
py::tuple softmax_cross_entropy_py(py::handle logits_obj, py::handle labels_obj) {
  const char* fn = "softmax_cross_entropy";
  py::array za = logits_matrix(logits_obj, fn, "classes");
  const index_t rows = za.shape(0), cols = za.shape(1);
  check_has_class(fn, za);
  auto labels = class_labels(labels_obj, fn, "labels", rows, cols);
  return dispatch_float(za, [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    auto z = contiguous<T>(za);
    py::array_t<T> grad(shape_of(z));
    double value;
    {
      py::gil_scoped_release release;
      value = softmax_cross_entropy<T>(rows, cols, z.data(), labels.data(), grad.mutable_data());
    }
    return py::make_tuple(value, grad);
  });
}

// One weight per row of a batch of `rows`, float64, finite and >= 0 (as_sample_weight checks a
// whole data set the same way before training). All 0 is allowed: a batch of rows left out.
py::array_t<double, py::array::c_style> row_weights(py::handle obj, const char* fn, index_t rows) {
  py::array_t<double, py::array::c_style | py::array::forcecast> w(
      as_ndarray(obj, fn, "weights", "a 1-D array of sample weights"));
  check_shape(fn, w, "weights", {rows});
  for (index_t r = 0; r < rows; ++r) {
    const double v = w.data()[r];
    if (!(std::isfinite(v) && v >= 0))
      throw py::value_error(std::string(fn) + ": weights must be finite and >= 0, got " +
                            py::repr(py::float_(v)).cast<std::string>() + " at row " + std::to_string(r));
  }
  return w;
}

// L = Σ_r w_r·ℓ_r / Σ_r w_r over the rows of pred (batch, outputs), ℓ_r the loss `kind` of row r
// ("mse", "cross_entropy": integer labels (batch,), "bce"); grad_r = (w_r/Σw)·∂ℓ_r/∂pred_r
py::tuple weighted_loss_py(const std::string& kind, py::handle pred_obj, py::handle target_obj,
                           py::handle weights_obj) {
  const char* fn = "weighted_loss";
  LossKind k;
  if (kind == "mse") k = LossKind::mse;
  else if (kind == "cross_entropy") k = LossKind::cross_entropy;
  else if (kind == "bce") k = LossKind::bce;
  else throw py::value_error(std::string(fn) + ": kind must be 'mse', 'cross_entropy' or 'bce', got '" + kind + "'");
  py::array za = logits_matrix(pred_obj, fn, "outputs");
  const index_t rows = za.shape(0), cols = za.shape(1);
  py::array_t<std::int64_t, py::array::c_style> labels;
  py::array ta;
  if (k == LossKind::cross_entropy) {
    check_has_class(fn, za);
    labels = class_labels(target_obj, fn, "target", rows, cols);
  } else {
    ta = float_array(target_obj, fn, "target");
    check_same_dtype(fn, za, "pred", ta, "target");
    check_shape(fn, ta, "target", shape_of(za));
  }
  auto w = row_weights(weights_obj, fn, rows);
  return dispatch_float(za, [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    auto z = contiguous<T>(za);
    py::array_t<T, py::array::c_style> t;
    if (k != LossKind::cross_entropy) t = contiguous<T>(ta);
    py::array_t<T> grad(shape_of(z));
    double value;
    {
      py::gil_scoped_release release;
      value = weighted_loss<T>(k, rows, cols, z.data(), labels ? labels.data() : nullptr,
                               t ? t.data() : nullptr, w.data(), grad.mutable_data());
    }
    return py::make_tuple(value, grad);
  });
}

// Rows classified right (count_correct in losses.h): integer labels (rows,): argmax == label;
// float targets of the logits' shape: every (logit > 0) == (target > 0.5). With weights (rows,):
// Σ weights of those rows (weighted_correct), a float.
py::object count_correct_py(py::handle logits_obj, py::handle targets_obj, py::handle weights_obj) {
  const char* fn = "count_correct";
  py::array za = logits_matrix(logits_obj, fn, "outputs");
  const index_t rows = za.shape(0), cols = za.shape(1);
  py::array ta = as_ndarray(targets_obj, fn, "targets", "an array of labels or targets");
  const bool labels = ta.dtype().kind() == 'i' || ta.dtype().kind() == 'u';
  if (labels) check_has_class(fn, za);
  py::array_t<std::int64_t, py::array::c_style> lab;
  if (labels) lab = class_labels(ta, fn, "targets", rows, cols);
  else {
    ta = float_array(targets_obj, fn, "targets");
    check_same_dtype(fn, za, "logits", ta, "targets");
    check_shape(fn, ta, "targets", shape_of(za));
  }
  const bool weighted = !weights_obj.is_none();
  py::array_t<double, py::array::c_style> w;
  if (weighted) w = row_weights(weights_obj, fn, rows);
  return dispatch_float(za, [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto z = contiguous<T>(za);
    py::array_t<T, py::array::c_style> t;
    if (!labels) t = contiguous<T>(ta);
    const std::int64_t* lp = labels ? lab.data() : nullptr;
    const T* tp = labels ? nullptr : t.data();
    if (weighted) {
      double right;
      {
        py::gil_scoped_release release;
        right = weighted_correct<T>(rows, cols, z.data(), lp, tp, w.data());
      }
      return py::float_(right);
    }
    index_t right;
    {
      py::gil_scoped_release release;
      right = count_correct<T>(rows, cols, z.data(), lp, tp);
    }
    return py::int_(right);
  });
}

}  // namespace

void bind_losses(py::module_& m) {
  m.def("mse_loss", &mse_loss_py, py::arg("pred"), py::arg("target"));
  m.def("weighted_loss", &weighted_loss_py, py::arg("kind"), py::arg("pred"), py::arg("target"),
        py::arg("weights"));
  m.def("softmax_cross_entropy", &softmax_cross_entropy_py, py::arg("logits"), py::arg("labels"));
  m.def("binary_cross_entropy", &binary_cross_entropy_py, py::arg("logits"), py::arg("targets"));
  m.def("count_correct", &count_correct_py, py::arg("logits"), py::arg("targets"),
        py::arg("weights") = py::none());
}

}  // namespace bind
}  // namespace blockprop
