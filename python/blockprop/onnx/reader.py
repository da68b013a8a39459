"""``from_onnx``: an ONNX graph of a multi-layer perceptron as a blockprop ``Sequential``.

The graph is followed from its one input, node by node, matching the layers blockprop has:
Gemm, MatMul (+ Add of a bias), Relu, Sigmoid, Tanh, LeakyRelu, Elu, Softplus (and the
``Where(x > threshold, x, Softplus(x))`` that torch.onnx.export writes for ``nn.Softplus``), Gelu
and its erf formula, Softmax over the features, BatchNormalization (inference), LayerNormalization
over the features, Identity, Dropout (inference), Cast to a float type, Flatten / Reshape to
``(batch, features)``. Weights must be constants (initializers or Constant nodes). An activation
right after a linear layer is fused into the Dense layer, as blockprop writes it.

A classifier graph (skl2onnx's, blockprop's ``to_onnx`` of an ``MLPClassifier``) ends in nodes
that turn probabilities into labels (ArgMax, ZipMap, ArrayFeatureExtractor, ...): they are left
out, and so is the Softmax / Sigmoid before them, so the Sequential computes the logits, like
``MLPClassifier.model_``; its ``loss`` is set to match (cross-entropy after a softmax, BCE after
sigmoids), so ``predict_proba`` gives the probabilities again. Anything else raises
``ValueError`` naming the node and its op.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from ..nn.layers import (ELU, GELU, LAYER_TYPES, BatchNorm1d, Dense, Dropout, Layer, LayerNorm,
                         LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh)
from ..nn.losses import get_loss
from ..nn.sequential import Sequential
from ._common import node_label, onnx_module

__all__ = ["from_onnx"]

SUPPORTED = ("Gemm, MatMul(+Add), Relu, Sigmoid, Tanh, LeakyRelu, Elu, Softplus, Gelu (and its erf "
             "formula), Softmax, BatchNormalization, LayerNormalization, Identity, Dropout, Cast, "
             "Flatten/Reshape of the batch")
# Nodes after the network of a classifier that make labels and probability maps out of its output.
_HEAD_OPS = {"ArgMax", "ZipMap", "ArrayFeatureExtractor", "Reshape", "Cast", "Identity", "Sub",
             "Concat", "Gather", "Greater", "Less", "Where", "Squeeze", "Unsqueeze", "Flatten",
             "Not", "Equal", "Binarizer", "Softmax", "Sigmoid"}
_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus"}
_STANDALONE = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "softplus": Softplus, "gelu": GELU}
_FLOATS = {"float16", "bfloat16", "float32", "float64"}
_SQRT2 = float(np.sqrt(2.0))


def _attr_float(value: float) -> float:
    """An ONNX float attribute (stored as float32) as the shortest decimal that rounds to it, so
    ``0.2`` written by any exporter reads back as ``0.2``."""
    return float(repr(np.float32(value)).replace("np.float32(", "").rstrip(")"))


def _close(value: Optional[np.ndarray], target: float, rtol: float = 1e-6) -> bool:
    return value is not None and value.size == 1 and abs(float(value.reshape(())) - target) <= rtol * abs(target)


class _Graph:
    """The graph's constants, consumers and outputs, and which nodes the network has used."""

    def __init__(self, onnx: Any, model: Any) -> None:
        self.onnx, self.graph = onnx, model.graph
        self.nodes = list(self.graph.node)
        self.index = {id(n): i for i, n in enumerate(self.nodes)}
        self.consts: Dict[str, np.ndarray] = {t.name: onnx.numpy_helper.to_array(t) for t in self.graph.initializer}
        self.used: Set[int] = set()
        for i, node in enumerate(self.nodes):  # constants, and Identity / Cast of constants
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.consts[node.output[0]] = self._constant_value(node, i)
                self.used.add(i)
            elif node.op_type in ("Identity", "Cast") and node.input and node.input[0] in self.consts:
                value = self.consts[node.input[0]]
                if node.op_type == "Cast":
                    value = value.astype(onnx.helper.tensor_dtype_to_np_dtype(self.attrs(node)["to"]))
                self.consts[node.output[0]] = value
                self.used.add(i)
        self.consumers: Dict[str, List[Any]] = {}
        for i, node in enumerate(self.nodes):
            if i not in self.used:
                for name in node.input:
                    self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in self.graph.output}

    def _constant_value(self, node: Any, i: int) -> np.ndarray:
        for a in node.attribute:
            if a.name == "value":
                return self.onnx.numpy_helper.to_array(a.t)
            if a.name in ("value_float", "value_floats", "value_int", "value_ints"):
                return np.array(self.onnx.helper.get_attribute_value(a))
        raise ValueError(f"from_onnx: {node_label(node, i)} holds no numeric tensor")

    def label(self, node: Any) -> str:
        return node_label(node, self.index[id(node)])

    def attrs(self, node: Any) -> Dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def users(self, name: str) -> List[Any]:
        return [n for n in self.consumers.get(name, []) if self.index[id(n)] not in self.used]

    def sole_user(self, name: str, op: str) -> Optional[Any]:
        users = self.users(name)
        if len(users) == 1 and users[0].op_type == op and name not in self.outputs:
            return users[0]
        return None

    def const(self, name: str) -> Optional[np.ndarray]:
        return self.consts.get(name)

    def use(self, *nodes: Any) -> None:
        self.used.update(self.index[id(n)] for n in nodes)

    def fail(self, node: Any, why: str) -> ValueError:
        return ValueError(f"from_onnx: {self.label(node)} {why}")


