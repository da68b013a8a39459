"""``to_onnx``: a blockprop ``Sequential`` or fitted scikit-learn estimator as an ONNX model, built
with the ``onnx`` package's helper API (no converter library), batch dimension left free.

A ``Sequential`` becomes ``X (N, in) → Y (N, out)`` in the model's dtype (float32 or float64):
Dense → Gemm (``W`` stored as blockprop's ``(out, in)`` with ``transB=1``, so the weights are the
same bits) plus its activation; Dropout → Identity; BatchNorm1d → BatchNormalization with the
running statistics; LayerNorm → LayerNormalization; GELU → Gelu from opset 20, below that its erf
formula ``x·(1 + erf(x/√2))·½``.

``MLPClassifier`` adds what skl2onnx writes (with ``zipmap=False``): ``label`` (N,) holding the
original class labels (int64, string, bool or float as ``classes_``) and ``probabilities``
(N, n_classes); a multi-label classifier's ``label`` is its (N, n_labels) int64 indicator.
``MLPRegressor``: one output, ``variable`` (N, n_outputs). The label is computed from the logits
(argmax, or ``logit > 0`` for one output), so it is the label of ``predict``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .. import __version__
from ..nn.layers import (ELU, GELU, BatchNorm1d, Dense, Dropout, LayerNorm, LeakyReLU, ReLU,
                         Sigmoid, Softmax, Softplus, Tanh)
from ..nn.sequential import Sequential
from ._common import DEFAULT_OPSET, MIN_OPSET, onnx_module

__all__ = ["to_onnx"]

# Element-wise layers and fused Dense activations -> (ONNX op, attributes).
_ELEMENTWISE = {ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh", Softplus: "Softplus"}
_FUSED = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus"}


class _Graph:
    """Nodes and initializers of one graph under construction; every tensor name is unique."""

    def __init__(self, dtype: np.dtype, opset: int) -> None:
        self.onnx = onnx_module()
        self.dtype, self.opset = dtype, opset
        self.elem = self.onnx.helper.np_dtype_to_tensor_dtype(dtype)
        self.nodes: List[Any] = []
        self.initializers: List[Any] = []
        self._scalars: Dict[Tuple[str, float], str] = {}

    def constant(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def scalar(self, value: float, dtype: Optional[np.dtype] = None) -> str:
        """A shared 0-d constant of the model's dtype (or ``dtype``)."""
        dt = np.dtype(dtype or self.dtype)
        key = (dt.name, float(value))
        if key not in self._scalars:
            self._scalars[key] = self.constant(f"const_{len(self._scalars)}", np.array(value, dt))
        return self._scalars[key]

    def node(self, op: str, inputs: List[str], output: str, **attrs: Any) -> str:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def activation(self, kind: str, x: str, out: str, alpha: Optional[float] = None) -> str:
        """``kind`` (a Dense activation name) applied to ``x``."""
        if kind in _FUSED:
            return self.node(_FUSED[kind], [x], out)
        if kind == "leaky_relu":
            return self.node("LeakyRelu", [x], out, alpha=0.01 if alpha is None else alpha)
        if kind == "elu":
            return self.node("Elu", [x], out, alpha=1.0 if alpha is None else alpha)
        if kind == "gelu":
            if self.opset >= 20:
                return self.node("Gelu", [x], out)
            # GELU(x) = x·(1 + erf(x/√2))·½, the pattern torch.onnx.export writes below opset 20
            z = self.node("Div", [x, self.scalar(np.sqrt(2.0))], f"{out}.scaled")
            e = self.node("Erf", [z], f"{out}.erf")
            s = self.node("Add", [e, self.scalar(1.0)], f"{out}.shifted")
            m = self.node("Mul", [x, s], f"{out}.product")
            return self.node("Mul", [m, self.scalar(0.5)], out)
        raise AssertionError(kind)  # Dense checks its activation names

    def tensor_type(self, name: str, elem: int, shape: List[Any]) -> Any:
        return self.onnx.helper.make_tensor_value_info(name, elem, shape)

    def model(self, inputs: List[Any], outputs: List[Any], doc: str, layers: Sequential) -> Any:
        h = self.onnx.helper
        graph = h.make_graph(self.nodes, "blockprop", inputs, outputs, initializer=self.initializers)
        opsets = [h.make_opsetid("", self.opset)]
        # The oldest IR version that has this opset, so that older runtimes load the file.
        model = h.make_model(graph, opset_imports=opsets, producer_name="blockprop",
                             producer_version=__version__, doc_string=doc,
                             ir_version=h.find_min_ir_version_for(opsets))
        # Each layer's class and constructor arguments, so that from_onnx rebuilds the layers
        # as they were (Dropout's rate, a Dense layer's init and penalties), not just the maths.
        record = [{"class": type(layer).__name__, "config": layer.get_config()} for layer in layers.layers]
        h.set_model_props(model, {"blockprop.layers": json.dumps(record)})
        self.onnx.checker.check_model(model, full_check=True)
        return model


