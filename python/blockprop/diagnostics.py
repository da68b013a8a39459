"""Training diagnostics: the failure modes every backprop tutorial warns about.

``fit(..., diagnostics=True)`` records, per epoch and per Dense layer ``i`` (keys of the history):

- ``"{i}.grad_norm"``: mean over the epoch's batches of ``‖∂L/∂W‖₂`` (penalty included);
- ``"{i}.weight_norm"``: ``‖W‖₂`` at the end of the epoch;
- ``"{i}.update_ratio"``: mean over batches of ``‖ΔW‖₂ / ‖W‖₂`` (W before the step; healthy
  training sits around 1e-3, much larger is unstable, much smaller is not learning);
- ``"{i}.dead_relu"`` for each layer ``i`` whose output is a ReLU (``Dense(..., "relu")`` or a
  ``ReLU`` layer): the fraction of its units that were **dead for the whole epoch**, i.e. output 0
  for every training sample of every batch (they get no gradient, so they stay dead).

The norms come from compiled kernels (``sum_squares``, ``sum_squared_diff``, ``mark_active``),
one pass over each layer's weights and ReLU outputs per batch: small next to the GEMMs. Models
with diagnostics train on the Python path (the C++ loop does not report per-layer gradients).

At the end of an epoch a :class:`TrainingDiagnosticWarning` is issued (once per layer and kind
per ``fit``) when a layer's gradient norm is below ``Diagnostics.vanishing`` (vanishing), above
``Diagnostics.exploding`` or not finite (exploding), or more than ``Diagnostics.dead_fraction``
of its ReLUs are dead.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from . import kernels as K
from .nn.layers import Dense, ReLU

__all__ = ["TrainingDiagnosticWarning", "Diagnostics", "Monitor"]


class TrainingDiagnosticWarning(UserWarning):
    """A layer's gradients vanish or explode, most of its ReLUs are dead, or the training loss is
    not finite (``fit`` warns of that last one even without diagnostics)."""


@dataclass
class Diagnostics:
    """Warning thresholds (``fit(..., diagnostics=Diagnostics(exploding=1e4))``)."""
    vanishing: float = 1e-7      # mean ‖∂L/∂W‖ below this: vanishing gradients
    exploding: float = 1e3       # mean ‖∂L/∂W‖ above this (or NaN/inf): exploding gradients
    dead_fraction: float = 0.5   # more than this fraction of a ReLU layer's units dead: warn
    warn: bool = True            # False: record only

    def __post_init__(self) -> None:
        for name in ("vanishing", "exploding", "dead_fraction"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0):
                raise ValueError(f"Diagnostics: {name} must be a number ≥ 0, got {v!r}")
        if not self.vanishing < self.exploding:
            raise ValueError("Diagnostics: vanishing must be below exploding")
        if self.dead_fraction > 1:
            raise ValueError(f"Diagnostics: dead_fraction must lie in [0, 1], got {self.dead_fraction!r}")


def prepare(diagnostics: Any) -> Optional[Diagnostics]:
    """``fit``'s ``diagnostics`` argument: False/None (off), True (defaults) or a Diagnostics."""
    if diagnostics is None or diagnostics is False:
        return None
    if diagnostics is True:
        return Diagnostics()
    if isinstance(diagnostics, Diagnostics):
        return diagnostics
    raise TypeError(f"diagnostics must be True, False or a blockprop.diagnostics.Diagnostics, got {diagnostics!r}")


def _relu_outputs(model: Any) -> List[Tuple[int, Any]]:
    """(layer index, layer) of every layer whose output is a ReLU's."""
    return [(i, l) for i, l in enumerate(model.layers)
            if isinstance(l, ReLU) or (isinstance(l, Dense) and l.activation == "relu")]


class Monitor:
    """Collects the per-batch measurements of one ``fit`` (see the module docstring)."""

    def __init__(self, model: Any, config: Diagnostics):
        self.config = config
        self.dense = [(i, l) for i, l in enumerate(model.layers) if isinstance(l, Dense)]
        self.relus = _relu_outputs(model)
        self._before = {i: np.empty_like(l.weight.data) for i, l in self.dense}
        self._warned: Set[Tuple[int, str]] = set()
        self.start_epoch()

    def start_epoch(self) -> None:
        self.batches = 0
        self.grad = {i: 0.0 for i, _ in self.dense}
        self.ratio = {i: 0.0 for i, _ in self.dense}
        self.active: Dict[int, Optional[np.ndarray]] = {i: None for i, _ in self.relus}

    def before_step(self, model: Any) -> None:
        """After backward (gradients and activations are fresh), before the optimizer step."""
        self.batches += 1
        for i, layer in self.dense:
            self.grad[i] += math.sqrt(K.sum_squares(layer.weight.grad))
            np.copyto(self._before[i], layer.weight.data)
        for i, layer in self.relus:
            y = layer._y
            active = self.active[i]
            if active is None:
                active = self.active[i] = np.zeros(y.shape[1], dtype=bool)
            K.mark_active(y, active)

    def after_step(self, model: Any) -> None:
        for i, layer in self.dense:
            norm = math.sqrt(K.sum_squares(self._before[i]))
            step = math.sqrt(K.sum_squared_diff(layer.weight.data, self._before[i]))
            self.ratio[i] += step / norm if norm > 0 else (0.0 if step == 0 else math.inf)

    def end_epoch(self, epoch: int, loss: float) -> Dict[str, float]:
        """The epoch's per-layer metrics; warns on trouble."""
        n = max(self.batches, 1)
        out: Dict[str, float] = {}
        for i, layer in self.dense:
            g = self.grad[i] / n
            out[f"{i}.grad_norm"] = g
            out[f"{i}.weight_norm"] = math.sqrt(K.sum_squares(layer.weight.data))
            out[f"{i}.update_ratio"] = self.ratio[i] / n
            if not math.isfinite(g) or g > self.config.exploding:
                self._warn(i, "exploding", f"layer {i} ({layer!r}): exploding gradients in epoch "
                           f"{epoch}: mean ‖∂L/∂W‖ = {g:.3g} (threshold {self.config.exploding:g}); "
                           "lower the learning rate, check the initialization, or normalize the inputs")
            elif g < self.config.vanishing:
                self._warn(i, "vanishing", f"layer {i} ({layer!r}): vanishing gradients in epoch "
                           f"{epoch}: mean ‖∂L/∂W‖ = {g:.3g} (threshold {self.config.vanishing:g}); "
                           "the layer is not learning (saturated or dead activations upstream?)")
        for i, layer in self.relus:
            active = self.active[i]
            if active is None:
                continue
            dead = 1.0 - float(np.count_nonzero(active)) / active.size
            out[f"{i}.dead_relu"] = dead
            if dead > self.config.dead_fraction:
                self._warn(i, "dead", f"layer {i} ({layer!r}): {dead:.0%} of its ReLU units are dead "
                           f"(output 0 for every sample of epoch {epoch}); lower the learning rate, "
                           "check biases and initialization, or use LeakyReLU/ELU")
        if not math.isfinite(loss):
            self._warn(-1, "loss", f"the training loss is {loss} in epoch {epoch}: training diverged")
        return out

    def _warn(self, layer: int, kind: str, message: str) -> None:
        if self.config.warn and (layer, kind) not in self._warned:
            self._warned.add((layer, kind))
            warnings.warn(message, TrainingDiagnosticWarning, stacklevel=4)