class _Reader:
    """Walks the network from the input; ``specs`` collects one entry per operation:
    ``("dense", W, b, node name)``, ``("act", kind, alpha, node name)``, ``("softmax",)``,
    ``("identity", node name)``, ``("batchnorm", arrays, eps)``, ``("layernorm", arrays, eps)``."""

    def __init__(self, g: _Graph, opset: int, input_shape: Optional[List[Any]]) -> None:
        self.g, self.opset, self.input_shape = g, opset, input_shape
        self.specs: List[Tuple[Any, ...]] = []
        self.features: Optional[int] = None
        self.rank = 2
        self.loss: Optional[str] = None  # a classifier's: how predict_proba turns logits into probabilities

    # --- the walk ---------------------------------------------------------------------------
    def read(self, x: str, shape: Optional[List[Any]]) -> None:
        if shape is not None:
            self.rank = len(shape)
            if self.rank == 2 and isinstance(shape[1], int):
                self.features = shape[1]
        while True:
            users = self.g.users(x)
            if len(users) == 1 and x not in self.g.outputs:
                nxt = self.step(users[0], x)
                if nxt is not None:
                    x = nxt
                    continue
            elif len(users) > 1 and x not in self.g.outputs:
                nxt = self.gelu(x, users) or self.softplus(x, users)
                if nxt is not None:
                    x = nxt
                    continue
            if self.rank != 2:
                raise ValueError(f"from_onnx: the input has {self.rank} dimensions and is not "
                                 "flattened to (batch, features) before the first layer")
            self.finish(x, users)
            return

    def finish(self, x: str, users: List[Any]) -> None:
        """The network ends at ``x``: what follows must be a classifier's label/probability head."""
        rest = [n for i, n in enumerate(self.g.nodes) if i not in self.g.used]
        for node in users + rest:
            if node.op_type not in _HEAD_OPS or node.domain not in ("", "ai.onnx", "ai.onnx.ml"):
                # Name where the network stops being readable: the first node after it.
                first = users[0] if users else node
                raise self.g.fail(first, f"is not supported here (blockprop reads MLP graphs: {SUPPORTED})")
        if not rest and x not in self.g.outputs:
            raise ValueError(f"from_onnx: tensor {x!r} ends the network but is not a graph output")
        if rest:  # a classifier: keep its logits (drop the Softmax / Sigmoid the head reads)
            ops = {n.op_type for n in users}  # the head's softmax / sigmoid, or the one dropped here
            last = self.specs[-1] if self.specs else ("",)
            if last[0] == "softmax" or last[0] == "act" and last[1] == "sigmoid":
                ops.add("Softmax" if last[0] == "softmax" else "Sigmoid")
                self.specs.pop()
            self.loss = "cross_entropy" if "Softmax" in ops else "bce" if "Sigmoid" in ops else None

    def step(self, node: Any, x: str) -> Optional[str]:
        """Match the layer that starts at ``node`` (its input ``x``); None when ``node`` is no
        layer (a classifier head may start there)."""
        g, op = self.g, node.op_type
        if node.domain not in ("", "ai.onnx"):
            return None
        a = g.attrs(node)
        if op == "Gemm":
            return self.gemm(node, x, a)
        if op == "MatMul":
            return self.matmul(node, x)
        if op in _UNARY:
            return self.activation(node, _UNARY[op], None)
        if op == "LeakyRelu":
            return self.activation(node, "leaky_relu", _attr_float(a.get("alpha", 0.01)))
        if op == "Elu":
            return self.activation(node, "elu", _attr_float(a.get("alpha", 1.0)))
        if op == "Gelu":
            if a.get("approximate", b"none") not in (b"none", "none"):
                raise g.fail(node, f"is GELU's {a['approximate']!r} approximation; blockprop's GELU is "
                                   "the exact (erf) one")
            return self.activation(node, "gelu", None)
        if op == "Softmax":
            default = -1 if self.opset >= 13 else 1
            if a.get("axis", default) not in (1, -1):
                raise g.fail(node, f"is a softmax over axis {a['axis']}; blockprop's is over the features")
            return self.record(node, ("softmax",))
        if op == "BatchNormalization":
            return self.norm(node, x, "batchnorm", a)
        if op == "LayerNormalization":
            return self.norm(node, x, "layernorm", a)
        if op in ("Identity", "Dropout"):
            if op == "Dropout" and (len(node.input) > 2 and node.input[2]
                                    or len(node.output) > 1 and node.output[1] and g.users(node.output[1])):
                raise g.fail(node, "is a dropout in training mode (or its mask is used)")
            return self.record(node, ("identity", node.name))
        if op == "Cast":
            if g.onnx.helper.tensor_dtype_to_np_dtype(a["to"]).name not in _FLOATS:
                return None
            return self.record(node, None)
        if op in ("Flatten", "Reshape"):
            return self.flatten(node, a)
        return None

    def record(self, node: Any, spec: Optional[Tuple[Any, ...]], *more: Any) -> str:
        if spec is not None:
            self.specs.append(spec)
        self.g.use(node, *more)
        return str((more[-1] if more else node).output[0])

    # --- layers -------------------------------------------------------------------------------
    def weights(self, node: Any, W: np.ndarray, b: Optional[np.ndarray]) -> None:
        out, inp = W.shape
        if self.rank != 2:
            raise self.g.fail(node, f"multiplies a {self.rank}-dimensional tensor; blockprop's layers "
                                    "take (batch, features)")
        if self.features is not None and inp != self.features:
            raise self.g.fail(node, f"takes {inp} features but receives {self.features}")
        self.features = out

    def bias(self, node: Any, value: Optional[np.ndarray], out: int, what: str) -> np.ndarray:
        if value is None:
            raise self.g.fail(node, f"adds a {what} that is not a constant")
        if value.size == 1:
            return np.full(out, value.reshape(()), value.dtype)
        if value.shape not in ((out,), (1, out)):
            raise self.g.fail(node, f"adds a {what} of shape {value.shape}; expected ({out},) or (1, {out})")
        return value.reshape(out)

    def gemm(self, node: Any, x: str, a: Dict[str, Any]) -> str:
        g = self.g
        if node.input[0] != x or a.get("transA", 0):
            raise g.fail(node, "multiplies from the other side (transA, or the data as B)")
        B = g.const(node.input[1])
        if B is None or B.ndim != 2:
            raise g.fail(node, "has a weight matrix B that is not a 2-D constant")
        W = B if a.get("transB", 0) else B.T
        alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
        W = W if alpha == 1.0 else W * np.asarray(alpha, W.dtype)
        b = None
        if len(node.input) > 2 and node.input[2]:
            b = self.bias(node, g.const(node.input[2]), W.shape[0], "bias C")
            b = b if beta == 1.0 else b * np.asarray(beta, b.dtype)
        self.weights(node, W, b)
        return self.record(node, ("dense", np.ascontiguousarray(W), b, node.name))

    def matmul(self, node: Any, x: str) -> str:
        g = self.g
        B = g.const(node.input[1]) if node.input[0] == x else None
        if B is None or B.ndim != 2:
            raise g.fail(node, "is not the data times a constant 2-D weight matrix")
        W = np.ascontiguousarray(B.T)
        add = g.sole_user(node.output[0], "Add")
        b = None
        if add is not None:
            other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
            b = self.bias(add, g.const(other), W.shape[0], "bias")
        self.weights(node, W, b)
        if add is None:
            return self.record(node, ("dense", W, None, node.name))
        return self.record(node, ("dense", W, b, node.name), add)

    def activation(self, node: Any, kind: str, alpha: Optional[float], *more: Any) -> str:
        return self.record(node, ("act", kind, alpha, node.name), *more)

    def norm(self, node: Any, x: str, kind: str, a: Dict[str, Any]) -> str:
        g = self.g
        if node.input[0] != x:
            raise g.fail(node, "normalizes a constant, not the data")
        arrays = [g.const(name) if name else None for name in node.input[1:]]
        if kind == "batchnorm":
            if a.get("training_mode", 0) or any(g.users(o) for o in node.output[1:] if o):
                raise g.fail(node, "is in training mode; blockprop reads inference graphs")
            if len(arrays) != 4 or any(v is None for v in arrays):
                raise g.fail(node, "has a scale, bias, mean or variance that is not a constant")
        else:
            axis = a.get("axis", -1)
            if axis not in (-1, self.rank - 1):
                raise g.fail(node, f"normalizes from axis {axis}; blockprop's LayerNorm normalizes the "
                                   "last (features) axis")
            if any(g.users(o) for o in node.output[1:] if o):
                raise g.fail(node, "has its mean / inverse deviation outputs used")
            if not arrays or arrays[0] is None or (len(arrays) > 1 and node.input[2] and arrays[1] is None):
                raise g.fail(node, "has a scale or bias that is not a constant")
            if len(arrays) < 2 or arrays[1] is None:
                arrays = [arrays[0], np.zeros_like(arrays[0])]
        n = self.features if self.features is not None else int(np.asarray(arrays[0]).size)
        checked = [np.asarray(v).reshape(-1) for v in arrays if v is not None]
        if any(v.size != n for v in checked):
            raise g.fail(node, f"has parameters of sizes {[v.size for v in checked]} for {n} features")
        self.features = n
        return self.record(node, (kind, checked, _attr_float(a.get("epsilon", 1e-5))))

    def flatten(self, node: Any, a: Dict[str, Any]) -> Optional[str]:
        """Flatten (axis 1) or Reshape to (batch, features): identity on 2-D data."""
        g = self.g
        if node.op_type == "Flatten":
            if a.get("axis", 1) != 1:
                return None
        else:
            target = g.const(node.input[1])
            if target is None or target.ndim != 1 or target.size != 2:
                return None
            if target[0] not in (0, -1) or not (target[1] == -1 or self.features is None
                                                or self.rank > 2 or target[1] == self.features):
                return None
            if target[0] == -1 and target[1] == -1:
                return None
        shape = self.input_shape
        if self.rank > 2:
            if shape is None or not all(isinstance(d, int) for d in shape[1:]):
                raise g.fail(node, "flattens an input whose feature dimensions are not known")
            self.features = int(np.prod(shape[1:]))
            self.rank = 2
        return self.record(node, None)

    # --- multi-node patterns ------------------------------------------------------------------
    def gelu(self, x: str, users: List[Any]) -> Optional[str]:
        """``x·(1 + erf(x/√2))·½`` in the orders exporters write it."""
        g = self.g
        scale = next((n for n in users if (n.op_type == "Div" and n.input[0] == x and _close(g.const(n.input[1]), _SQRT2))
                      or (n.op_type == "Mul" and x in n.input and _close(g.const(
                          n.input[1] if n.input[0] == x else n.input[0]), 1 / _SQRT2))), None)
        if scale is None:
            return None
        erf = g.sole_user(scale.output[0], "Erf")
        add = g.sole_user(erf.output[0], "Add") if erf is not None else None
        if erf is None or add is None or not _close(g.const(add.input[1] if add.input[0] == erf.output[0] else add.input[0]), 1.0):
            return None
        nodes, half, has_x = [scale, erf, add], 1.0, False
        t = add.output[0]
        while not (has_x and _close(np.array(half), 0.5)):
            mul = g.sole_user(t, "Mul")
            if mul is None:
                return None
            other = mul.input[1] if mul.input[0] == t else mul.input[0]
            c = g.const(other)
            if c is not None and c.size == 1:
                half *= float(c.reshape(()))
            elif other == x and not has_x:
                has_x = True
            else:  # (½·x) computed beside: Mul(x, 0.5)
                side = next((n for n in users if n.op_type == "Mul" and n.output[0] == other
                             and x in n.input), None)
                if side is None or has_x:
                    return None
                c = g.const(side.input[1] if side.input[0] == x else side.input[0])
                if c is None or c.size != 1:
                    return None
                half, has_x = half * float(c.reshape(())), True
                nodes.append(side)
            nodes.append(mul)
            t = mul.output[0]
        if {id(n) for n in users} - {id(n) for n in nodes}:
            return None  # x is used elsewhere too
        return self.activation(nodes[-1], "gelu", None, *nodes[:-1], nodes[-1])

    def softplus(self, x: str, users: List[Any]) -> Optional[str]:
        """``Where(x > threshold, x, Softplus(x))``: PyTorch's nn.Softplus (beta 1)."""
        g = self.g
        ops = {n.op_type: n for n in users}
        sp, gt = ops.get("Softplus"), ops.get("Greater")
        if len(users) != 3 or sp is None or gt is None or gt.input[0] != x:
            return None
        threshold = g.const(gt.input[1])
        where = g.sole_user(gt.output[0], "Where")
        if threshold is None or threshold.size != 1 or float(threshold.reshape(())) < 15 or where is None:
            return None  # (above 15, softplus(x) = x to float32 precision)
        if list(where.input) != [gt.output[0], x, sp.output[0]] or ops.get("Where") is not where:
            return None
        return self.activation(sp, "softplus", None, gt, where)


