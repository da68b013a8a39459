"""The compiled kernels as plain functions on NumPy arrays.

Conventions (as PyTorch's ``nn.Linear``): a batch ``x`` is ``(batch, in_features)``, weights ``W`` are
``(out_features, in_features)``, a bias ``b`` is ``(out_features,)``. Arrays are float32 (fast path)
or float64, one dtype per call; any strides are accepted. ``precision="bfloat16"`` (float32 arrays
only) rounds the operands of the matrix products to bfloat16 and sums the products in float32. Bad input raises ``TypeError`` (dtypes) or
``ValueError`` (shapes, values) naming the argument. The GIL is released while a kernel runs.

Each function has a twin of the same name and signature in :mod:`blockprop.reference`, written in
plain NumPy as the statement of its maths.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import _core
from ._precision import is_bfloat16

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
    "weighted_loss",
    "softmax_cross_entropy",
    "binary_cross_entropy",
    "count_correct",
    "sgd_step",
    "adam_step",
    "leaky_relu",
    "leaky_relu_backward",
    "elu",
    "elu_backward",
    "gelu",
    "gelu_backward",
    "softplus",
    "softplus_backward",
    "dropout",
    "dropout_backward",
    "batch_norm_forward",
    "batch_norm_inference",
    "batch_norm_backward",
    "layer_norm_forward",
    "layer_norm_backward",
    "sum_squares",
    "count_nonfinite",
    "sum_squared_diff",
    "mark_active",
    "weight_penalty",
]


def gemm(a, b, trans_a: bool = False, trans_b: bool = False, alpha: float = 1.0,
         beta: float = 0.0, out: Optional[np.ndarray] = None,
         precision: str = "float32") -> np.ndarray:
    """``C = alpha·op(a)·op(b) + beta·C`` with ``op(M) = M.T`` when its ``trans_`` flag is set.

    With ``out`` given the result is written into it (any strides; ``beta`` scales its old values)
    and returned; otherwise a new array is returned and ``beta`` is ignored. ``precision=
    "bfloat16"``: ``op(a)``, ``op(b)`` rounded to bfloat16, products summed in float32.
    """
    return _core.gemm(a, b, trans_a, trans_b, alpha, beta, out, is_bfloat16(precision, "gemm"))


def dense_forward(x, W, b=None, activation: str = "linear",
                  precision: str = "float32") -> np.ndarray:
    """``y = f(x·Wᵀ + b)``, bias and activation fused into the GEMM's write-back.

    ``activation`` is one of ``"linear"``, ``"relu"``, ``"sigmoid"``, ``"tanh"``,
    ``"leaky_relu"`` (slope 0.01), ``"elu"`` (α = 1), ``"gelu"`` (exact, erf) or ``"softplus"``.
    ``precision="bfloat16"``: ``x`` and ``W`` rounded to bfloat16 for the product.
    """
    return _core.dense_forward(x, W, b, activation, is_bfloat16(precision, "dense_forward"))


def _dense_forward_counted(x, W, b=None, activation: str = "linear",
                           precision: str = "float32") -> Tuple[np.ndarray, int]:
    """``dense_forward``, and the number of non-finite values of ``x·Wᵀ + b`` before the
    activation: 0 proves ``x`` finite (a NaN or infinity makes its whole row non-finite, whatever
    ``W`` holds), so predict's first layer checks its input without a pass of its own."""
    y, bad = _core.dense_forward_counted(x, W, b, activation,
                                         is_bfloat16(precision, "dense_forward"))
    return y, int(bad)


def dense_backward(x, W, dy, y=None, activation: str = "linear", need_dx: bool = True,
                   precision: str = "float32") -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]:
    """Gradients of a dense layer: ``δ = dy ⊙ f'(y)``, ``dx = δ·W``, ``dW = δᵀ·x``, ``db = Σ_batch δ``.

    ``y`` is the forward's output (needed unless the activation is linear); for ``"gelu"``,
    whose derivative is not a function of its output, pass the pre-activation ``x·Wᵀ + b``. Returns
    ``(dx, dW, db)``; ``dx`` is ``None`` when ``need_dx`` is false (a first layer has no use for it).
    ``precision="bfloat16"``: the operands of the two products rounded to bfloat16 (δ, db float32).
    """
    return _core.dense_backward(x, W, dy, y, activation, need_dx,
                                is_bfloat16(precision, "dense_backward"))


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


