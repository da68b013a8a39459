"""Training in C++: a plain stack of dense layers is trained by ``_core.mlp_train_batches``, which
runs gather, forward, loss, backward and update for many batches per call with the GIL released.

It calls the same kernels in the same order as the Python step (``Sequential._train_batch``), so
both give bit-identical weights; it only removes the trips through Python between kernels, which
dominate small batches. Models it cannot run (other layers, custom losses or optimizers) train on
the Python path.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple, cast

import numpy as np

from . import _core
from .nn.layers import ELU, Dense, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .optim import SGD, Adam

# Off: every model trains on the Python path (for tests comparing the two, and for debugging).
enabled = True

_FUSABLE = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh", LeakyReLU: "leaky_relu", ELU: "elu",
            Softplus: "softplus"}
# GELU's backward needs the pre-activation, which the C++ loop does not keep: Python path.
_NOT_IN_CPP = ("gelu",)


def _fusable(layer: Any) -> Optional[str]:
    """The fused activation a stand-alone activation layer becomes, if the core's fixed
    parameters (slope 0.01, α = 1) are the layer's."""
    if isinstance(layer, LeakyReLU) and layer.negative_slope != 0.01:
        return None
    if isinstance(layer, ELU) and layer.alpha != 1.0:
        return None
    return _FUSABLE.get(type(layer))
_LOSSES = {CrossEntropyLoss: "cross_entropy", MSELoss: "mse", BCEWithLogitsLoss: "bce"}


class Plan:
    """The model as C++ sees it: (layer index, Dense, fused activation) per dense layer."""

    def __init__(self, dense: List[Tuple[int, Dense, str]], loss: str):
        self.dense, self.loss = dense, loss


def plan(model: Any, loss_fn: Any, optimizer: Any) -> Optional[Plan]:
    """A Plan when the model is Dense layers (no GELU, no weight penalty), each optionally followed
    by one fusable activation layer, trained with a built-in loss and SGD or Adam; None otherwise."""
    if not enabled or type(loss_fn) not in _LOSSES or type(optimizer) not in (SGD, Adam):
        return None
    if isinstance(optimizer, Adam) and len({s.get("step") for s in optimizer.state.values()}) > 1:
        return None  # parameters updated different numbers of times: only the Python step copes
    dense: List[Tuple[int, Dense, str]] = []
    for i, layer in enumerate(model.layers):
        if type(layer) is Dense:
            if layer.activation in _NOT_IN_CPP or layer.l1 or layer.l2:
                return None
            dense.append((i, layer, layer.activation or "linear"))
        elif (act := _fusable(layer)) and dense and dense[-1][2] == "linear" and dense[-1][0] == i - 1:
            j, d, _ = dense[-1]
            dense[-1] = (j, d, act)
        else:
            return None
    return Plan(dense, _LOSSES[type(loss_fn)])


def _state(optimizer: Any, name: str, data: np.ndarray) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """The optimizer's buffers for one parameter, created as the Python path would create them."""
    if isinstance(optimizer, Adam):
        s = optimizer.state.get(name)
        if s is None:
            s = optimizer.state[name] = {"m": np.zeros_like(data), "v": np.zeros_like(data), "step": 0}
        return s["m"], s["v"]
    if optimizer.momentum == 0:
        return None, None
    s = optimizer.state.setdefault(name, {})
    if "velocity" not in s:
        s["velocity"] = np.zeros_like(data)
    return s["velocity"], None


def train_batches(p: Plan, optimizer: Any, X: np.ndarray, Y: np.ndarray, order: np.ndarray,
                  batch_size: int, lrs: np.ndarray) -> Tuple[float, int, int]:
    """Train on X[order] in batches of batch_size with one learning rate per batch; returns
    (Σ batch loss × batch size, rows classified right, rows seen)."""
    layers, names = [], []
    for i, d, act in p.dense:
        sw = _state(optimizer, f"{i}.W", d.weight.data)
        sb = _state(optimizer, f"{i}.b", cast(np.ndarray, d.b)) if d.use_bias else (None, None)
        layers.append((d.weight.data, d.b, act, sw[0], sw[1], sb[0], sb[1]))
        names += [f"{i}.W"] + ([f"{i}.b"] if d.use_bias else [])
    if isinstance(optimizer, Adam):
        hp = {"beta1": optimizer.betas[0], "beta2": optimizer.betas[1], "eps": optimizer.eps,
              "weight_decay": optimizer.weight_decay, "decoupled_weight_decay": optimizer.decoupled,
              "step": optimizer.state[names[0]]["step"] + 1}
        kind = "adam"
    else:
        hp = {"momentum": optimizer.momentum, "weight_decay": optimizer.weight_decay,
              "nesterov": optimizer.nesterov}
        kind = "sgd"
    loss_sum, correct, seen = _core.mlp_train_batches(layers, p.loss, kind, hp, X, Y, order,
                                                      batch_size, lrs)
    if isinstance(optimizer, Adam):
        for n in names:
            optimizer.state[n]["step"] += len(lrs)
    return loss_sum, correct, seen