def _build(specs: List[Tuple[Any, ...]], dtype: str) -> List[Layer]:
    """Layers from the specs: an activation right after a linear layer is fused into it."""
    layers: List[Layer] = []
    for spec in specs:
        kind = spec[0]
        last = layers[-1] if layers else None
        if kind == "dense":
            W, b = spec[1], spec[2]
            dense = Dense(W.shape[1], W.shape[0], bias=b is not None, init="zeros", dtype=dtype)
            dense.W = W
            if b is not None:
                dense.b = b
            layers.append(dense)
        elif kind == "act":
            act, alpha = spec[1], spec[2]
            fusable = alpha is None or (act, alpha) in (("leaky_relu", 0.01), ("elu", 1.0))
            if type(last) is Dense and last.activation == "linear" and fusable:
                last.activation = act
            elif act == "leaky_relu":
                layers.append(LeakyReLU(alpha if alpha is not None else 0.01))
            elif act == "elu":
                layers.append(ELU(alpha if alpha is not None else 1.0))
            else:
                layers.append(_STANDALONE[act]())
        elif kind == "softmax":
            layers.append(Softmax())
        elif kind in ("batchnorm", "layernorm"):
            arrays, eps = spec[1], spec[2]
            layer: Any = (BatchNorm1d if kind == "batchnorm" else LayerNorm)(len(arrays[0]), eps=eps, dtype=dtype)
            layer.gamma.data[...] = arrays[0]
            layer.beta.data[...] = arrays[1]
            if kind == "batchnorm":
                layer.running_mean[...] = arrays[2]
                layer.running_var[...] = arrays[3]
            layers.append(layer)
    return layers


