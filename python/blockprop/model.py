"""What the training, inference and saving code needs of a model, and the training state it keeps.

``Model`` is the interface (a ``typing.Protocol``): :mod:`blockprop.step`, :mod:`blockprop.training`,
:mod:`blockprop.serialization`, :mod:`blockprop.callbacks` and :mod:`blockprop.distributed` are
written against it, not against :class:`blockprop.nn.Sequential`, which implements it and calls
them. So the imports point one way: ``nn.Sequential`` → training / serialization → this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Protocol

import numpy as np

from . import plotting


# Shuffling seeds lie in [0, 2**64): what the kernels (Dropout) take and what a saved model holds.
SEED_LIMIT = 2 ** 64


@dataclass
class Progress:
    """How far training has gone: drives the schedule and the per-epoch shuffles, so a resumed
    (or saved and reloaded) model continues exactly where it stopped."""
    epochs: int = 0                # epochs run so far (an interrupted one counts)
    updates: int = 0               # optimizer steps so far
    seed: Optional[int] = None     # shuffling seed; epoch k shuffles with rng([seed, k])


class History:
    """Per-epoch metrics: ``history.history["loss"]``, ``"accuracy"``, ``"val_loss"``, ``"lr"``, ``"time"``..."""

    def __init__(self) -> None:
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []

    def append(self, epoch: int, metrics: Dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(value)

    def plot(self, path: Optional[str] = None) -> Any:
        """Loss and accuracy per epoch, training and validation: a matplotlib ``Figure``, also
        saved to ``path`` when given. Needs matplotlib (the ``plot`` extra)."""
        return plotting.plot_history(self.epoch, self.history, path)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class Model(Protocol):
    """A trainable network as the training step, the loops and the file format see it."""

    layers: List[Any]              # blockprop.nn.Layer objects, applied in order
    loss: Any                      # the Loss of the last fit / train_step (None before)
    optimizer: Any                 # the Optimizer, with its state
    schedule: Any                  # epoch -> learning-rate factor
    progress: Progress
    history: Optional[History]
    stop_training: bool            # set by a callback to end fit after the current epoch
    training: bool

    @property
    def dtype(self) -> np.dtype: ...

    @property
    def in_features(self) -> int: ...

    @property
    def out_features(self) -> int: ...

    def train(self, mode: bool = True) -> Any: ...

    def forward(self, X: np.ndarray) -> np.ndarray: ...

    def backward(self, dY: np.ndarray, need_dx: bool = False) -> Optional[np.ndarray]: ...

    def parameters(self) -> Dict[str, Any]: ...

    def buffers(self) -> Dict[str, np.ndarray]: ...

    def penalty(self, add_grad: bool = False) -> float: ...

    def save(self, path: str) -> None: ...
