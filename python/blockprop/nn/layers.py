"""Layers: a dense (fully connected) layer with a fused activation, and stand-alone activations.

Every layer keeps what its backward needs from the last forward (its input and/or output) and
computes gradients with the compiled kernels only. ``backward`` overwrites the gradients of the
previous call, so there is nothing to zero between steps.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from .. import kernels as K

DTYPES = ("float32", "float64")
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")
INITS = ("he", "xavier", "glorot", "zeros")


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

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray):
        self.data = data
        self.grad = np.zeros_like(data)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype.name})"


class Layer:
    """Base class: ``forward(x) -> y``, ``backward(dy) -> dx``, named ``parameters()``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        raise NotImplementedError

    def parameters(self) -> Dict[str, Parameter]:
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


class Dense(Layer):
    """``y = f(x·Wᵀ + b)`` with ``W (out_features, in_features)`` as in PyTorch's ``nn.Linear``.

    ``activation``: None/"linear", "relu", "sigmoid" or "tanh", fused into the kernel.
    ``init``: "he" (normal, std √(2/fan_in)), "xavier"/"glorot" (uniform ±√(6/(fan_in+fan_out)))
    or "zeros"; biases start at zero. ``seed`` makes the initial weights reproducible.
    """

    def __init__(self, in_features: int, out_features: int, activation: Optional[str] = None,
                 init: str = "he", bias: bool = True, seed: Optional[int] = None,
                 dtype: Any = "float32"):
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"Dense: {name} must be a positive integer, got {n!r}")
        activation = "linear" if activation is None else activation
        if activation not in ACTIVATIONS:
            raise ValueError(f"Dense: activation must be one of {ACTIVATIONS} or None, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"Dense: init must be one of {INITS}, got {init!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.activation, self.init, self.use_bias, self.seed = activation, init, bool(bias), seed
        self.dtype = check_dtype(dtype)
        self.weight = Parameter(self._initial_weights())
        # Kept (at zero, untrained) even with bias=False, so weights and config stay uniform.
        self._bias = Parameter(np.zeros(self.out_features, self.dtype))
        self._x: Optional[np.ndarray] = None
        self._y: Optional[np.ndarray] = None

    def _initial_weights(self) -> np.ndarray:
        shape, fan_in, fan_out = (self.out_features, self.in_features), self.in_features, self.out_features
        count = self.in_features * self.out_features
        if count > np.iinfo(np.intp).max // 8:
            raise MemoryError(f"Dense({self.in_features}, {self.out_features}): {count:,} weights cannot "
                              "be addressed on this machine")
        try:
            return self._draw(shape, fan_in, fan_out)
        except MemoryError:
            raise MemoryError(f"Dense({self.in_features}, {self.out_features}): cannot allocate {count:,} "
                              f"weights ({count * self.dtype.itemsize / 2**30:,.1f} GiB)") from None

    def _draw(self, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        if self.init == "he":
            w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
        elif self.init in ("xavier", "glorot"):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=shape)
        else:
            w = np.zeros(shape)
        return w.astype(self.dtype)

    @property
    def W(self) -> np.ndarray:
        return self.weight.data

    @W.setter
    def W(self, value: np.ndarray) -> None:
        self.weight.data[...] = self._checked(value, self.weight.data.shape, "W")

    @property
    def b(self) -> Optional[np.ndarray]:
        return self._bias.data if self.use_bias else None

    @b.setter
    def b(self, value: np.ndarray) -> None:
        if not self.use_bias:
            raise ValueError("Dense: this layer was built with bias=False")
        self._bias.data[...] = self._checked(value, self._bias.data.shape, "b")

    @staticmethod
    def _checked(value: Any, shape: tuple, name: str) -> np.ndarray:
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"Dense: {name} must be a numeric array, got dtype {value.dtype}")
        if value.shape != shape:
            raise ValueError(f"Dense: {name} must have shape {shape}, got {value.shape}")
        return value

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = K.dense_forward(x, self.weight.data, self.b, self.activation)
        self._x, self._y = x, y
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        dx, dW, db = K.dense_backward(self._x, self.weight.data, dy, self._y, self.activation, need_dx)
        self.weight.grad = dW
        self._bias.grad = db
        return dx

    def parameters(self) -> Dict[str, Parameter]:
        params = {"W": self.weight}
        if self.use_bias:
            params["b"] = self._bias
        return params

    def get_config(self) -> Dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "activation": None if self.activation == "linear" else self.activation,
                "init": self.init, "bias": self.use_bias, "seed": self.seed,
                "dtype": self.dtype.name}

    def astype(self, dtype: Any) -> "Dense":
        config = dict(self.get_config(), dtype=check_dtype(dtype).name, init="zeros")
        layer = Dense(**config)
        layer.init = self.init
        layer.weight.data[...] = self.weight.data
        layer._bias.data[...] = self._bias.data
        return layer

    def output_features(self, in_features: int) -> int:
        return self.out_features

    def __repr__(self) -> str:
        extra = "" if self.activation == "linear" else f", activation={self.activation!r}"
        extra += "" if self.use_bias else ", bias=False"
        return f"Dense({self.in_features}, {self.out_features}{extra})"


class _Activation(Layer):
    """An element-wise (or row-wise) activation: keeps its output, which its backward needs."""

    _forward = staticmethod(K.relu)
    _backward = staticmethod(K.relu_backward)

    def __init__(self) -> None:
        self._y: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = type(self)._forward(x)
        return self._y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        if self._y is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return type(self)._backward(dy, self._y) if need_dx else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_Activation):
    """``y = max(x, 0)``"""
    _forward = staticmethod(K.relu)
    _backward = staticmethod(K.relu_backward)


class Sigmoid(_Activation):
    """``y = 1 / (1 + e^−x)``"""
    _forward = staticmethod(K.sigmoid)
    _backward = staticmethod(K.sigmoid_backward)


class Tanh(_Activation):
    """``y = tanh(x)``"""
    _forward = staticmethod(K.tanh)
    _backward = staticmethod(K.tanh_backward)


class Softmax(_Activation):
    """Softmax over features. For training prefer logits with ``CrossEntropyLoss`` (fused, stabler)."""
    _forward = staticmethod(K.softmax)
    _backward = staticmethod(K.softmax_backward)


LAYER_TYPES = {cls.__name__: cls for cls in (Dense, ReLU, Sigmoid, Tanh, Softmax)}