def _build_as_written(specs: List[Tuple[Any, ...]], configs: Any, dtype: str) -> Optional[List[Layer]]:
    """Layers as blockprop's ``to_onnx`` recorded them (``blockprop.layers`` metadata: each layer's
    class and config), when the graph's operations match that record one for one; else None."""
    if not isinstance(configs, list):
        return None
    layers: List[Layer] = []
    pos = 0

    def take(kind: str, act: Optional[str] = None) -> Optional[Tuple[Any, ...]]:
        nonlocal pos
        if pos < len(specs) and specs[pos][0] == kind and (act is None or specs[pos][1] == act):
            pos += 1
            return specs[pos - 1]
        return None

    try:
        for entry in configs:
            cls: Any = LAYER_TYPES[entry["class"]]
            config = dict(entry["config"], **({"dtype": dtype} if "dtype" in entry["config"] else {}))
            if cls is Dense:
                spec = take("dense")
                act = config.get("activation")
                if spec is None or (act is not None and take("act", act) is None):
                    return None
                if spec[1].shape != (config["out_features"], config["in_features"]) or (spec[2] is None) == config["bias"]:
                    return None
                dense = Dense(**dict(config, init="zeros"))
                dense.init = config["init"]
                dense.W = spec[1]
                if spec[2] is not None:
                    dense.b = spec[2]
                layers.append(dense)
                continue
            names = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh", Softplus: "softplus", GELU: "gelu",
                     LeakyReLU: "leaky_relu", ELU: "elu"}
            if cls in names:
                found = take("act", names[cls])
                if found is None:
                    return None
            elif cls is Softmax and take("softmax") is None:
                return None
            elif cls is Dropout and take("identity") is None:
                return None
            layer: Any = cls(**config)
            if cls in (BatchNorm1d, LayerNorm):
                spec = take("batchnorm" if cls is BatchNorm1d else "layernorm")
                if spec is None:
                    return None
                arrays = spec[1]
                layer.gamma.data[...] = arrays[0]
                layer.beta.data[...] = arrays[1]
                if cls is BatchNorm1d:
                    layer.running_mean[...] = arrays[2]
                    layer.running_var[...] = arrays[3]
            layers.append(layer)
    except (KeyError, TypeError, ValueError):
        return None
    return layers if pos == len(specs) else None