def weighted_loss(kind: str, pred, target, weights) -> Tuple[float, np.ndarray]:
    """Weighted mean over rows of the loss ``kind`` ("mse", "cross_entropy" with integer labels,
    "bce"): ``L = Σ_r w_r·ℓ_r / Σ_r w_r``, ``ℓ_r`` that loss on row ``r`` of ``pred (batch,
    outputs)`` alone; returns ``(L, ∂L/∂pred)``, row ``r`` of which is ``(w_r/Σw)·∂ℓ_r/∂pred_r``.
    ``weights``: float64 ``(batch,)``, finite, ≥ 0; all 0 gives ``(0.0, zeros)``."""
    return _core.weighted_loss(kind, pred, target, weights)


def count_correct(logits, targets, weights=None):
    """Rows of ``logits (batch, outputs)`` classified right, the one accuracy rule of fit, evaluate
    and the C++ loop. Integer labels ``(batch,)``: ``argmax(row) == label``, argmax as NumPy's (the
    first maximum on ties; a row holding NaN picks its first NaN). Float targets of the logits'
    shape: every ``(logit > 0) == (target > 0.5)`` (a NaN logit predicts 0). With ``weights``
    (``(batch,)``, finite, ≥ 0): the sum of the weights of those rows, a float."""
    return _core.count_correct(logits, targets, weights)


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


def leaky_relu(x, negative_slope: float = 0.01) -> np.ndarray:
    """``y = x`` for ``x ≥ 0``, ``negative_slope·x`` otherwise (fused into Dense with slope 0.01)."""
    return _core.activation_forward(x, "leaky_relu", negative_slope)


def leaky_relu_backward(dy, y, negative_slope: float = 0.01) -> np.ndarray:
    """``dx = dy`` where ``y > 0``, ``dy·negative_slope`` elsewhere."""
    return _core.activation_backward(dy, y, "leaky_relu", negative_slope)


def elu(x, alpha: float = 1.0) -> np.ndarray:
    """``y = x`` for ``x > 0``, ``α·(eˣ − 1)`` otherwise (``α ≥ 0``; fused into Dense with α = 1)."""
    return _core.activation_forward(x, "elu", alpha)


def elu_backward(dy, y, alpha: float = 1.0) -> np.ndarray:
    """``dx = dy`` where ``y > 0``, ``dy·(y + α)`` elsewhere (``α·eˣ = y + α``: no input kept)."""
    return _core.activation_backward(dy, y, "elu", alpha)


def gelu(x) -> np.ndarray:
    """``y = x·Φ(x) = x·(1 + erf(x/√2))/2``: the exact GELU (PyTorch's default, not the tanh form)."""
    return _core.activation_forward(x, "gelu")


def gelu_backward(dy, x) -> np.ndarray:
    """``dx = dy ⊙ (Φ(x) + x·φ(x))``. Takes the *input* ``x``: GELU is not monotone, so its output
    does not determine its input."""
    return _core.activation_backward(dy, x, "gelu")


def softplus(x) -> np.ndarray:
    """``y = log(1 + eˣ)``, computed as ``max(x, 0) + log1p(e^−|x|)`` (never overflows)."""
    return _core.activation_forward(x, "softplus")


def softplus_backward(dy, y) -> np.ndarray:
    """``dx = dy ⊙ sigmoid(x) = dy ⊙ (1 − e^−y)``, through the output."""
    return _core.activation_backward(dy, y, "softplus")


def dropout(x, p: float, seed: int, step: int) -> np.ndarray:
    """Inverted dropout: ``y = x ⊙ keep/(1 − p)``, each element dropped with probability ``p``.

    The mask is a hash of ``(seed, step, flat index)`` (splitmix64; see
    :func:`blockprop.reference.dropout_mask`), so it is reproducible, independent of the thread
    count, and regenerated by :func:`dropout_backward` instead of stored. ``seed`` and ``step``
    are integers in ``[0, 2**64)``; ``p = 1`` drops everything.
    """
    return _core.dropout(x, p, seed, step)


