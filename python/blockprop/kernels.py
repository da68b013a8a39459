"""The compiled kernels as plain functions on NumPy arrays.

Conventions (as PyTorch's ``nn.Linear``): a batch ``x`` is ``(batch, in_features)``, weights ``W`` are
``(out_features, in_features)``, a bias ``b`` is ``(out_features,)``. Arrays are float32 (fast path)
or float64, one dtype per call; any strides are accepted. Bad input raises ``TypeError`` (dtypes) or
``ValueError`` (shapes, values) naming the argument. The GIL is released while a kernel runs.

Each function has a twin of the same name and signature in :mod:`blockprop.reference`, written in
plain NumPy as the statement of its maths.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import _core

__all__ = [
    "gemm",
    "dense_forward",
    "dense_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "softmax",
    "softmax_backward",
    "mse_loss",
    "softmax_cross_entropy",
    "binary_cross_entropy",
    "sgd_step",
    "adam_step",
]


def gemm(a, b, trans_a: bool = False, trans_b: bool = False, alpha: float = 1.0,
         beta: float = 0.0, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``C = alpha·op(a)·op(b) + beta·C`` with ``op(M) = M.T`` when its ``trans_`` flag is set.

    With ``out`` given the result is written into it (any strides; ``beta`` scales its old values)
    and returned; otherwise a new array is returned and ``beta`` is ignored.
    """
    return _core.gemm(a, b, trans_a, trans_b, alpha, beta, out)


def dense_forward(x, W, b=None, activation: str = "linear") -> np.ndarray:
    """``y = f(x·Wᵀ + b)``, bias and activation fused into the GEMM's write-back.

    ``activation`` is one of ``"linear"``, ``"relu"``, ``"sigmoid"``, ``"tanh"``.
    """
    return _core.dense_forward(x, W, b, activation)


def dense_backward(x, W, dy, y=None, activation: str = "linear",
                   need_dx: bool = True) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]:
    """Gradients of a dense layer: ``δ = dy ⊙ f'(y)``, ``dx = δ·W``, ``dW = δᵀ·x``, ``db = Σ_batch δ``.

    ``y`` is the forward's output (needed unless the activation is linear). Returns
    ``(dx, dW, db)``; ``dx`` is ``None`` when ``need_dx`` is false (a first layer has no use for it).
    """
    return _core.dense_backward(x, W, dy, y, activation, need_dx)


def relu(x) -> np.ndarray:
    """``y = max(x, 0)``"""
    return _core.activation_forward(x, "relu")


def relu_backward(dy, y) -> np.ndarray:
    """``dx = dy ⊙ [y > 0]``"""
    return _core.activation_backward(dy, y, "relu")


def sigmoid(x) -> np.ndarray:
    """``y = 1 / (1 + e^−x)``"""
    return _core.activation_forward(x, "sigmoid")


def sigmoid_backward(dy, y) -> np.ndarray:
    """``dx = dy ⊙ y ⊙ (1 − y)``"""
    return _core.activation_backward(dy, y, "sigmoid")


def tanh(x) -> np.ndarray:
    """``y = tanh(x)``"""
    return _core.activation_forward(x, "tanh")


def tanh_backward(dy, y) -> np.ndarray:
    """``dx = dy ⊙ (1 − y²)``"""
    return _core.activation_backward(dy, y, "tanh")


def softmax(x) -> np.ndarray:
    """``y = exp(x − max x) / Σ exp(x − max x)`` over the last axis."""
    return _core.softmax(x)


def softmax_backward(dy, y) -> np.ndarray:
    """``dx = y ⊙ (dy − Σ_j dy·y)`` over the last axis: the Jacobian-vector product."""
    return _core.softmax_backward(dy, y)


def mse_loss(pred, target) -> Tuple[float, np.ndarray]:
    """``L = mean((pred − target)²)`` over all elements; returns ``(L, ∂L/∂pred)``."""
    return _core.mse_loss(pred, target)


def softmax_cross_entropy(logits, labels) -> Tuple[float, np.ndarray]:
    """``L = mean_r(logsumexp(z_r) − z_r[label_r])`` for logits ``(batch, classes)`` and integer
    labels ``(batch,)``; returns ``(L, (softmax(z) − onehot(labels)) / batch)``."""
    return _core.softmax_cross_entropy(logits, labels)


def binary_cross_entropy(logits, targets) -> Tuple[float, np.ndarray]:
    """Binary cross-entropy on logits, ``L = mean(max(z,0) − z·t + log(1 + e^−|z|))``;
    returns ``(L, (sigmoid(z) − t) / n)``."""
    return _core.binary_cross_entropy(logits, targets)


def sgd_step(param, grad, velocity=None, *, lr: float, momentum: float = 0.0,
             nesterov: bool = False, weight_decay: float = 0.0) -> None:
    """SGD update in place (PyTorch semantics): ``g = grad + wd·p``; ``v = μ·v + g``;
    ``p −= lr·(g + μ·v if nesterov else v)`` (``p −= lr·g`` when ``μ = 0``, ``velocity`` unused)."""
    _core.sgd_step(param, grad, velocity, lr, momentum, nesterov, weight_decay)


def adam_step(param, grad, m, v, step: int, *, lr: float = 1e-3, beta1: float = 0.9,
              beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
              decoupled_weight_decay: bool = False) -> None:
    """Adam update in place (bias-corrected; ``step`` counts from 1):
    ``m = β1·m + (1−β1)·g``; ``v = β2·v + (1−β2)·g²``;
    ``p −= lr·(m/(1−β1^t)) / (sqrt(v/(1−β2^t)) + eps)``. ``weight_decay`` adds ``wd·p`` to ``g``,
    or with ``decoupled_weight_decay`` (AdamW) subtracts ``lr·wd·p`` from ``p``."""
    _core.adam_step(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay,
                    decoupled_weight_decay)
