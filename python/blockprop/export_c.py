"""``export_c(model, path, name="model")``: a trained network as one self-contained C99 file.

The file is its own header: the first part declares ``void <name>_predict(const float *x, int n,
float *y)`` and the sizes (``<NAME>_IN_FEATURES``, ``<NAME>_OUT_FEATURES``); the rest, skipped
when ``<NAME>_HEADER_ONLY`` is defined, holds the weights as ``static const`` arrays of hex-float
literals (bit-exact) and the function. It needs libc and libm only (link with ``-lm``),
allocates nothing (two rows of scratch on the stack) and keeps no state, so it is reentrant.

Arithmetic is in the model's dtype: a float32 model computes in ``float``, a float64 model in
``double`` (weights exact either way); the interface is ``float`` for both. Outputs are the
network's, as :meth:`blockprop.nn.Sequential.predict` gives them (logits for a classifier
without a final Softmax).
"""
from __future__ import annotations

import os
import re
from typing import Any, List

import numpy as np

from .nn.layers import (ELU, GELU, BatchNorm1d, Dense, Dropout, LayerNorm, LeakyReLU, ReLU, Sigmoid,
                        Softmax, Softplus, Tanh)
from .nn.sequential import Sequential

__all__ = ["export_c"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while _Bool _Complex _Imaginary".split())
_PER_LINE = 4  # hex literals per line of an array

# Element-wise activations as C expressions of `v` (`{s}`: "f" for float's libm functions).
_ACTIVATIONS = {
    "linear": "v",
    "relu": "v > 0 ? v : ({t})0",
    "sigmoid": "v >= 0 ? ({t})1 / (1 + exp{s}(-v)) : exp{s}(v) / (1 + exp{s}(v))",
    "tanh": "tanh{s}(v)",
    "leaky_relu": "v < 0 ? {slope} * v : v",
    "elu": "v > 0 ? v : {alpha} * expm1{s}(v)",
    "gelu": "({t})0.5 * v * (1 + erf{s}(v * ({t})0.70710678118654752440))",
    "softplus": "(v > 0 ? v : 0) + log1p{s}(exp{s}(-fabs{s}(v)))",
}


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"export_c: name must be a C identifier (letters, digits, _; not starting "
                         f"with a digit), got {name!r}")
    if name in _C_KEYWORDS:
        raise ValueError(f"export_c: name {name!r} is a C keyword")
    if name.startswith("__") or (name[0] == "_" and name[1:2].isupper()):
        raise ValueError(f"export_c: name {name!r} is reserved to the C implementation "
                         "(it starts with __ or _ and a capital)")
    return name


def _network(model: Any) -> Sequential:
    """The Sequential to export: ``model`` itself, or a fitted blockprop estimator's ``model_``."""
    if isinstance(model, Sequential):
        return model
    if hasattr(model, "get_params") and type(model).__module__.startswith("blockprop"):
        net = getattr(model, "model_", None)
        if not isinstance(net, Sequential):
            raise ValueError(f"export_c: this {type(model).__name__} is not fitted yet: call fit first")
        return net
    raise TypeError(f"export_c: model must be a blockprop Sequential or a fitted blockprop "
                    f"estimator, got {type(model).__name__}")


