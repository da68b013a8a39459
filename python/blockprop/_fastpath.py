"""Training in C++: a plain stack of dense layers is trained by ``_core.mlp_train_batches``, which
runs gather, forward, loss, backward and update for many batches per call with the GIL released.

It calls the same kernels in the same order as the training step (:mod:`blockprop.step`), so
both give bit-identical weights; it only removes the trips through Python between kernels, which
dominate small batches. Models it cannot run (other layers, custom losses or optimizers) train on
the Python path. The contract is typed (``_core.MlpLayer``, ``LossKind``, ``SgdSettings``,
``AdamSettings``); the optimizer's state arrays and step count come from the optimizer itself
(``state_arrays``, ``step_count``, ``advance_steps``), so both paths share one state.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple, cast

import numpy as np

from . import _core, _precision
from .nn.dropout import Dropout
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


_LOSSES = {CrossEntropyLoss: _core.LossKind.cross_entropy, MSELoss: _core.LossKind.mse,
           BCEWithLogitsLoss: _core.LossKind.bce}


class Plan:
    """The model as C++ sees it: (layer index, Dense, fused activation) per dense layer, the
    Dropout after each (None: none), and the names of the parameters the optimizer updates."""

    def __init__(self, model: Any, dense: List[Tuple[int, Dense, str]], dropout: List[Optional[Dropout]],
                 loss: Any):
        self.model, self.dense, self.dropout, self.loss = model, dense, dropout, loss
        self.names = [f"{i}.{k}" for i, d, _ in dense for k in (("W", "b") if d.use_bias else ("W",))]


def plan(model: Any, loss_fn: Any, optimizer: Any) -> Optional[Plan]:
    """A Plan when the model is Dense layers (no GELU; weight penalties allowed), each optionally
    followed by one fusable activation layer and then one Dropout, trained with a built-in loss and
    SGD or Adam whose parameters have all had the same number of updates; None otherwise."""
    if not enabled or type(loss_fn) not in _LOSSES or type(optimizer) not in (SGD, Adam):
        return None
    dense: List[Tuple[int, Dense, str]] = []
    dropout: List[Optional[Dropout]] = []
    for i, layer in enumerate(model.layers):
        if type(layer) is Dense:
            if layer.activation in _NOT_IN_CPP:
                return None
            dense.append((i, layer, layer.activation or "linear"))
            dropout.append(None)
        elif (act := _fusable(layer)) and dense and dense[-1][2] == "linear" and dense[-1][0] == i - 1:
            j, d, _ = dense[-1]
            dense[-1] = (j, d, act)
        elif type(layer) is Dropout and dense and dropout[-1] is None and \
                (dense[-1][0] == i - 1 or (dense[-1][0] == i - 2 and _fusable(model.layers[i - 1]))):
            dropout[-1] = layer
        else:
            return None
    p = Plan(model, dense, dropout, _LOSSES[type(loss_fn)])
    if optimizer.step_count(p.names) is None:
        return None  # parameters updated different numbers of times: only the Python step copes
    return p


def _settings(optimizer: Any, names: List[str]) -> Any:
    """The optimizer's settings for the core; Adam's step is the 1-based count of the first update."""
    if isinstance(optimizer, Adam):
        done = optimizer.step_count(names)
        if done is None:  # plan() refuses this; the state changed since (e.g. load_state_dict)
            raise ValueError("the C++ loop needs every parameter at the same Adam step count")
        return _core.AdamSettings(beta1=optimizer.betas[0], beta2=optimizer.betas[1], eps=optimizer.eps,
                                  weight_decay=optimizer.weight_decay, decoupled=optimizer.decoupled,
                                  step=done + 1)
    return _core.SgdSettings(momentum=optimizer.momentum, nesterov=optimizer.nesterov,
                             weight_decay=optimizer.weight_decay)


def _layers(p: Plan, optimizer: Any) -> List[Any]:
    """The model's dense layers for the core, with their optimizer state."""
    layers = []
    for (i, d, act), drop in zip(p.dense, p.dropout):
        b = cast(np.ndarray, d.b) if d.use_bias else None
        layers.append(_core.MlpLayer(
            d.weight.data, b, getattr(_core.Activation, act), l1=float(d.l1), l2=float(d.l2),
            state_W=optimizer.state_arrays(f"{i}.W", d.weight.data),
            state_b=optimizer.state_arrays(f"{i}.b", b) if b is not None else (),
            dropout=drop.p if drop is not None else 0.0, dropout_seed=drop.seed if drop is not None else 0))
    return layers


def _advance(p: Plan, optimizer: Any, updates: int) -> None:
    """After the core ran ``updates`` updates: the optimizer's step counts, and the Dropout
    layers as the Python step leaves them after its last batch."""
    optimizer.advance_steps(p.names, updates)
    first = p.model.progress.updates
    for drop in p.dropout:
        if drop is not None:
            drop.step, drop._active = first + updates - 1, drop.p > 0


def train_batches(p: Plan, optimizer: Any, X: np.ndarray, Y: np.ndarray, order: np.ndarray,
                  batch_size: int, lrs: np.ndarray,
                  weights: Optional[np.ndarray] = None, loss_sum: float = 0.0) -> Tuple[float, int, int]:
    """Train on X[order] in batches of batch_size with one learning rate per batch (and, given
    sample weights for every row of X, each batch's weighted mean loss); returns (loss_sum + each
    batch's loss × batch size, added in turn; rows classified right; rows seen)."""
    layers = _layers(p, optimizer)
    settings = _settings(optimizer, p.names)  # after state_arrays: new parameters count 0 steps
    # Dropout masks: batch k is update progress.updates + k, as step.gradients numbers them.
    loss_sum, correct, seen = _core.mlp_train_batches(layers, p.loss, settings, X, Y, order,
                                                      batch_size, lrs, dropout_step=p.model.progress.updates,
                                                      weights=weights,
                                                      bf16=_precision.current() == "bfloat16",
                                                      loss_sum=loss_sum)
    _advance(p, optimizer, len(lrs))
    return loss_sum, correct, seen


def train_many(plans: List[Plan], optimizers: List[Any], X: np.ndarray, Ys: List[np.ndarray],
               order: np.ndarray, batch_size: int, lrs: List[np.ndarray],
               loss_sums: List[float], weights: Optional[np.ndarray] = None) -> List[Tuple[float, int, int]]:
    """:func:`train_batches` for several models on the same batches ``X[order]`` (each with its
    own targets, learning rates and loss sum so far; the same sample weights, if any), in one call of
    the core that runs their first layers as one GEMM; returns each model's (loss sum, rows right,
    rows)."""
    models: List[Any] = []
    for p, opt, Y, lr, total in zip(plans, optimizers, Ys, lrs, loss_sums):
        layers = _layers(p, opt)
        models.append((layers, p.loss, _settings(opt, p.names), Y, lr, p.model.progress.updates,
                       total, weights))
    out = _core.mlp_many_train_batches(models, X, order, batch_size)
    for p, opt, lr in zip(plans, optimizers, lrs):
        _advance(p, opt, len(lr))
    return [(float(loss), int(right), int(seen)) for loss, right, seen in out]
