"""Dropout: inverted scaling, a counter-based mask (reproducible, thread-count independent)."""
from __future__ import annotations

from typing import Any, Dict, Optional, cast

import numpy as np

from .. import kernels as K
from .base import Layer


class Dropout(Layer):
    """Zeroes each element with probability ``p`` in training and scales the rest by ``1/(1 − p)``;
    the identity in evaluation (``model.eval()``, ``predict``, ``evaluate``).

    The mask is a hash of ``(seed, step, element index)`` (:func:`blockprop.kernels.dropout`):
    nothing random is stored and backward regenerates it. ``step`` is set by the training loop to
    the model's update count before each batch, so a run is reproducible, a resumed (or saved and
    reloaded) run draws the masks it would have drawn, and between steps (e.g. in ``gradcheck``)
    the mask stays fixed. ``seed`` defaults to a random one, kept in the layer's config.
    """

    def __init__(self, p: float = 0.5, seed: Optional[int] = None) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float, np.number)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a number in [0, 1), got {p!r}")
        if seed is None:
            seed = int(cast(int, np.random.SeedSequence().entropy) % (2 ** 63))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 64:
            raise ValueError(f"Dropout: seed must be an integer in [0, 2**64), got {seed!r}")
        self.p, self.seed, self.step = float(p), int(seed), 0
        self._active = False  # whether the last forward dropped (training mode)

    def start_update(self, update: int) -> None:
        self.step = update

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._active = self.training and self.p > 0
        return K.dropout(x, self.p, self.seed, self.step) if self._active else x

    def infer(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        if not need_dx:
            return None
        return K.dropout_backward(dy, self.p, self.seed, self.step) if self._active else dy

    def get_config(self) -> Dict[str, Any]:
        return {"p": self.p, "seed": self.seed}

    def astype(self, dtype: Any) -> "Dropout":
        layer = Dropout(**self.get_config())
        layer.step = self.step
        return layer

    def __repr__(self) -> str:
        return f"Dropout(p={self.p!r}, seed={self.seed!r})"
