"""Layers: a dense (fully connected) layer with a fused activation, stand-alone activations,
dropout and normalization.

Every layer keeps what its backward needs from the last forward (its input and/or output) and
computes gradients with the compiled kernels only. ``backward`` overwrites the gradients of the
previous call, so there is nothing to zero between steps. ``training`` (set for a whole model by
``Sequential.train()`` / ``.eval()``) switches dropout and batch normalization between their
training and evaluation behaviour.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import _precision
from .. import kernels as K
from .base import DTYPES, Layer, Parameter, check_dtype
from .dropout import Dropout
from .normalization import BatchNorm1d, LayerNorm

__all__ = ["DTYPES", "ACTIVATIONS", "INITS", "LAYER_TYPES", "check_dtype", "Parameter", "Layer",
           "Dense", "ReLU", "Sigmoid", "Tanh", "Softmax", "Softplus", "LeakyReLU", "ELU", "GELU",
           "Dropout", "BatchNorm1d", "LayerNorm"]

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu", "softplus")
INITS = ("he", "xavier", "glorot", "zeros")


def _penalty_factor(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Dense: {name} must be a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"Dense: {name} must be a finite number ≥ 0, got {value!r}")
    return v


class Dense(Layer):
    """``y = f(x·Wᵀ + b)`` with ``W (out_features, in_features)`` as in PyTorch's ``nn.Linear``.

    ``activation``: None/"linear", "relu", "sigmoid", "tanh", "leaky_relu" (slope 0.01), "elu"
    (α = 1), "gelu" (exact erf form) or "softplus", fused into the kernel's write-back. (GELU's
    derivative needs its input, so in training a GELU layer keeps ``x·Wᵀ + b`` and applies GELU
    in a separate pass; in evaluation it is fused.)
    ``init``: "he" (normal, std √(2/fan_in)), "xavier"/"glorot" (uniform ±√(6/(fan_in+fan_out)))
    or "zeros"; biases start at zero. ``seed`` makes the initial weights reproducible.
    ``l1``, ``l2``: penalties ``l1·Σ|W| + l2·ΣW²`` on the weights (not the bias), added to the
    training loss and its gradient by ``fit`` / ``train_step`` (``l2`` here equals an optimizer
    ``weight_decay`` of ``2·l2``, but shows in the loss).
    """

    _cache = ("_x", "_y", "_z")

    def __init__(self, in_features: int, out_features: int, activation: Optional[str] = None,
                 init: str = "he", bias: bool = True, seed: Optional[int] = None,
                 dtype: Any = "float32", l1: float = 0.0, l2: float = 0.0):
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"Dense: {name} must be a positive integer, got {n!r}")
        activation = "linear" if activation is None else activation
        if activation not in ACTIVATIONS:
            raise ValueError(f"Dense: activation must be one of {ACTIVATIONS} or None, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"Dense: init must be one of {INITS}, got {init!r}")
        self.l1, self.l2 = _penalty_factor("l1", l1), _penalty_factor("l2", l2)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.activation, self.init, self.use_bias, self.seed = activation, init, bool(bias), seed
        self.dtype = check_dtype(dtype)
        self.weight = Parameter(self._initial_weights())
        # Kept (at zero, untrained) even with bias=False, so weights and config stay uniform.
        self._bias = Parameter(np.zeros(self.out_features, self.dtype))
        self._x: Optional[np.ndarray] = None
        self._y: Optional[np.ndarray] = None
        self._z: Optional[np.ndarray] = None  # GELU's pre-activation (its derivative needs it)

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
        p = _precision.current()  # of the fit / predict call in progress
        if self.activation == "gelu" and self.training:
            z = K.dense_forward(x, self.weight.data, self.b, "linear", precision=p)
            y = K.gelu(z)
        else:
            z, y = None, K.dense_forward(x, self.weight.data, self.b, self.activation, precision=p)
        self._x, self._y, self._z = x, y, z
        return y

    def infer(self, x: np.ndarray) -> np.ndarray:
        return K.dense_forward(x, self.weight.data, self.b, self.activation,
                               precision=_precision.current())

    def infer_counted(self, x: np.ndarray) -> Tuple[np.ndarray, int]:
        """``infer``, and the number of non-finite values of ``x·Wᵀ + b`` (0 proves ``x``
        finite): how ``predict`` checks its input."""
        return K._dense_forward_counted(x, self.weight.data, self.b, self.activation,
                                        precision=_precision.current())

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        through, p = self._y, _precision.current()
        if self.activation == "gelu":  # GELU's derivative is written through its input
            if self._z is None:  # forward ran fused (evaluation mode): recompute the input
                self._z = K.dense_forward(self._x, self.weight.data, self.b, "linear", precision=p)
            through = self._z
        dx, dW, db = K.dense_backward(self._x, self.weight.data, dy, through, self.activation, need_dx,
                                      precision=p)
        self.weight.grad = dW
        self._bias.grad = db
        return dx

    def penalty(self, add_grad: bool = False) -> float:
        """``l1·Σ|W| + l2·ΣW²``; with ``add_grad`` its gradient is added to ``W``'s grad."""
        if self.l1 == 0 and self.l2 == 0:
            return 0.0
        return K.weight_penalty(self.weight.data, self.l1, self.l2,
                                self.weight.grad if add_grad else None)

    def parameters(self) -> Dict[str, Parameter]:
        params = {"W": self.weight}
        if self.use_bias:
            params["b"] = self._bias
        return params

    def get_config(self) -> Dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "activation": None if self.activation == "linear" else self.activation,
                "init": self.init, "bias": self.use_bias, "seed": self.seed,
                "dtype": self.dtype.name, "l1": self.l1, "l2": self.l2}

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
        extra += f", l1={self.l1!r}" if self.l1 else ""
        extra += f", l2={self.l2!r}" if self.l2 else ""
        return f"Dense({self.in_features}, {self.out_features}{extra})"