def _layers(g: _Graph, model: Sequential, x: str, out: str) -> str:
    """Nodes computing ``model`` (evaluation mode) from tensor ``x``; the last writes ``out``."""
    layers: List[Any] = list(model.layers)  # dispatched on the exact type below
    n = len(layers)
    for i, layer in enumerate(layers):
        name = out if i == n - 1 else f"layers.{i}"
        kind = type(layer)
        if kind is Dense:
            inputs = [x, g.constant(f"layers.{i}.W", layer.W)]
            if layer.b is not None:
                inputs.append(g.constant(f"layers.{i}.b", layer.b))
            if layer.activation == "linear":
                x = g.node("Gemm", inputs, name, transB=1)
            else:
                x = g.activation(layer.activation, g.node("Gemm", inputs, f"layers.{i}.linear", transB=1), name)
        elif kind in _ELEMENTWISE:
            x = g.node(_ELEMENTWISE[kind], [x], name)
        elif kind is LeakyReLU:
            x = g.activation("leaky_relu", x, name, layer.negative_slope)
        elif kind is ELU:
            x = g.activation("elu", x, name, layer.alpha)
        elif kind is GELU:
            x = g.activation("gelu", x, name)
        elif kind is Softmax:
            x = g.node("Softmax", [x], name, axis=1)
        elif kind is Dropout:
            x = g.node("Identity", [x], name)  # evaluation mode
        elif kind is BatchNorm1d:
            params = [g.constant(f"layers.{i}.{p}", a) for p, a in
                      (("gamma", layer.gamma.data), ("beta", layer.beta.data),
                       ("running_mean", layer.running_mean), ("running_var", layer.running_var))]
            x = g.node("BatchNormalization", [x, *params], name, epsilon=layer.eps)
        elif kind is LayerNorm:
            if g.opset < 17:
                raise ValueError(f"to_onnx: layer {i} ({layer!r}) needs opset ≥ 17 "
                                 f"(LayerNormalization), got opset={g.opset}")
            params = [g.constant(f"layers.{i}.{p}", a) for p, a in
                      (("gamma", layer.gamma.data), ("beta", layer.beta.data))]
            x = g.node("LayerNormalization", [x, *params], name, axis=-1, epsilon=layer.eps)
        else:
            raise ValueError(f"to_onnx: layer {i} ({layer!r}, {kind.__module__}.{kind.__qualname__}) "
                             "has no ONNX form; supported: the layers of blockprop.nn")
    return x


def _label_tensor(classes: np.ndarray) -> np.ndarray:
    """``classes_`` as an array ONNX can hold (int64, bool, float or string)."""
    if classes.dtype.kind in "iu":
        if classes.size and (classes.max() > np.iinfo(np.int64).max):
            raise ValueError(f"to_onnx: class labels beyond int64: {classes.max()!r}")
        return classes.astype(np.int64)
    if classes.dtype.kind in "bf":
        return classes
    if classes.dtype.kind in "US" or all(isinstance(c, str) for c in classes):
        return np.array([str(c) for c in classes], dtype=object)
    raise ValueError("to_onnx: class labels must be integers, floats, booleans or strings, got "
                     f"{sorted({type(c).__name__ for c in classes})}")