class _Writer:
    """Builds the C text: arrays of the model's dtype, and the per-row code of each layer."""

    def __init__(self, name: str, dtype: np.dtype):
        self.name, self.dtype = name, dtype
        self.t, self.s = ("float", "f") if dtype == np.float32 else ("double", "")
        self.arrays: List[str] = []
        self.body: List[str] = []

    def literal(self, value: float) -> str:
        """A C literal of the exact value (a hex float, ``f`` for float)."""
        mantissa, exponent = float(self.dtype.type(value)).hex().split("p")
        text = mantissa.rstrip("0").rstrip(".") + "p" + exponent  # 0x1.8p+1, 0x1p-3, 0x0p+0
        return text + ("f" if self.t == "float" else "")

    def array(self, label: str, values: np.ndarray) -> str:
        flat = np.ascontiguousarray(values, dtype=self.dtype).ravel()
        if not np.isfinite(flat).all():
            raise ValueError(f"export_c: {label} holds NaN or infinity; a C export of it would be "
                             "useless (retrain or fix the weights)")
        ident = f"{self.name}_{re.sub(r'[^A-Za-z0-9_]', '_', label)}"
        items = [self.literal(v) for v in flat.tolist()]
        lines = [", ".join(items[i:i + _PER_LINE]) for i in range(0, len(items), _PER_LINE)]
        self.arrays.append(f"/* {label}: {values.shape} */\n"
                           f"static const {self.t} {ident}[{len(items)}] = {{\n    "
                           + ",\n    ".join(lines) + "\n};\n")
        return ident

    def elementwise(self, width: int, expression: str, **params: float) -> None:
        expr = expression.format(t=self.t, s=self.s, **{k: f"({self.t}){self.literal(v)}"
                                                           for k, v in params.items()})
        self.body.append(f"        for (i = 0; i < {width}; ++i) {{\n"
                         f"            const {self.t} v = a[i];\n"
                         f"            b[i] = {expr};\n"
                         "        }\n        SWAP();\n")


def _emit(w: _Writer, index: int, layer: Any, width: int) -> int:
    """Append layer ``index``'s code (reading row ``a``, writing ``b``); returns its output width."""
    t, s = w.t, w.s
    if isinstance(layer, Dense):
        W = w.array(f"{index}.W", layer.W)
        bias = w.array(f"{index}.b", layer.b) if layer.b is not None else None
        act = _ACTIVATIONS[layer.activation].format(t=t, s=s, slope=f"({t}){w.literal(0.01)}",
                                                    alpha=f"({t})1")
        init = bias + "[o]" if bias else f"({t})0"
        w.body.append(f"        for (o = 0; o < {layer.out_features}; ++o) {{\n"
                      f"            const {t} *wo = {W} + (size_t)o * {layer.in_features};\n"
                      f"            {t} v = {init};\n"
                      f"            for (i = 0; i < {layer.in_features}; ++i) v += wo[i] * a[i];\n"
                      f"            b[o] = {act};\n"
                      "        }\n        SWAP();\n")
        return layer.out_features
    simple = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh", GELU: "gelu", Softplus: "softplus"}
    if type(layer) in simple:
        w.elementwise(width, _ACTIVATIONS[simple[type(layer)]])
    elif isinstance(layer, LeakyReLU):
        w.elementwise(width, _ACTIVATIONS["leaky_relu"], slope=layer.negative_slope)
    elif isinstance(layer, ELU):
        w.elementwise(width, _ACTIVATIONS["elu"], alpha=layer.alpha)
    elif isinstance(layer, Dropout):
        w.body.append(f"        /* {index}: Dropout: the identity in evaluation */\n")
    elif isinstance(layer, Softmax):
        w.body.append(f"        {{\n            {t} top = a[0], sum = 0;\n"
                      f"            for (i = 1; i < {width}; ++i) if (a[i] > top) top = a[i];\n"
                      f"            for (i = 0; i < {width}; ++i) {{ b[i] = exp{s}(a[i] - top); sum += b[i]; }}\n"
                      f"            for (i = 0; i < {width}; ++i) b[i] /= sum;\n"
                      "        }\n        SWAP();\n")
    elif isinstance(layer, BatchNorm1d):  # (x − mean)·(γ/√(var + eps)) + β, the scale as predict's
        scale = layer.gamma.data / np.sqrt(layer.running_var + layer.dtype.type(layer.eps))
        mean = w.array(f"{index}.running_mean", layer.running_mean)
        sc = w.array(f"{index}.scale", scale)
        beta = w.array(f"{index}.beta", layer.beta.data)
        w.body.append(f"        for (i = 0; i < {width}; ++i) b[i] = (a[i] - {mean}[i]) * {sc}[i] + {beta}[i];\n"
                      "        SWAP();\n")
    elif isinstance(layer, LayerNorm):
        gamma = w.array(f"{index}.gamma", layer.gamma.data)
        beta = w.array(f"{index}.beta", layer.beta.data)
        eps = f"({t}){w.literal(layer.eps)}"
        w.body.append(f"        {{\n            {t} mean = 0, var = 0, inv;\n"
                      f"            for (i = 0; i < {width}; ++i) mean += a[i];\n"
                      f"            mean /= {width};\n"
                      f"            for (i = 0; i < {width}; ++i) var += (a[i] - mean) * (a[i] - mean);\n"
                      f"            var /= {width};\n"
                      f"            inv = 1 / sqrt{s}(var + {eps});\n"
                      f"            for (i = 0; i < {width}; ++i) b[i] = (a[i] - mean) * inv * {gamma}[i] + {beta}[i];\n"
                      "        }\n        SWAP();\n")
    else:
        raise TypeError(f"export_c: layer {index} ({layer!r}) has no C form; export_c knows "
                        "Dense, the activation layers, Softmax, Dropout, BatchNorm1d and LayerNorm")
    return width


