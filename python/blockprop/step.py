"""One training step, the only definition of an update: ``fit``, ``train_step`` and
``distributed.fit`` all run it, and the C++ loop (:mod:`blockprop._fastpath`) runs the same kernels
in the same order for the models it accepts, bit for bit.

An update is two halves, so that data-parallel training can average the gradients between them:

- :func:`gradients`: every layer learns the update's number (Dropout draws that update's mask),
  forward, loss, backward, then the layers' weight penalties (``Dense(l1=, l2=)``) added to the
  loss and to the gradients;
- :func:`update`: the optimizer step at learning rate ``lr``, with the diagnostics monitor (if
  any) looking at the gradients before and the weights after.

It does not count the update: the caller advances ``model.progress.updates`` (a loop does so
once per batch, and the C++ loop runs many batches per call).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .model import Model


def gradients(model: Model, X: np.ndarray, Y: np.ndarray, loss_fn: Optional[Any] = None,
              weights: Optional[np.ndarray] = None) -> Tuple[float, np.ndarray]:
    """Fill every parameter's ``grad`` with ``∂(loss + penalties)/∂p`` on the batch ``(X, Y)``
    (``X`` of the model's dtype, ``Y`` prepared by the loss); returns ``(loss + penalties,
    predictions)``. The loss is ``loss_fn``, else ``model.loss``; with ``weights`` (float64, one
    per row) its weighted mean (``Loss.weighted``). The model is in training mode."""
    for layer in model.layers:
        layer.start_update(model.progress.updates)
    pred = model.forward(X)
    loss = model.loss if loss_fn is None else loss_fn
    value, grad = loss(pred, Y) if weights is None else loss.weighted(pred, Y, weights)
    model.backward(grad)
    value += model.penalty(add_grad=True)
    return value, pred


def update(model: Model, lr: float, monitor: Any = None) -> None:
    """Apply ``model.optimizer`` to the gradients at learning rate ``lr``. ``monitor`` (a
    :class:`blockprop.diagnostics.Monitor`) sees the gradients and the update."""
    if monitor is not None:
        monitor.before_step(model)
    model.optimizer.step(model.parameters(), lr)
    if monitor is not None:
        monitor.after_step(model)


def train_batch(model: Model, X: np.ndarray, Y: np.ndarray, lr: float,
                monitor: Optional[Any] = None,
                weights: Optional[np.ndarray] = None) -> Tuple[float, np.ndarray]:
    """:func:`gradients` then :func:`update`: one whole update on one process; returns
    ``(loss + penalties, predictions)`` of the batch before the update."""
    value, pred = gradients(model, X, Y, weights=weights)
    update(model, lr, monitor)
    return value, pred