def dropout_backward(dy, p: float, seed: int, step: int) -> np.ndarray:
    """``dx = dy ⊙ keep/(1 − p)`` with the mask of ``dropout(·, p, seed, step)``."""
    return _core.dropout_backward(dy, p, seed, step)


def batch_norm_forward(x, gamma, beta, eps: float = 1e-5) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch normalization with the batch's statistics (training): per feature ``mean`` and biased
    ``var`` over the batch, ``y = (x − mean)/√(var + eps)·γ + β``. Returns ``(y, mean, var)``."""
    return _core.batch_norm_forward(x, gamma, beta, eps)


def batch_norm_inference(x, gamma, beta, mean, var, eps: float = 1e-5) -> np.ndarray:
    """Batch normalization with given (running) statistics: ``y = (x − mean)·γ/√(var + eps) + β``."""
    return _core.batch_norm_inference(x, gamma, beta, mean, var, eps)


def batch_norm_backward(dy, x, mean, var, gamma, eps: float = 1e-5, batch_stats: bool = True,
                        need_dx: bool = True) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]:
    """Gradients ``(dx, dγ, dβ)`` of batch normalization, ``x̂ = (x − mean)/√(var + eps)``:
    ``dβ = Σ dy``, ``dγ = Σ dy·x̂``; with ``batch_stats`` (mean, var are the batch's own, as in
    training) ``dx = γ/√(var + eps)·(dy − mean(dy) − x̂·mean(dy·x̂))``, else (fixed statistics)
    ``dx = γ/√(var + eps)·dy``. ``dx`` is None unless ``need_dx``."""
    return _core.batch_norm_backward(dy, x, mean, var, gamma, eps, batch_stats, need_dx)


def layer_norm_forward(x, gamma, beta, eps: float = 1e-5) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer normalization: per sample ``mean`` and biased ``var`` over its features,
    ``y = (x − mean)/√(var + eps)·γ + β``. Returns ``(y, mean, var)``, the statistics ``(batch,)``."""
    return _core.layer_norm_forward(x, gamma, beta, eps)


def layer_norm_backward(dy, x, mean, var, gamma, eps: float = 1e-5,
                        need_dx: bool = True) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]:
    """Gradients ``(dx, dγ, dβ)`` of layer normalization: with ``g = dy·γ`` per sample,
    ``dx = (g − mean(g) − x̂·mean(g·x̂))/√(var + eps)``; ``dγ = Σ dy·x̂``, ``dβ = Σ dy``."""
    return _core.layer_norm_backward(dy, x, mean, var, gamma, eps, need_dx)


def sum_squares(x) -> float:
    """``Σ x²`` (summed in double): a squared norm."""
    return _core.sum_squares(x)


def count_nonfinite(x) -> int:
    """How many elements of ``x`` (float32 or float64, any shape) are NaN, ``+inf`` or ``-inf``:
    ``np.count_nonzero(~np.isfinite(x))`` in one pass, with no temporary array."""
    return _core.count_nonfinite(x)


def sum_squared_diff(a, b) -> float:
    """``Σ (a − b)²`` (summed in double): e.g. the squared size of an update."""
    return _core.sum_squared_diff(a, b)


def mark_active(y, active: np.ndarray) -> None:
    """``active |= any(y > 0, axis=0)`` in place: which units of a ``(batch, units)`` activation
    fired for at least one sample (``active`` is a bool array ``(units,)``; accumulate it over an
    epoch to find dead ReLUs)."""
    _core.mark_active(y, active)


def weight_penalty(w, l1: float, l2: float, grad: Optional[np.ndarray] = None) -> float:
    """Returns ``l1·Σ|w| + l2·Σw²`` and, when ``grad`` is given, adds its gradient
    ``l1·sign(w) + 2·l2·w`` to ``grad`` in place."""
    return _core.weight_penalty(w, l1, l2, grad)
