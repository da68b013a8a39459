"""The layer interface: ``Layer`` (forward, backward, parameters, buffers, config) and
``Parameter`` (an array and its gradient), and the dtypes a model may have. Every layer module
builds on this one; nothing here knows a particular layer."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

DTYPES = ("float32", "float64")


def check_dtype(dtype: Any) -> np.dtype:
    """``np.dtype`` of a supported model dtype (float32 or float64), else ``ValueError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}") from None
    if dt.name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dt.name!r}")
    return dt


class Parameter:
    """A trainable array and its gradient (``grad`` is replaced by every backward)."""

    __slots__ = ("data", "_grad")

    def __init__(self, data: np.ndarray):
        self.data = data
        self._grad: Optional[np.ndarray] = None

    @property
    def grad(self) -> np.ndarray:
        """The gradient, allocated (zeros) on first use: training on the C++ path keeps its
        gradients there, so a model trained only that way holds no second copy of its weights."""
        if self._grad is None:
            self._grad = np.zeros_like(self.data)
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray) -> None:
        self._grad = value

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype.name})"


class Layer:
    """Base class: ``forward(x) -> y``, ``backward(dy) -> dx``, named ``parameters()`` (trained)
    and ``buffers()`` (state that is saved but not trained, e.g. running statistics)."""

    training = True  # training (True) or evaluation mode; see Sequential.train / eval

    # The attributes in which forward keeps the last batch's arrays for backward. predict and
    # evaluate release them (see _release), so that they hold no batch after returning and the
    # next call does not allocate its activations beside the last call's.
    _cache: Tuple[str, ...] = ()

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The evaluation-mode output for ``x``, computed without changing the layer (it keeps no
        array and updates no statistic), so any number of threads may call it at once: what
        ``predict``, ``evaluate`` and ``model(X)`` in evaluation mode run. A custom layer that
        does not override it makes those calls run ``forward`` in evaluation mode instead, one
        thread at a time."""
        raise NotImplementedError

    def _release(self) -> None:
        """Drop the arrays forward kept for backward (a backward must then follow a new forward)."""
        for name in self._cache:
            setattr(self, name, None)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        raise NotImplementedError

    def start_update(self, update: int) -> None:
        """Called by the training step before each update with the model's count of updates so
        far; a layer whose training behaviour depends on the update (Dropout's mask) keeps it."""

    def parameters(self) -> Dict[str, Parameter]:
        return {}

    def buffers(self) -> Dict[str, np.ndarray]:
        """Arrays saved with the model but not trained (updated in place by ``forward``)."""
        return {}

    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments that rebuild this layer (without its weights)."""
        return {}

    def astype(self, dtype: Any) -> "Layer":
        """A copy of this layer with parameters of ``dtype``."""
        return type(self)(**self.get_config())

    def output_features(self, in_features: int) -> int:
        return in_features

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
