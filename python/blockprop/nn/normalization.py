"""Normalization layers: ``BatchNorm1d`` (over the batch) and ``LayerNorm`` (over the features)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import kernels as K
from .base import Layer, Parameter, check_dtype


def _features(cls: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{cls}: num_features must be a positive integer, got {n!r}")
    return int(n)


def _positive(cls: str, name: str, value: Any, high: float = np.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not (0 < float(value) <= high):
        raise ValueError(f"{cls}: {name} must be a number in (0, {high}], got {value!r}")
    return float(value)


class _Norm(Layer):
    """Shared parts: learnable ``gamma`` (scale, starts at 1) and ``beta`` (shift, starts at 0)."""

    _cache = ("_x", "_stats")

    def __init__(self, num_features: int, eps: float, dtype: Any) -> None:
        cls = type(self).__name__
        self.num_features = _features(cls, num_features)
        self.eps = _positive(cls, "eps", eps)
        self.dtype = check_dtype(dtype)
        self.gamma = Parameter(np.ones(self.num_features, self.dtype))
        self.beta = Parameter(np.zeros(self.num_features, self.dtype))
        self._x: Optional[np.ndarray] = None

    def parameters(self) -> Dict[str, Parameter]:
        return {"gamma": self.gamma, "beta": self.beta}

    def output_features(self, in_features: int) -> int:
        if in_features != self.num_features:
            raise ValueError(f"{self!r} expects {self.num_features} input features but the layer "
                             f"before it gives {in_features}")
        return in_features

    def astype(self, dtype: Any) -> "_Norm":
        layer = type(self)(**dict(self.get_config(), dtype=check_dtype(dtype).name))
        for name, p in self.parameters().items():
            layer.parameters()[name].data[...] = p.data
        for name, b in self.buffers().items():
            layer.buffers()[name][...] = b
        return layer


class BatchNorm1d(_Norm):
    """Normalizes each feature over the batch: ``y = (x − mean)/√(var + eps)·γ + β``.

    Training uses the batch's mean and (biased) variance and back-propagates through them; it
    also updates ``running_mean`` and ``running_var`` (unbiased) as PyTorch does:
    ``running = (1 − momentum)·running + momentum·batch``. Evaluation uses the running statistics.
    A training batch of one sample has no variance: it outputs ``β`` and leaves the running
    statistics alone.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 dtype: Any = "float32") -> None:
        super().__init__(num_features, eps, dtype)
        self.momentum = _positive("BatchNorm1d", "momentum", momentum, 1.0)
        self.running_mean = np.zeros(self.num_features, self.dtype)
        self.running_var = np.ones(self.num_features, self.dtype)
        self._stats: Optional[Tuple[np.ndarray, np.ndarray, bool]] = None  # (mean, var, batch_stats) of the last forward

    def buffers(self) -> Dict[str, np.ndarray]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        if not self.training:
            self._stats = (self.running_mean, self.running_var, False)
            return K.batch_norm_inference(x, self.gamma.data, self.beta.data, self.running_mean,
                                          self.running_var, self.eps)
        y, mean, var = K.batch_norm_forward(x, self.gamma.data, self.beta.data, self.eps)
        self._stats = (mean, var, True)
        n, m = len(x), self.momentum
        if n > 1:
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += (m * n / (n - 1)) * var
        return y

    def infer(self, x: np.ndarray) -> np.ndarray:
        return K.batch_norm_inference(x, self.gamma.data, self.beta.data, self.running_mean,
                                      self.running_var, self.eps)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        if self._x is None or self._stats is None:
            raise RuntimeError("BatchNorm1d.backward called before forward")
        mean, var, batch_stats = self._stats
        dx, self.gamma.grad, self.beta.grad = K.batch_norm_backward(
            dy, self._x, mean, var, self.gamma.data, self.eps, batch_stats, need_dx)
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.num_features})"


class LayerNorm(_Norm):
    """Normalizes each sample over its features: ``y = (x − mean)/√(var + eps)·γ + β``, the same
    in training and evaluation."""

    def __init__(self, num_features: int, eps: float = 1e-5, dtype: Any = "float32") -> None:
        super().__init__(num_features, eps, dtype)
        self._stats: Optional[Tuple[np.ndarray, np.ndarray]] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, mean, var = K.layer_norm_forward(x, self.gamma.data, self.beta.data, self.eps)
        self._x, self._stats = x, (mean, var)
        return y

    def infer(self, x: np.ndarray) -> np.ndarray:
        return K.layer_norm_forward(x, self.gamma.data, self.beta.data, self.eps)[0]

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        if self._x is None or self._stats is None:
            raise RuntimeError("LayerNorm.backward called before forward")
        mean, var = self._stats
        dx, self.gamma.grad, self.beta.grad = K.layer_norm_backward(
            dy, self._x, mean, var, self.gamma.data, self.eps, need_dx)
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return f"LayerNorm({self.num_features})"