def _source(net: Sequential, name: str) -> str:
    w = _Writer(name, net.dtype)
    widest = width = net.in_features
    for i, layer in enumerate(net.layers):
        width = _emit(w, i, layer, width)
        widest = max(widest, width)
    up, t = name.upper(), w.t
    summary = "\n".join(f" *   {i}: {layer!r}" for i, layer in enumerate(net.layers))
    guard = f"{up}_IMPLEMENTATION_INCLUDED_"
    return f"""/* {name}: a blockprop {net.dtype.name} network exported by blockprop.export_c.
 *
{summary}
 *
 * C99, libc and libm only (link with -lm); no allocation, no state (reentrant, thread-safe).
 * One file as source and header: compile it as a .c file, or #include it in one translation
 * unit; elsewhere #define {up}_HEADER_ONLY before including it for the declarations alone.
 * Arithmetic in {t} (the model's dtype); weights exact (hex floats).
 */
#ifndef {up}_H_
#define {up}_H_

#define {up}_IN_FEATURES {net.in_features}
#define {up}_OUT_FEATURES {net.out_features}

/* y[r * {up}_OUT_FEATURES + j] = output j of row r of x (rows of {up}_IN_FEATURES floats),
 * for r < n, as blockprop's Sequential.predict; nothing for n <= 0. */
void {name}_predict(const float *x, int n, float *y);

#endif /* {up}_H_ */

#if !defined({up}_HEADER_ONLY) && !defined({guard})
#define {guard}

#include <math.h>
#include <stddef.h>

{"".join(w.arrays)}
void {name}_predict(const float *x, int n, float *y)
{{
    {t} row0[{widest}], row1[{widest}];
    int r, i, o;
    for (r = 0; r < n; ++r) {{
        {t} *a = row0, *b = row1, *swap;
#define SWAP() (swap = a, a = b, b = swap)
        for (i = 0; i < {net.in_features}; ++i) a[i] = ({t})x[(size_t)r * {net.in_features} + i];
{"".join(w.body)}#undef SWAP
        for (i = 0; i < {net.out_features}; ++i) y[(size_t)r * {net.out_features} + i] = (float)a[i];
    }}
}}

#endif /* {up}_HEADER_ONLY */
"""


def export_c(model: Any, path: Any, name: str = "model") -> str:
    """Write ``model`` (a :class:`blockprop.nn.Sequential`, or a fitted blockprop scikit-learn
    estimator: its network) to ``path`` as one self-contained C99 file with
    ``void <name>_predict(const float *x, int n, float *y)``; returns the path.

    Every blockprop layer has a C form: Dense with each fused activation, the activation layers,
    Softmax, Dropout (the identity) and BatchNorm1d / LayerNorm in evaluation form. ``name`` must
    be a C identifier; it prefixes every symbol (macros in capitals). Details: module doc."""
    name = _check_name(name)
    net = _network(model)
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"export_c: path must be a file path, got {path!r}") from None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"export_c: cannot write {path!r}: directory {folder!r} does not exist")
    text = _source(net, name)
    try:
        with open(path, "w", encoding="ascii", newline="\n") as f:
            f.write(text)
    except OSError as e:
        raise type(e)(f"export_c: cannot write {path!r}: {e.strerror or e}") from None
    return path

