// The C++ training loop (blockprop/mlp.h) and its typed contract with Python: _core.MlpLayer per
// dense layer, _core.LossKind, _core.SgdSettings / _core.AdamSettings. The classes only carry and
// type-check what Python passes; shapes, dtypes and memory layout are checked by
// mlp_train_batches, which knows the model's dtype.
#include <pybind11/stl.h>

#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>

#include "arrays.h"
#include "bindings.h"
#include "blockprop/mlp.h"
#include "blockprop/mlp_many.h"

namespace blockprop {
namespace bind {

namespace {

const char* kFn = "mlp_train_batches";

std::string type_name(const py::handle& obj) { return py::str(py::type::of(obj).attr("__name__")); }
std::string show(const py::handle& obj) { return py::repr(obj).cast<std::string>(); }
std::string show(double v) { return show(py::float_(v)); }

// A real number (not a bool, which float() would take) in [low, high] (high excluded if open).
double number(const char* fn, const char* name, const py::handle& obj, double low = 0,
              double high = INFINITY, bool high_open = false) {
  if (py::isinstance<py::bool_>(obj) || !(py::isinstance<py::float_>(obj) || py::isinstance<py::int_>(obj) ||
                                          py::hasattr(obj, "__float__")))
    throw py::type_error(std::string(fn) + ": " + name + " must be a number, got " + type_name(obj));
  const double v = obj.cast<double>();
  if (!(std::isfinite(v) && v >= low && (high_open ? v < high : v <= high)))
    throw py::value_error(std::string(fn) + ": " + name + " must lie in [" + show(low) + ", " +
                          show(high) + (high_open ? ")" : "]") + ", got " + show(obj));
  return v;
}

bool flag(const char* fn, const char* name, const py::handle& obj) {
  if (!py::isinstance<py::bool_>(obj))
    throw py::type_error(std::string(fn) + ": " + name + " must be a bool, got " + type_name(obj));
  return obj.cast<bool>();
}

// One dense layer as Python describes it: the arrays are the model's own, updated in place.
struct LayerSpec {
  py::array w;
  py::object b;  // None: no bias
  Activation act = Activation::linear;
  double l1 = 0, l2 = 0;
  py::tuple state_w, state_b;  // SGD: () or (velocity,); Adam: (m, v)
  double dropout = 0;          // > 0: a Dropout(p = dropout, seed = dropout_seed) follows
  std::uint64_t dropout_seed = 0;
};

struct SgdSettings {
  double momentum = 0, weight_decay = 0;
  bool nesterov = false;
};

struct AdamSettings {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false;
  std::int64_t step = 1;  // the 1-based step of the call's first update
};

py::tuple state_arrays(const char* name, const py::handle& obj) {
  if (!py::isinstance<py::tuple>(obj) && !py::isinstance<py::list>(obj))
    throw py::type_error(std::string("MlpLayer: ") + name + " must be a tuple of arrays, got " + type_name(obj));
  py::tuple t = py::tuple(py::reinterpret_borrow<py::object>(obj));
  if (t.size() > 2) throw py::value_error(std::string("MlpLayer: ") + name + " holds at most 2 arrays (Adam's m, v)");
  for (py::handle a : t)
    if (!py::isinstance<py::array>(a))
      throw py::type_error(std::string("MlpLayer: ") + name + " must hold arrays, got " + type_name(a));
  return t;
}

// A non-negative integer below 2⁶⁴ (a Dropout seed, a step), else TypeError / ValueError by name.
std::uint64_t uint64(const char* fn, const char* name, const py::handle& obj) {
  if (py::isinstance<py::bool_>(obj) || !py::isinstance<py::int_>(obj))
    throw py::type_error(std::string(fn) + ": " + name + " must be an int, got " + type_name(obj));
  if (obj.cast<py::int_>() < py::int_(0) || obj.cast<py::int_>() >= py::int_(1).attr("__lshift__")(64))
    throw py::value_error(std::string(fn) + ": " + name + " must lie in [0, 2**64), got " + show(obj));
  return obj.cast<std::uint64_t>();
}

LayerSpec make_layer(py::handle w, py::handle b, py::handle act, py::handle l1, py::handle l2,
                     py::handle state_w, py::handle state_b, py::handle dropout,
                     py::handle dropout_seed) {
  const char* fn = "MlpLayer";
  LayerSpec s;
  if (!py::isinstance<py::array>(w))
    throw py::type_error(std::string(fn) + ": W must be a NumPy array, got " + type_name(w));
  s.w = py::reinterpret_borrow<py::array>(w);
  if (!b.is_none() && !py::isinstance<py::array>(b))
    throw py::type_error(std::string(fn) + ": b must be a NumPy array or None, got " + type_name(b));
  s.b = py::reinterpret_borrow<py::object>(b);
  if (!py::isinstance<Activation>(act))
    throw py::type_error(std::string(fn) + ": activation must be a blockprop._core.Activation, got " +
                         type_name(act));
  s.act = act.cast<Activation>();
  s.l1 = number(fn, "l1", l1);
  s.l2 = number(fn, "l2", l2);
  s.state_w = state_arrays("state_W", state_w);
  s.state_b = state_arrays("state_b", state_b);
  s.dropout = number(fn, "dropout", dropout, 0, 1, true);
  s.dropout_seed = uint64(fn, "dropout_seed", dropout_seed);
  return s;
}

std::string array_str(const py::handle& a) {
  if (a.is_none()) return "None";
  auto arr = py::reinterpret_borrow<py::array>(a);
  return py::str(arr.dtype()).cast<std::string>() + shape_str(arr);
}

std::string arrays_str(const py::tuple& t) {
  std::string r = "(";
  for (size_t i = 0; i < t.size(); ++i) r += (i ? ", " : "") + array_str(t[i]);
  return r + (t.size() == 1 ? ",)" : ")");
}

std::string layer_repr(const LayerSpec& s) {
  std::ostringstream o;
  o << "MlpLayer(W=" << array_str(s.w) << ", b=" << array_str(s.b)
    << ", activation=" << py::str(py::cast(s.act)).cast<std::string>() << ", l1=" << show(s.l1)
    << ", l2=" << show(s.l2) << ", state_W=" << arrays_str(s.state_w) << ", state_b=" << arrays_str(s.state_b);
  if (s.dropout > 0) o << ", dropout=" << show(s.dropout) << ", dropout_seed=" << s.dropout_seed;
  o << ")";
  return o.str();
}

// An array the trainer updates in place: C-contiguous, writeable, of the model's dtype and shape.
template <typename T>
T* inplace(const py::handle& obj, const std::string& name, std::vector<py::ssize_t> shape) {
  if (!py::isinstance<py::array>(obj) ||
      !py::reinterpret_borrow<py::array>(obj).dtype().equal(py::dtype::of<T>()))
    throw py::type_error(std::string(kFn) + ": " + name + " must be an array of the model's dtype (" +
                         py::str(py::dtype::of<T>()).cast<std::string>() + ")");
  auto a = py::reinterpret_borrow<py::array>(obj);
  check_shape(kFn, a, name.c_str(), shape);
  if (!(a.flags() & py::array::c_style) || !a.writeable() || !aligned(a))
    throw py::value_error(std::string(kFn) + ": " + name + " must be C-contiguous, aligned and writeable");
  return static_cast<T*>(a.mutable_data());
}

// The optimizer state of one parameter: as many arrays as the optimizer keeps, of its shape.
template <typename T>
void state_of(const py::tuple& given, size_t needed, const std::string& name,
              std::vector<py::ssize_t> shape, T* out[2]) {
  if (given.size() != needed)
    throw py::value_error(std::string(kFn) + ": " + name + " must hold " + std::to_string(needed) +
                          " arrays for this optimizer (SGD: velocity with momentum, none without; Adam: m, v), got " +
                          std::to_string(given.size()));
  for (size_t s = 0; s < needed; ++s)
    out[s] = inplace<T>(given[s], name + "[" + std::to_string(s) + "]", shape);
}

// One model's problem, checked, with the arrays it points into kept alive.
template <typename T>
struct Prepared {
  MlpProblem<T> p;
  py::array_t<T, py::array::c_style> x, targets;
  py::array_t<double, py::array::c_style> x_wide;
  py::array_t<std::int64_t, py::array::c_style> labels;
  py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> order;
  py::array_t<double, py::array::c_style | py::array::forcecast> lrs, weights;
  index_t n_order = 0;
};

template <typename T>
void prepare(Prepared<T>& prep, const std::vector<const LayerSpec*>& specs, LossKind loss,
             py::handle optimizer, py::array x_a, py::handle y_obj, py::handle order_obj,
             index_t batch_size, py::handle lrs_obj, std::uint64_t dropout_step,
             py::handle weights_obj, bool bf16) {
  MlpProblem<T>& p = prep.p;
  p.precision = precision_for(kFn, specs[0]->w, bf16);
  p.loss = loss;
  p.dropout_step = dropout_step;
  size_t n_state = 0;
  if (py::isinstance<SgdSettings>(optimizer)) {
    const auto& o = optimizer.cast<const SgdSettings&>();
    p.optimizer = OptimizerKind::sgd;
    p.sgd.momentum = o.momentum;
    p.sgd.weight_decay = o.weight_decay;
    p.sgd.nesterov = o.nesterov;
    n_state = o.momentum != 0 ? 1 : 0;
  } else {
    const auto& o = optimizer.cast<const AdamSettings&>();
    p.optimizer = OptimizerKind::adam;
    p.adam.beta1 = o.beta1;
    p.adam.beta2 = o.beta2;
    p.adam.eps = o.eps;
    p.adam.weight_decay = o.weight_decay;
    p.adam.decoupled_weight_decay = o.decoupled;
    p.adam.step = o.step;
    n_state = 2;
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    const LayerSpec& s = *specs[i];
    const std::string at = "layers[" + std::to_string(i) + "].";
    check_ndim(kFn, s.w, (at + "W").c_str(), 2);
    MlpLayer<T> l;
    l.out = s.w.shape(0);
    l.in = s.w.shape(1);
    l.w = inplace<T>(s.w, at + "W", {l.out, l.in});
    l.b = s.b.is_none() ? nullptr : inplace<T>(s.b, at + "b", {l.out});
    l.act = s.act;
    l.l1 = s.l1;
    l.l2 = s.l2;
    l.dropout = s.dropout;
    l.dropout_seed = s.dropout_seed;
    state_of<T>(s.state_w, n_state, at + "state_W", {l.out, l.in}, l.state_w);
    state_of<T>(s.state_b, l.b ? n_state : 0, at + "state_b", {l.out}, l.state_b);
    if (!p.layers.empty() && p.layers.back().out != l.in)
      throw py::value_error(std::string(kFn) + ": layer widths do not chain: " + at + "W has " +
                            std::to_string(l.in) + " inputs, the layer before has " +
                            std::to_string(p.layers.back().out) + " outputs");
    p.layers.push_back(l);
  }
  const index_t n_in = p.layers.front().in, n_out = p.layers.back().out;
  check_shape(kFn, x_a, "x", {x_a.shape(0), n_in});
  // float64 x for a float32 model is read as it is and rounded batch by batch (no copy of x).
  const bool wide = std::is_same<T, float>::value && x_a.dtype().is(py::dtype::of<double>());
  if (wide) {
    prep.x_wide = contiguous<double>(x_a);
    p.x_wide = prep.x_wide.data();
  } else {
    check_same_dtype(kFn, specs[0]->w, "layers[0].W", x_a, "x");
    prep.x = contiguous<T>(x_a);
    p.x = prep.x.data();
  }
  const index_t n = x_a.shape(0);

  if (loss == LossKind::cross_entropy) {
    prep.labels = class_labels(y_obj, kFn, "y", n, n_out);
    p.labels = prep.labels.data();
  } else {
    py::array y = float_array(y_obj, kFn, "y");
    // Targets come in the model's dtype (x may be wider, see above).
    check_same_dtype(kFn, specs[0]->w, "layers[0].W", y, "y");
    check_shape(kFn, y, "y", {n, n_out});
    prep.targets = contiguous<T>(y);
    p.targets = prep.targets.data();
  }

  // Sample weights, checked whole by the caller (training.as_sample_weight): here only the shape
  // and that none is negative or NaN, so the loop cannot read out of bounds or go astray.
  auto& weights = prep.weights;
  if (!weights_obj.is_none()) {
    weights = py::array_t<double, py::array::c_style | py::array::forcecast>(
        as_ndarray(weights_obj, kFn, "weights", "a 1-D array of sample weights"));
    check_shape(kFn, weights, "weights", {n});
    for (index_t i = 0; i < n; ++i)
      if (!(weights.data()[i] >= 0) || !std::isfinite(weights.data()[i]))
        throw py::value_error("mlp_train_batches: weights must be finite and >= 0");
    p.weights = weights.data();
  }

  // Throwing conversions: ensure() would hand back a null array when a copy cannot be allocated.
  auto& order = prep.order;
  order = decltype(prep.order)(as_ndarray(order_obj, "mlp_train_batches", "order", "a 1-D index array"));
  if (order.ndim() != 1) throw py::value_error("mlp_train_batches: order must be a 1-D index array");
  const index_t n_order = prep.n_order = order.shape(0);
  for (index_t i = 0; i < n_order; ++i)
    if (order.data()[i] < 0 || order.data()[i] >= n)
      throw py::value_error("mlp_train_batches: order holds an index out of range");
  if (batch_size < 1) throw py::value_error("mlp_train_batches: batch_size must be >= 1");
  const index_t n_batches = (n_order + batch_size - 1) / batch_size;
  auto& lrs = prep.lrs;
  lrs = decltype(prep.lrs)(as_ndarray(lrs_obj, "mlp_train_batches", "lrs", "an array of learning rates"));
  if (lrs.ndim() != 1 || lrs.shape(0) != n_batches)
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

}

template <typename T>
py::tuple train(const std::vector<const LayerSpec*>& specs, LossKind loss, py::handle optimizer,
                py::array x_a, py::handle y_obj, py::handle order_obj, index_t batch_size,
                py::handle lrs_obj, std::uint64_t dropout_step, py::handle weights_obj, bool bf16,
                double loss_sum) {
  Prepared<T> prep;
  prepare<T>(prep, specs, loss, optimizer, x_a, y_obj, order_obj, batch_size, lrs_obj, dropout_step,
             weights_obj, bf16);
  prep.p.loss_sum = loss_sum;
  MlpTrainResult r;
  {
    py::gil_scoped_release release;
    r = mlp_train_batches<T>(prep.p, prep.order.data(), prep.n_order, batch_size, prep.lrs.data());
  }
  return py::make_tuple(r.loss_sum, r.correct, r.samples);
}

// The layers of one model, and its loss and optimizer settings, type-checked.
std::vector<const LayerSpec*> layer_specs(py::handle layers, py::handle loss, py::handle optimizer) {
  if (!py::isinstance<py::list>(layers) && !py::isinstance<py::tuple>(layers))
    throw py::type_error(std::string(kFn) + ": layers must be a list of blockprop._core.MlpLayer, got " +
                         type_name(layers));
  std::vector<const LayerSpec*> specs;
  for (py::handle l : layers) {
    if (!py::isinstance<LayerSpec>(l))
      throw py::type_error(std::string(kFn) + ": layers[" + std::to_string(specs.size()) +
                           "] must be a blockprop._core.MlpLayer, got " + type_name(l));
    specs.push_back(&l.cast<const LayerSpec&>());
  }
  if (specs.empty()) throw py::value_error(std::string(kFn) + ": no layers");
  if (!py::isinstance<LossKind>(loss))
    throw py::type_error(std::string(kFn) + ": loss must be a blockprop._core.LossKind, got " + type_name(loss));
  if (!py::isinstance<SgdSettings>(optimizer) && !py::isinstance<AdamSettings>(optimizer))
    throw py::type_error(std::string(kFn) + ": optimizer must be a blockprop._core.SgdSettings or "
                         "AdamSettings, got " + type_name(optimizer));
  return specs;
}

py::tuple train_py(py::handle layers, py::handle loss, py::handle optimizer, py::handle x_obj,
                   py::handle y, py::handle order, index_t batch_size, py::handle lrs,
                   py::handle dropout_step, py::handle weights, bool bf16, double loss_sum) {
  const std::uint64_t first_step = uint64(kFn, "dropout_step", dropout_step);
  const auto specs = layer_specs(layers, loss, optimizer);
  py::array x = float_array(x_obj, kFn, "x");
  check_ndim(kFn, x, "x", 2);
  // The model's dtype (its first W) decides; x may be wider (see train).
  py::array w0 = float_array(specs[0]->w, kFn, "layers[0].W");
  return dispatch_float(w0, [&](auto tag) {
    return train<decltype(tag)>(specs, loss.cast<LossKind>(), optimizer, x, y, order, batch_size, lrs,
                                first_step, weights, bf16, loss_sum);
  });
}

// Many models on the same batches (blockprop/mlp_many.h): each model is a tuple (layers, loss,
// optimizer, y, lrs, dropout_step, loss_sum, weights), checked as mlp_train_batches checks its
// arguments.
py::list train_many_py(py::handle models, py::handle x_obj, py::handle order, index_t batch_size) {
  const char* fn = "mlp_many_train_batches";
  if (!py::isinstance<py::list>(models) || py::len(models) == 0)
    throw py::type_error(std::string(fn) + ": models must be a non-empty list of tuples "
                         "(layers, loss, optimizer, y, lrs, dropout_step, loss_sum, weights)");
  py::array x = float_array(x_obj, fn, "x");
  check_ndim(fn, x, "x", 2);
  std::vector<std::vector<const LayerSpec*>> specs;
  std::vector<py::tuple> args;
  for (py::handle m : models) {
    if (!py::isinstance<py::tuple>(m) || py::len(m) != 8)
      throw py::type_error(std::string(fn) + ": models[" + std::to_string(args.size()) +
                           "] must be a tuple (layers, loss, optimizer, y, lrs, dropout_step, loss_sum, weights)");
    args.push_back(py::reinterpret_borrow<py::tuple>(m));
    specs.push_back(layer_specs(args.back()[0], args.back()[1], args.back()[2]));
  }
  py::array w0 = float_array(specs[0][0]->w, fn, "models[0] layers[0].W");
  return dispatch_float(w0, [&](auto tag) {
    using T = decltype(tag);
    // x made contiguous once: every model then points at the same rows.
    const bool wide = std::is_same<T, float>::value && x.dtype().is(py::dtype::of<double>());
    py::array xs = wide ? py::array(contiguous<double>(x)) : py::array(contiguous<T>(x));
    std::vector<Prepared<T>> prep(args.size());
    std::vector<MlpProblem<T>> problems;
    std::vector<const double*> lrs;
    for (size_t k = 0; k < args.size(); ++k) {
      const auto& a = args[k];
      prepare<T>(prep[k], specs[k], a[1].cast<LossKind>(), a[2], xs, a[3], order, batch_size, a[4],
                 uint64(fn, "dropout_step", a[5]), a[7], false);
      prep[k].p.loss_sum = a[6].cast<double>();
      if (prep[k].n_order != prep[0].n_order)
        throw py::value_error(std::string(fn) + ": the models read different orders");
      problems.push_back(prep[k].p);
      lrs.push_back(prep[k].lrs.data());
    }
    std::vector<MlpTrainResult> r;
    {
      py::gil_scoped_release release;
      r = mlp_many_train_batches<T>(problems, prep[0].order.data(), prep[0].n_order, batch_size, lrs);
    }
    py::list out;
    for (const auto& rk : r) out.append(py::make_tuple(rk.loss_sum, rk.correct, rk.samples));
    return out;
  });
}

}  // namespace

void bind_mlp(py::module_& m) {
  py::enum_<Activation>(m, "Activation", "A dense layer's fused activation (blockprop/types.h).")
      .value("linear", Activation::linear)
      .value("relu", Activation::relu)
      .value("sigmoid", Activation::sigmoid)
      .value("tanh", Activation::tanh)
      .value("leaky_relu", Activation::leaky_relu)
      .value("elu", Activation::elu)
      .value("gelu", Activation::gelu)
      .value("softplus", Activation::softplus);
  py::enum_<LossKind>(m, "LossKind", "The built-in losses mlp_train_batches runs.")
      .value("mse", LossKind::mse)
      .value("cross_entropy", LossKind::cross_entropy)
      .value("bce", LossKind::bce);

  py::class_<LayerSpec>(m, "MlpLayer",
                        "One dense layer for mlp_train_batches: W (out, in) and b (out,) or None, "
                        "updated in place; its fused activation; its weight penalty l1·Σ|W| + l2·ΣW²; "
                        "its optimizer state (SGD: () or (velocity,); Adam: (m, v)), updated in place; "
                        "dropout > 0: a Dropout(dropout, dropout_seed) after the activation.")
      .def(py::init(&make_layer), py::arg("W"), py::arg("b") = py::none(),
           py::arg("activation") = Activation::linear, py::arg("l1") = 0.0, py::arg("l2") = 0.0,
           py::arg("state_W") = py::tuple(), py::arg("state_b") = py::tuple(),
           py::arg("dropout") = 0.0, py::arg("dropout_seed") = 0)
      .def_property_readonly("W", [](const LayerSpec& s) { return s.w; })
      .def_property_readonly("b", [](const LayerSpec& s) { return s.b; })
      .def_property_readonly("activation", [](const LayerSpec& s) { return s.act; })
      .def_property_readonly("l1", [](const LayerSpec& s) { return s.l1; })
      .def_property_readonly("l2", [](const LayerSpec& s) { return s.l2; })
      .def_property_readonly("state_W", [](const LayerSpec& s) { return s.state_w; })
      .def_property_readonly("state_b", [](const LayerSpec& s) { return s.state_b; })
      .def_property_readonly("dropout", [](const LayerSpec& s) { return s.dropout; })
      .def_property_readonly("dropout_seed", [](const LayerSpec& s) { return s.dropout_seed; })
      .def("__repr__", &layer_repr);

  py::class_<SgdSettings>(m, "SgdSettings", "SGD's settings for mlp_train_batches (see blockprop.optim.SGD).")
      .def(py::init([](py::handle momentum, py::handle nesterov, py::handle weight_decay) {
             const char* fn = "SgdSettings";
             SgdSettings s;
             s.momentum = number(fn, "momentum", momentum, 0, 1, true);
             s.nesterov = flag(fn, "nesterov", nesterov);
             s.weight_decay = number(fn, "weight_decay", weight_decay);
             if (s.nesterov && s.momentum == 0)
               throw py::value_error("SgdSettings: nesterov=True needs momentum > 0");
             return s;
           }),
           py::kw_only(), py::arg("momentum") = 0.0, py::arg("nesterov") = false,
           py::arg("weight_decay") = 0.0)
      .def_readonly("momentum", &SgdSettings::momentum)
      .def_readonly("nesterov", &SgdSettings::nesterov)
      .def_readonly("weight_decay", &SgdSettings::weight_decay)
      .def("__repr__", [](const SgdSettings& s) {
        return "SgdSettings(momentum=" + show(s.momentum) +
               ", nesterov=" + (s.nesterov ? "True" : "False") +
               ", weight_decay=" + show(s.weight_decay) + ")";
      });

  py::class_<AdamSettings>(m, "AdamSettings", "Adam's settings for mlp_train_batches (see blockprop.optim.Adam); "
                                              "step: the 1-based step of the first update.")
      .def(py::init([](py::handle beta1, py::handle beta2, py::handle eps, py::handle weight_decay,
                       py::handle decoupled, py::handle step) {
             const char* fn = "AdamSettings";
             AdamSettings s;
             s.beta1 = number(fn, "beta1", beta1, 0, 1, true);
             s.beta2 = number(fn, "beta2", beta2, 0, 1, true);
             s.eps = number(fn, "eps", eps);
             if (s.eps == 0) throw py::value_error("AdamSettings: eps must be > 0");
             s.weight_decay = number(fn, "weight_decay", weight_decay);
             s.decoupled = flag(fn, "decoupled", decoupled);
             if (py::isinstance<py::bool_>(step) || !py::isinstance<py::int_>(step))
               throw py::type_error(std::string(fn) + ": step must be an int, got " + type_name(step));
             s.step = step.cast<std::int64_t>();
             if (s.step < 1) throw py::value_error("AdamSettings: step must be >= 1 (the first update is step 1)");
             return s;
           }),
           py::kw_only(), py::arg("beta1") = 0.9, py::arg("beta2") = 0.999, py::arg("eps") = 1e-8,
           py::arg("weight_decay") = 0.0, py::arg("decoupled") = false, py::arg("step") = 1)
      .def_readonly("beta1", &AdamSettings::beta1)
      .def_readonly("beta2", &AdamSettings::beta2)
      .def_readonly("eps", &AdamSettings::eps)
      .def_readonly("weight_decay", &AdamSettings::weight_decay)
      .def_readonly("decoupled", &AdamSettings::decoupled)
      .def_readonly("step", &AdamSettings::step)
      .def("__repr__", [](const AdamSettings& s) {
        auto f = [](double v) { return show(v); };
        return "AdamSettings(beta1=" + f(s.beta1) + ", beta2=" + f(s.beta2) + ", eps=" + f(s.eps) +
               ", weight_decay=" + f(s.weight_decay) + ", decoupled=" + (s.decoupled ? "True" : "False") +
               ", step=" + std::to_string(s.step) + ")";
      });

  m.def("mlp_train_batches", &train_py, py::arg("layers"), py::arg("loss"), py::arg("optimizer"),
        py::arg("x"), py::arg("y"), py::arg("order"), py::arg("batch_size"), py::arg("lrs"),
        py::arg("dropout_step") = 0, py::arg("weights") = py::none(), py::arg("bf16") = false,
        py::arg("loss_sum") = 0.0,
        "Trains a chain of dense layers (a list of MlpLayer) on x[order] in batches, entirely in C++ "
        "(see blockprop/mlp.h); batch i draws its dropout masks at step dropout_step + i; bf16: "
        "bfloat16 products (float32 models). Returns (loss_sum, correct, samples): loss_sum the "
        "given one plus each batch's loss × rows, added in turn.");
  m.def("mlp_many_train_batches", &train_many_py, py::arg("models"), py::arg("x"), py::arg("order"),
        py::arg("batch_size"),
        "Trains many models on the same batches x[order], their first layers' GEMMs shared (see "
        "blockprop/mlp_many.h); each model is (layers, loss, optimizer, y, lrs, dropout_step, loss_sum, "
        "weights) as for mlp_train_batches. Returns one (loss_sum, correct, samples) per model.");
}

}  // namespace bind
}  // namespace blockprop