def _load(onnx: Any, source: Any) -> Any:
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        try:
            return onnx.load_model_from_string(bytes(source))
        except Exception as e:  # protobuf's DecodeError and friends
            raise ValueError(f"from_onnx: the bytes are not an ONNX model ({e})") from None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"from_onnx: no such file: {path!r}")
        try:
            return onnx.load(path)
        except Exception as e:
            raise ValueError(f"from_onnx: {path!r} is not an ONNX model ({e})") from None
    raise TypeError("from_onnx expects an onnx.ModelProto, the bytes of one or a file path, got "
                    f"{type(source).__name__}")


def from_onnx(source: Any, dtype: Optional[str] = None) -> Sequential:
    """A :class:`~blockprop.nn.Sequential` computing the ONNX model ``source`` (a
    ``onnx.ModelProto``, its serialized bytes, or a path to a ``.onnx`` file): an MLP graph as
    written by ``torch.onnx.export`` for an ``nn.Sequential`` of Linear layers and activations,
    by skl2onnx for scikit-learn's MLPs, or by :func:`blockprop.onnx.to_onnx` (whose graphs read
    back as the layers that were written, weights bit for bit). A classifier graph gives its
    logits (see :mod:`blockprop.onnx.reader`). ``dtype``: float32 or float64, default the weights'
    (float64 weights stay float64, anything else becomes float32). Unsupported graphs raise
    ``ValueError`` naming the node and its op."""
    onnx = onnx_module()
    model = _load(onnx, source)
    g = _Graph(onnx, model)
    inputs = [i for i in g.graph.input if i.name not in g.consts]
    if len(inputs) != 1:
        raise ValueError(f"from_onnx: the graph must have one data input, it has {len(inputs)}: "
                         f"{[i.name for i in inputs]}")
    x = inputs[0]
    kind = x.type.WhichOneof("value")
    if kind != "tensor_type" or onnx.helper.tensor_dtype_to_np_dtype(x.type.tensor_type.elem_type).name not in _FLOATS:
        raise ValueError(f"from_onnx: input {x.name!r} must be a floating-point tensor")
    shape = None
    if x.type.tensor_type.HasField("shape"):
        shape = [d.dim_value if d.HasField("dim_value") else None for d in x.type.tensor_type.shape.dim]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    reader = _Reader(g, opset, shape)
    reader.read(x.name, shape)
    if not any(s[0] == "dense" for s in reader.specs):
        raise ValueError("from_onnx: the graph has no linear layer (Gemm or MatMul)")
    if dtype is None:
        dtype = "float64" if next(s for s in reader.specs if s[0] == "dense")[1].dtype == np.float64 else "float32"
    meta = {p.key: p.value for p in model.metadata_props}
    layers = None
    if model.producer_name == "blockprop" and "blockprop.layers" in meta:
        try:
            layers = _build_as_written(reader.specs, json.loads(meta["blockprop.layers"]), dtype)
        except ValueError:
            layers = None
    result = Sequential(*(layers if layers is not None else _build(reader.specs, dtype)))
    result.loss = get_loss(reader.loss)  # softmax or sigmoid for predict_proba (and fit's default)
    return result
