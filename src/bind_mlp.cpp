#include <cmath>
#include <string>
#include <type_traits>

#include "arrays.h"
#include "bindings.h"
#include "blockprop/mlp.h"

namespace blockprop {
namespace bind {

namespace {

const char* kFn = "mlp_train_batches";

// An array the trainer updates in place: C-contiguous, writeable, of the model's dtype and shape.
template <typename T>
T* inplace(const py::handle& obj, const char* name, std::vector<py::ssize_t> shape) {
  if (!py::isinstance<py::array_t<T>>(obj) ||
      !py::reinterpret_borrow<py::array>(obj).dtype().equal(py::dtype::of<T>()))
    throw py::type_error(std::string(kFn) + ": " + name + " must be an array of the model's dtype");
  auto a = py::reinterpret_borrow<py::array>(obj);
  check_shape(kFn, a, name, shape);
  if (!(a.flags() & py::array::c_style) || !a.writeable() || !aligned(a))
    throw py::value_error(std::string(kFn) + ": " + name + " must be C-contiguous, aligned and writeable");
  return static_cast<T*>(a.mutable_data());
}

template <typename T>
T* optional_inplace(const py::handle& obj, const char* name, std::vector<py::ssize_t> shape) {
  return obj.is_none() ? nullptr : inplace<T>(obj, name, std::move(shape));
}

template <typename T>
py::tuple train(py::list layer_specs, const std::string& loss, const std::string& optimizer,
                py::dict hp, py::array x_a, py::handle y_obj, py::handle order_obj, index_t batch_size,
                py::handle lrs_obj) {
  MlpProblem<T> p;
  if (layer_specs.empty()) throw py::value_error("mlp_train_batches: no layers");
  // Each layer: (W, b or None, activation, state_w0, state_w1, state_b0, state_b1).
  for (py::handle spec : layer_specs) {
    py::tuple t = py::reinterpret_borrow<py::tuple>(spec);
    if (t.size() != 7) throw py::value_error("mlp_train_batches: a layer is (W, b, activation, sw0, sw1, sb0, sb1)");
    auto w = py::reinterpret_borrow<py::array>(t[0]);
    check_ndim(kFn, w, "W", 2);
    MlpLayer<T> l;
    l.out = w.shape(0);
    l.in = w.shape(1);
    l.w = inplace<T>(t[0], "W", {l.out, l.in});
    l.b = optional_inplace<T>(t[1], "b", {l.out});
    l.act = parse_activation(t[2], kFn);
    for (int s = 0; s < 2; ++s) {
      l.state_w[s] = optional_inplace<T>(t[3 + s], "optimizer state of W", {l.out, l.in});
      l.state_b[s] = optional_inplace<T>(t[5 + s], "optimizer state of b", {l.out});
    }
    if (!p.layers.empty() && p.layers.back().out != l.in)
      throw py::value_error("mlp_train_batches: layer widths do not chain");
    p.layers.push_back(l);
  }
  const index_t n_in = p.layers.front().in, n_out = p.layers.back().out;
  check_shape(kFn, x_a, "x", {x_a.shape(0), n_in});
  // float64 x for a float32 model is read as it is and rounded batch by batch (no copy of x).
  const bool wide = std::is_same<T, float>::value && x_a.dtype().is(py::dtype::of<double>());
  py::array_t<T, py::array::c_style> x;
  py::array_t<double, py::array::c_style> x_wide;
  if (wide) {
    x_wide = contiguous<double>(x_a);
    p.x_wide = x_wide.data();
  } else {
    x = contiguous<T>(x_a);
    p.x = x.data();
  }
  const index_t n = x_a.shape(0);

  py::array_t<std::int64_t, py::array::c_style> labels;
  py::array_t<T, py::array::c_style> targets;
  if (loss == "cross_entropy") {
    p.loss = LossKind::cross_entropy;
    labels = class_labels(y_obj, kFn, "y", n, n_out);
    p.labels = labels.data();
  } else if (loss == "mse" || loss == "bce") {
    p.loss = loss == "mse" ? LossKind::mse : LossKind::bce;
    py::array y = float_array(y_obj, kFn, "y");
    // Targets come in the model's dtype (x may be wider, see above).
    const auto w0 = py::reinterpret_borrow<py::array>(py::reinterpret_borrow<py::tuple>(layer_specs[0])[0]);
    check_same_dtype(kFn, w0, "W", y, "y");
    check_shape(kFn, y, "y", {n, n_out});
    targets = contiguous<T>(y);
    p.targets = targets.data();
  } else {
    throw py::value_error("mlp_train_batches: unknown loss '" + loss + "'");
  }

  for (const auto& l : p.layers) {
    const bool has_state = l.state_w[0] != nullptr;
    if (optimizer == "adam" && (!l.state_w[0] || !l.state_w[1] || (l.b && (!l.state_b[0] || !l.state_b[1]))))
      throw py::value_error("mlp_train_batches: Adam needs m and v for every parameter");
    if (optimizer == "sgd" && hp["momentum"].cast<double>() != 0 && (!has_state || (l.b && !l.state_b[0])))
      throw py::value_error("mlp_train_batches: SGD with momentum needs a velocity for every parameter");
  }
  if (optimizer == "sgd") {
    p.optimizer = OptimizerKind::sgd;
    p.sgd.momentum = hp["momentum"].cast<double>();
    p.sgd.weight_decay = hp["weight_decay"].cast<double>();
    p.sgd.nesterov = hp["nesterov"].cast<bool>();
  } else if (optimizer == "adam") {
    p.optimizer = OptimizerKind::adam;
    p.adam.beta1 = hp["beta1"].cast<double>();
    p.adam.beta2 = hp["beta2"].cast<double>();
    p.adam.eps = hp["eps"].cast<double>();
    p.adam.weight_decay = hp["weight_decay"].cast<double>();
    p.adam.decoupled_weight_decay = hp["decoupled_weight_decay"].cast<bool>();
    p.adam.step = hp["step"].cast<std::int64_t>();
  } else {
    throw py::value_error("mlp_train_batches: unknown optimizer '" + optimizer + "'");
  }

  auto order = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(order_obj);
  if (!order || order.ndim() != 1) throw py::value_error("mlp_train_batches: order must be a 1-D index array");
  const index_t n_order = order.shape(0);
  for (index_t i = 0; i < n_order; ++i)
    if (order.data()[i] < 0 || order.data()[i] >= n)
      throw py::value_error("mlp_train_batches: order holds an index out of range");
  if (batch_size < 1) throw py::value_error("mlp_train_batches: batch_size must be >= 1");
  const index_t n_batches = (n_order + batch_size - 1) / batch_size;
  auto lrs = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(lrs_obj);
  if (!lrs || lrs.ndim() != 1 || lrs.shape(0) != n_batches)
    throw py::value_error("mlp_train_batches: lrs must hold one learning rate per batch (" +
                          std::to_string(n_batches) + ")");
  // As sgd_step / adam_step check on the Python path: a NaN or negative rate (e.g. from a
  // schedule) must not silently turn the weights into NaN or climb the loss.
  for (index_t i = 0; i < n_batches; ++i) {
    const double lr = lrs.data()[i];
    if (!(std::isfinite(lr) && lr >= 0))
      throw py::value_error("mlp_train_batches: the learning rate of batch " + std::to_string(i) +
                            " is " + py::repr(py::float_(lr)).cast<std::string>() +
                            "; it must be finite and >= 0 (check the schedule)");
  }

  MlpTrainResult r;
  {
    py::gil_scoped_release release;
    r = mlp_train_batches<T>(p, order.data(), n_order, batch_size, lrs.data());
  }
  return py::make_tuple(r.loss_sum, r.correct, r.samples);
}

}  // namespace

void bind_mlp(py::module_& m) {
  m.def(
      "mlp_train_batches",
      [](py::list layers, const std::string& loss, const std::string& optimizer, py::dict hp,
         py::handle x_obj, py::handle y, py::handle order, index_t batch_size, py::handle lrs) {
        py::array x = float_array(x_obj, kFn, "x");
        check_ndim(kFn, x, "x", 2);
        if (layers.empty()) throw py::value_error("mlp_train_batches: no layers");
        // The model's dtype (its first W) decides; x may be wider (see train).
        py::array w0 = float_array(py::reinterpret_borrow<py::tuple>(layers[0])[0], kFn, "W");
        return dispatch_float(w0, [&](auto tag) {
          return train<decltype(tag)>(layers, loss, optimizer, hp, x, y, order, batch_size, lrs);
        });
      },
      py::arg("layers"), py::arg("loss"), py::arg("optimizer"), py::arg("hyperparameters"),
      py::arg("x"), py::arg("y"), py::arg("order"), py::arg("batch_size"), py::arg("lrs"),
      "Trains a chain of dense layers on x[order] in batches, entirely in C++ (see blockprop/mlp.h). "
      "Returns (loss_sum, correct, samples).");
}

}  // namespace bind
}  // namespace blockprop