class _Activation(Layer):
    """An element-wise (or row-wise) activation: keeps its output, which its backward needs."""

    _cache = ("_y",)
    _forward = staticmethod(K.relu)
    _backward = staticmethod(K.relu_backward)

    def __init__(self) -> None:
        self._y: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = type(self)._forward(x)
        return self._y

    def infer(self, x: np.ndarray) -> np.ndarray:
        return type(self)._forward(x)

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


class Softplus(_Activation):
    """``y = log(1 + eˣ)``, a smooth ReLU"""
    _forward = staticmethod(K.softplus)
    _backward = staticmethod(K.softplus_backward)


class LeakyReLU(_Activation):
    """``y = x`` for ``x ≥ 0``, ``negative_slope·x`` otherwise (after a Dense layer the fit loop
    fuses it into the dense write-back when the slope is the default 0.01)."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float, np.number)) \
                or not np.isfinite(negative_slope):
            raise ValueError(f"LeakyReLU: negative_slope must be a finite number, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = K.leaky_relu(x, self.negative_slope)
        return self._y

    def infer(self, x: np.ndarray) -> np.ndarray:
        return K.leaky_relu(x, self.negative_slope)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        if self._y is None:
            raise RuntimeError("LeakyReLU.backward called before forward")
        return K.leaky_relu_backward(dy, self._y, self.negative_slope) if need_dx else None

    def get_config(self) -> Dict[str, Any]:
        return {"negative_slope": self.negative_slope}

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope!r})"


class ELU(_Activation):
    """``y = x`` for ``x > 0``, ``α·(eˣ − 1)`` otherwise (``α ≥ 0``; fused after a Dense layer
    when α is the default 1)."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) \
                or not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"ELU: alpha must be a finite number ≥ 0, got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = K.elu(x, self.alpha)
        return self._y

    def infer(self, x: np.ndarray) -> np.ndarray:
        return K.elu(x, self.alpha)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        if self._y is None:
            raise RuntimeError("ELU.backward called before forward")
        return K.elu_backward(dy, self._y, self.alpha) if need_dx else None

    def get_config(self) -> Dict[str, Any]:
        return {"alpha": self.alpha}

    def __repr__(self) -> str:
        return f"ELU(alpha={self.alpha!r})"


class GELU(Layer):
    """``y = x·Φ(x)``, the exact (erf) GELU as PyTorch's default. Keeps its input: GELU is not
    monotone, so its derivative cannot be recovered from its output."""

    _cache = ("_x",)

    def __init__(self) -> None:
        self._x: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return K.gelu(x)

    def infer(self, x: np.ndarray) -> np.ndarray:
        return K.gelu(x)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        if self._x is None:
            raise RuntimeError("GELU.backward called before forward")
        return K.gelu_backward(dy, self._x) if need_dx else None

    def __repr__(self) -> str:
        return "GELU()"


LAYER_TYPES = {cls.__name__: cls for cls in (Dense, ReLU, Sigmoid, Tanh, Softmax, LeakyReLU, ELU,
                                             GELU, Softplus, Dropout, BatchNorm1d, LayerNorm)}