def _classifier_head(g: _Graph, est: Any, logits: str, outputs: int) -> Tuple[str, str, np.ndarray]:
    """``label`` and ``probabilities`` from the logits, as ``est.predict`` / ``predict_proba``."""
    classes = np.asarray(est.classes_)
    if getattr(est, "out_activation_", "softmax") == "softmax":
        g.node("Softmax", [logits], "probabilities", axis=1)
        index = g.node("ArgMax", [logits], "class_index", axis=1, keepdims=0)
    elif outputs == 1:  # two classes, one logit: P(classes_[1]) = sigmoid(logit)
        p = g.node("Sigmoid", [logits], "positive_probability")
        q = g.node("Sub", [g.scalar(1.0), p], "negative_probability")
        g.node("Concat", [q, p], "probabilities", axis=1)
        positive = g.node("Greater", [logits, g.scalar(0.0)], "positive")
        column = g.node("Cast", [positive], "class_index_column", to=g.onnx.TensorProto.INT64)
        index = g.node("Reshape", [column, g.constant("flat", np.array([-1], np.int64))], "class_index")
    else:  # multi-label: one sigmoid per label, the label is the 0/1 indicator row
        g.node("Sigmoid", [logits], "probabilities")
        positive = g.node("Greater", [logits, g.scalar(0.0)], "positive")
        g.node("Cast", [positive], "label", to=g.onnx.TensorProto.INT64)
        return "label", "probabilities", np.zeros(0, np.int64)
    labels = _label_tensor(classes)
    g.node("Gather", [g.constant("classes", labels), index], "label", axis=0)
    return "label", "probabilities", labels


def _check_opset(opset: Any) -> int:
    onnx = onnx_module()
    top = onnx.defs.onnx_opset_version()
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= top:
        raise ValueError(f"to_onnx: opset must be an integer in [{MIN_OPSET}, {top}] (this onnx "
                         f"package's newest), got {opset!r}")
    return int(opset)


def _fitted_model(obj: Any) -> Optional[Sequential]:
    """The trained Sequential of a fitted blockprop estimator, None for anything else."""
    if not any(c.__module__ == "blockprop.sklearn" for c in type(obj).__mro__):
        return None  # (checked by module name: blockprop.sklearn imports scikit-learn)
    model = getattr(obj, "model_", None)
    if not isinstance(model, Sequential):
        raise ValueError(f"to_onnx: this {type(obj).__name__} is not fitted yet: call fit first")
    return model


def to_onnx(obj: Any, path: Union[str, "os.PathLike[str]", None] = None, opset: Optional[int] = None) -> Any:
    """An ``onnx.ModelProto`` computing ``obj``: a :class:`~blockprop.nn.Sequential` (input ``X``,
    output ``Y``, in evaluation mode) or a fitted :class:`blockprop.sklearn.MLPClassifier`
    (outputs ``label`` and ``probabilities``) / ``MLPRegressor`` (output ``variable``).
    ``path``: also written there. ``opset``: default 18 (torch.onnx.export's), at least 13.
    The model passes ``onnx.checker.check_model(full_check=True)``."""
    opset = _check_opset(opset)
    estimator = _fitted_model(obj)
    model = estimator if estimator is not None else obj
    if not isinstance(model, Sequential):
        raise TypeError("to_onnx expects a blockprop Sequential or a fitted blockprop.sklearn "
                        f"MLPClassifier / MLPRegressor, got {type(obj).__name__}")
    g = _Graph(model.dtype, opset)
    x_info = g.tensor_type("X", g.elem, ["N", model.in_features])
    if estimator is None:
        _layers(g, model, "X", "Y")
        outputs = [g.tensor_type("Y", g.elem, ["N", model.out_features])]
        doc = f"blockprop {model!r}"
    elif hasattr(obj, "classes_"):
        label, proba, labels = _classifier_head(g, obj, _layers(g, model, "X", "logits"), model.out_features)
        n_classes = len(obj.classes_)
        if labels.size:
            elem = g.onnx.helper.np_dtype_to_tensor_dtype(labels.dtype) if labels.dtype != object \
                else g.onnx.TensorProto.STRING
            label_info = g.tensor_type(label, elem, ["N"])
        else:
            label_info = g.tensor_type(label, g.onnx.TensorProto.INT64, ["N", n_classes])
        outputs = [label_info, g.tensor_type(proba, g.elem, ["N", n_classes])]
        doc = f"blockprop {type(obj).__name__}, classes {list(obj.classes_)!r}"[:4000]
    else:
        _layers(g, model, "X", "variable")
        outputs = [g.tensor_type("variable", g.elem, ["N", model.out_features])]
        doc = f"blockprop {type(obj).__name__}"
    onnx_model = g.model([x_info], outputs, doc, model)
    if path is not None:
        g.onnx.save_model(onnx_model, os.fspath(path))
    return onnx_model
