"""Weight exchange with PyTorch: a blockprop :class:`~blockprop.nn.Sequential` of Dense layers and
activations ↔ the ``state_dict`` of the equivalent ``torch.nn.Sequential`` of ``nn.Linear`` and
activation modules, so the same input gives the same output in both.

A Dense layer with a fused activation is two PyTorch modules, so PyTorch's indices count the
activations too::

    Sequential(Dense(4, 8, "relu"), Dense(8, 3))  ↔  nn.Sequential(Linear(4, 8), ReLU(), Linear(8, 3))
    "0.W", "0.b", "1.W", "1.b"                     ↔  "0.weight", "0.bias", "2.weight", "2.bias"

Both store ``W`` as ``(out_features, in_features)``, so weights are copied as they are. Supported:
Dense (linear, relu, sigmoid, tanh; with or without bias) and the stand-alone ReLU, Sigmoid, Tanh
and Softmax (over features, ``nn.Softmax(dim=1)``) layers; anything else raises ``ValueError``.

PyTorch is optional: it is imported only by the functions that create or read tensors and modules
(``state_dict(model, as_numpy=True)`` and ``load_state_dict`` with NumPy arrays work without it).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from .nn.layers import Dense, Layer, ReLU, Sigmoid, Softmax, Tanh
from .nn.sequential import Sequential

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["torch_keys", "state_dict", "load_state_dict", "to_torch", "from_torch"]

# blockprop's fused activation / stand-alone layer -> the torch.nn module class name.
_FUSED = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}
_STANDALONE: Dict[type, str] = {ReLU: "ReLU", Sigmoid: "Sigmoid", Tanh: "Tanh", Softmax: "Softmax"}
_FROM_TORCH = {"ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise ImportError("blockprop.torch_compat needs PyTorch for tensors and modules "
                          f"(pip install torch), or use as_numpy=True ({e})") from None
    return torch


def _modules(model: Sequential) -> List[Tuple[str, Optional[Dense]]]:
    """The PyTorch modules equivalent to ``model``, in order: ``("Linear", dense)`` or
    ``(activation class name, None)``."""
    if not isinstance(model, Sequential):
        raise TypeError(f"expected a blockprop Sequential, got {type(model).__name__}")
    out: List[Tuple[str, Optional[Dense]]] = []
    for i, layer in enumerate(model.layers):
        if type(layer) is Dense:
            out.append(("Linear", layer))
            if layer.activation != "linear":
                if layer.activation not in _FUSED:
                    raise ValueError(f"torch_compat: layer {i} ({layer!r}): activation "
                                     f"{layer.activation!r} has no PyTorch mapping here")
                out.append((_FUSED[layer.activation], None))
        elif type(layer) in _STANDALONE:
            out.append((_STANDALONE[type(layer)], None))
        else:
            raise ValueError(f"torch_compat: layer {i} ({layer!r}) has no PyTorch equivalent here; "
                             "supported: Dense, ReLU, Sigmoid, Tanh, Softmax")
    return out


def torch_keys(model: Sequential) -> Dict[str, str]:
    """``{PyTorch state_dict key: blockprop parameter name}``, e.g. ``{"2.weight": "1.W"}``."""
    _modules(model)  # checks every layer maps
    keys: Dict[str, str] = {}
    position = 0
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            keys[f"{position}.weight"] = f"{i}.W"
            if layer.use_bias:
                keys[f"{position}.bias"] = f"{i}.b"
            position += 2 if layer.activation != "linear" else 1
        else:
            position += 1
    return keys


def state_dict(model: Sequential, as_numpy: bool = False) -> "OrderedDict[str, Any]":
    """The weights of ``model`` under PyTorch's keys: copies, as CPU tensors of the model's dtype
    (``as_numpy=True``: as NumPy arrays, no PyTorch needed). ``module.load_state_dict`` of the
    equivalent ``nn.Sequential`` (see :func:`to_torch`) accepts it with ``strict=True``."""
    params = model.parameters()
    out: "OrderedDict[str, Any]" = OrderedDict()
    torch = None if as_numpy else _torch()
    for key, name in torch_keys(model).items():
        array = np.array(params[name].data, copy=True)
        out[key] = array if torch is None else torch.from_numpy(array)
    return out


def _as_array(value: Any, key: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch.Tensor (any device): no torch import needed to read it
        value = value.detach().cpu()
        if str(value.dtype) not in ("torch.float32", "torch.float64"):
            value = value.double()  # float16 / bfloat16 have no NumPy twin: widen, then cast below
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"load_state_dict: {key} must hold numbers, got dtype {array.dtype}")
    return array


def load_state_dict(model: Sequential, state: Mapping[str, Any]) -> None:
    """Copy a PyTorch ``state_dict`` (tensors or arrays, keys as :func:`torch_keys`) into
    ``model``, converting to the model's dtype. Keys and shapes must match exactly; nothing is
    changed unless all of them do."""
    keys = torch_keys(model)
    missing, unexpected = sorted(set(keys) - set(state)), sorted(set(state) - set(keys))
    if missing or unexpected:
        raise ValueError(f"load_state_dict: keys do not match the model (expected {list(keys)}): "
                         f"missing {missing}, unexpected {unexpected}. A state_dict of an "
                         "nn.Sequential with named modules loads through from_torch(module)")
    params = model.parameters()
    values = {}
    for key, name in keys.items():
        array = _as_array(state[key], key)
        if array.shape != params[name].data.shape:
            raise ValueError(f"load_state_dict: {key} (blockprop {name}) must have shape "
                             f"{params[name].data.shape}, got {array.shape}")
        values[name] = array
    for name, array in values.items():
        params[name].data[...] = array


def to_torch(model: Sequential) -> "torch.nn.Sequential":
    """A new ``torch.nn.Sequential`` computing what ``model`` computes, with copies of its weights
    (float32 or float64 as the model)."""
    torch = _torch()
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    modules = []
    for kind, dense in _modules(model):
        if dense is not None:
            modules.append(torch.nn.Linear(dense.in_features, dense.out_features, bias=dense.use_bias,
                                           dtype=dtype))
        elif kind == "Softmax":
            modules.append(torch.nn.Softmax(dim=1))
        else:
            modules.append(getattr(torch.nn, kind)())
    module = torch.nn.Sequential(*modules)
    module.load_state_dict(state_dict(model), strict=True)
    return module


def from_torch(module: Any, dtype: Optional[str] = None) -> Sequential:
    """A blockprop Sequential computing what the ``torch.nn.Sequential`` ``module`` computes:
    ``nn.Linear`` → Dense, a following ReLU/Sigmoid/Tanh fused into it, ``nn.Softmax(dim=1 or
    -1)`` → Softmax. ``dtype`` defaults to the weights' (float32 or float64)."""
    torch = _torch()
    if not isinstance(module, torch.nn.Sequential):
        raise TypeError(f"from_torch expects a torch.nn.Sequential, got {type(module).__name__}")
    children = list(module.named_children())
    linears = [m for _, m in children if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError("from_torch: the module has no nn.Linear layer")
    if dtype is None:
        dtype = "float64" if linears[0].weight.dtype == torch.float64 else "float32"
    specs: List[Dict[str, Any]] = []  # one per blockprop layer; Dense built once its activation is known
    for name, child in children:
        kind = type(child).__name__
        if isinstance(child, torch.nn.Linear):
            specs.append({"linear": child, "activation": None})
        elif type(child) in (torch.nn.ReLU, torch.nn.Sigmoid, torch.nn.Tanh):
            if specs and "linear" in specs[-1] and specs[-1]["activation"] is None:
                specs[-1]["activation"] = _FROM_TORCH[kind]  # fused, as blockprop's exporter writes it
            else:
                specs.append({"layer": {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh}[kind]})
        elif isinstance(child, torch.nn.Softmax):
            if child.dim not in (1, -1):
                raise ValueError(f"from_torch: module {name!r} is softmax over dim={child.dim}; "
                                 "blockprop's Softmax is over features (dim=1)")
            specs.append({"layer": Softmax})
        else:
            raise ValueError(f"from_torch: module {name!r} ({kind}) has no blockprop equivalent here; "
                             "supported: Linear, ReLU, Sigmoid, Tanh, Softmax")
    layers: List[Layer] = []
    for spec in specs:
        if "layer" in spec:
            layers.append(spec["layer"]())
            continue
        lin = spec["linear"]
        dense = Dense(lin.in_features, lin.out_features, activation=spec["activation"],
                      bias=lin.bias is not None, init="zeros", dtype=dtype)
        dense.W = _as_array(lin.weight, "weight")
        if lin.bias is not None:
            dense.b = _as_array(lin.bias, "bias")
        layers.append(dense)
    model = Sequential(*layers)  # checks that the widths chain
    return model
