"""Plain-NumPy reference of every kernel in :mod:`blockprop.kernels`: same names, same signatures.

Written to be read: each function is the maths of its kernel and nothing else (no blocking, no
validation). The tests check the compiled kernels against these, and these against finite
differences.
"""
from __future__ import annotations

import math

import numpy as np

from ._precision import check

_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu", "softplus")


def round_bfloat16(x):
    """x (float32) rounded to the nearest bfloat16, ties to even, kept in float32: the top 16 bits
    of the float32 after adding half an ulp of bfloat16 (0x7FFF, plus 1 when the kept last bit is
    odd). NaN stays NaN (quieted); ±inf and values that round past the largest bfloat16 become ±inf."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    r = np.where(np.isnan(x), (x.view(np.uint32) | 0x00400000) & 0xFFFF0000, r).astype(np.uint32)
    return r.view(np.float32).reshape(x.shape)


def _operands(a, b, precision, fn):
    """The operands a product is computed from: as given, or rounded to bfloat16 and widened to
    float64 (products of bfloat16 values are exact in float32 and float64 alike)."""
    check(precision, np.result_type(a, b), fn)
    if precision == "bfloat16":
        return round_bfloat16(a).astype(np.float64), round_bfloat16(b).astype(np.float64)
    return a, b


def _narrow(c, precision):
    """bfloat16 products are summed here in float64 and returned in float32, the kernels' dtype."""
    return c.astype(np.float32) if precision == "bfloat16" else c


def gemm(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None, precision="float32"):
    """C = alpha·op(a)·op(b) + beta·C   (bfloat16: op(a), op(b) rounded to bfloat16 first)"""
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    a, b = _operands(a, b, precision, "gemm")
    c = _narrow(alpha * (a @ b), precision)
    if out is None:
        return c
    out[...] = c + beta * out if beta != 0 else c
    return out


def _activate(z, activation):
    if activation in (None, "linear"):
        return z
    return {"relu": relu, "sigmoid": sigmoid, "tanh": tanh, "leaky_relu": leaky_relu, "elu": elu,
            "gelu": gelu, "softplus": softplus}[activation](z)


def _activation_grad(dy, y, activation):
    """δ = dy ⊙ f'(·), written through the output y (for "gelu": through the pre-activation)."""
    if activation in (None, "linear"):
        return dy
    return {"relu": relu_backward, "sigmoid": sigmoid_backward, "tanh": tanh_backward,
            "leaky_relu": leaky_relu_backward, "elu": elu_backward, "gelu": gelu_backward,
            "softplus": softplus_backward}[activation](dy, y)


def dense_forward(x, W, b=None, activation="linear", precision="float32"):
    """y = f(x·Wᵀ + b)   (bfloat16: x and W rounded to bfloat16 for the product)"""
    xp, Wp = _operands(x, W, precision, "dense_forward")
    z = _narrow(xp @ Wp.T, precision)
    if b is not None:
        z = z + b
    return _activate(z, activation)


def dense_backward(x, W, dy, y=None, activation="linear", need_dx=True, precision="float32"):
    """δ = dy ⊙ f'(y);  dx = δ·W;  dW = δᵀ·x;  db = Σ_batch δ   (bfloat16: the operands of the two
    products rounded to bfloat16; δ and db in float32)"""
    delta = _activation_grad(dy, y, activation)
    dp, Wp = _operands(delta, W, precision, "dense_backward")
    _, xp = _operands(delta, x, precision, "dense_backward")
    dx = _narrow(dp @ Wp, precision) if need_dx else None
    return dx, _narrow(dp.T @ xp, precision), delta.sum(axis=0)


def relu(x):
    """y = max(x, 0)"""
    return np.maximum(x, 0)


def relu_backward(dy, y):
    """dx = dy ⊙ [y > 0]"""
    return dy * (y > 0)


def sigmoid(x):
    """y = 1 / (1 + e^−x)  (as e^x / (1 + e^x) for x < 0, so neither side overflows)"""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(dy, y):
    """dx = dy ⊙ y ⊙ (1 − y)"""
    return dy * y * (1 - y)


def tanh(x):
    """y = tanh(x)"""
    return np.tanh(x)


def tanh_backward(dy, y):
    """dx = dy ⊙ (1 − y²)"""
    return dy * (1 - y * y)


def softmax(x):
    """y = exp(x − max x) / Σ exp(x − max x), over the last axis"""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dy, y):
    """dx = y ⊙ (dy − ⟨dy, y⟩), over the last axis (Jacobian-vector product)"""
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def mse_loss(pred, target):
    """L = mean((pred − target)²);  ∂L/∂pred = 2·(pred − target)/n"""
    diff = pred - target
    loss = float(np.mean(diff.astype(np.float64) ** 2)) if diff.size else 0.0
    return loss, 2 * diff / max(diff.size, 1)


def softmax_cross_entropy(logits, labels):
    """L = mean_r(logsumexp(z_r) − z_r[label_r]);  ∂L/∂z = (softmax(z) − onehot(labels)) / batch"""
    batch = logits.shape[0]
    rows = np.arange(batch)
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = float(-log_p[rows, labels].astype(np.float64).mean()) if batch else 0.0
    grad = np.exp(log_p)
    grad[rows, labels] -= 1
    return loss, grad / max(batch, 1)


def weighted_loss(kind, pred, target, weights):
    """L = Σ_r w_r·ℓ_r / Σ_r w_r, ℓ_r the loss of row r alone;  ∂L/∂pred_r = (w_r/Σw)·∂ℓ_r/∂pred_r"""
    w = np.asarray(weights, dtype=np.float64)
    diff = pred - target if kind != "cross_entropy" else None
    if kind == "mse":
        rows_loss, grad = (diff.astype(np.float64) ** 2).mean(axis=1), 2 * diff / pred.shape[1]
    elif kind == "bce":
        z, t = pred, target
        per_element = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        rows_loss, grad = per_element.astype(np.float64).mean(axis=1), (sigmoid(z) - t) / pred.shape[1]
    else:
        rows = np.arange(pred.shape[0])
        z = pred - pred.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        rows_loss, grad = -log_p[rows, target].astype(np.float64), np.exp(log_p)
        grad[rows, target] -= 1
    total = w.sum()
    if total == 0:
        return 0.0, np.zeros_like(pred)
    return float((w * rows_loss).sum() / total), grad * (w / total).astype(pred.dtype)[:, None]


def binary_cross_entropy(logits, targets):
    """L = mean(max(z,0) − z·t + log(1 + e^−|z|));  ∂L/∂z = (sigmoid(z) − t)/n"""
    z, t = logits, targets
    per_element = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    loss = float(per_element.astype(np.float64).mean()) if z.size else 0.0
    return loss, (sigmoid(z) - t) / max(z.size, 1)


def count_correct(logits, targets, weights=None):
    """Rows classified right: integer labels → argmax(row) == label (np.argmax: first maximum,
    first NaN); float targets → every (logit > 0) == (target > 0.5). With weights: Σ of the
    weights of those rows."""
    targets = np.asarray(targets)
    if targets.dtype.kind in "iu":
        right = np.argmax(logits, axis=1) == targets
    else:
        right = np.all((logits > 0) == (targets > 0.5), axis=1)
    if weights is None:
        return int(np.count_nonzero(right))
    return float(np.sum(np.asarray(weights, np.float64)[right]))


def sgd_step(param, grad, velocity=None, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """g = grad + wd·p;  v = μ·v + g;  p −= lr·(g + μ·v if nesterov else v)   (in place)

    The compiled kernel flushes subnormal values (below ``finfo.tiny``) to zero, for speed; this
    reference keeps them, a difference smaller than ``finfo.tiny``."""
    g = grad + weight_decay * param
    if momentum != 0:
        velocity *= momentum
        velocity += g
        g = g + momentum * velocity if nesterov else velocity
    param -= lr * g


def adam_step(param, grad, m, v, step, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, decoupled_weight_decay=False):
    """m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= lr·m̂/(sqrt(v̂) + eps)   (in place)

    As for :func:`sgd_step`, the compiled kernel flushes subnormal values to zero."""
    g = grad
    if weight_decay != 0 and not decoupled_weight_decay:
        g = g + weight_decay * param
    if weight_decay != 0 and decoupled_weight_decay:
        param -= lr * weight_decay * param
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    param -= lr * m_hat / (np.sqrt(v_hat) + eps)


# --- more activations ---------------------------------------------------------------------------
def leaky_relu(x, negative_slope=0.01):
    """y = x for x ≥ 0, negative_slope·x for x < 0"""
    return np.where(x < 0, negative_slope * x, x)


def leaky_relu_backward(dy, y, negative_slope=0.01):
    """dx = dy for y > 0, dy·negative_slope otherwise"""
    return np.where(y > 0, dy, dy * negative_slope)


def elu(x, alpha=1.0):
    """y = x for x > 0, α·(eˣ − 1) otherwise"""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_backward(dy, y, alpha=1.0):
    """dx = dy for y > 0, dy·(y + α) otherwise  (α·eˣ = y + α)"""
    return np.where(y > 0, dy, dy * (y + alpha))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x):
    """y = x·Φ(x) = x·(1 + erf(x/√2))/2   (exact form)"""
    x64 = np.asarray(x, dtype=np.float64)
    return (0.5 * x64 * (1 + _erf(x64 / math.sqrt(2)))).astype(np.result_type(x, np.float32))


def gelu_backward(dy, x):
    """dx = dy ⊙ (Φ(x) + x·φ(x)): through the input x (GELU is not monotone, y does not give x)"""
    x64 = np.asarray(x, dtype=np.float64)
    d = 0.5 * (1 + _erf(x64 / math.sqrt(2))) + x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
    return (dy * d).astype(np.result_type(dy, np.float32))


def softplus(x):
    """y = log(1 + eˣ) = max(x, 0) + log1p(e^−|x|)"""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def softplus_backward(dy, y):
    """dx = dy ⊙ sigmoid(x) = dy ⊙ (1 − e^−y)"""
    return dy * -np.expm1(-y)


# --- dropout -----------------------------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z):
    """splitmix64's finalizer on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(n, p, seed, step):
    """keep_i = u_i ≥ p,  u_i = (mix(mix(seed + G·(step+1)) + G·(i+1)) >> 11)·2⁻⁵³,  i < n"""
    one = np.ones(1, dtype=np.uint64)
    base = _mix(np.array([seed], dtype=np.uint64) + _GOLDEN * (np.array([step], dtype=np.uint64) + one))
    h = _mix(base + _GOLDEN * np.arange(1, n + 1, dtype=np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 >= p


def dropout(x, p, seed, step):
    """y = x ⊙ keep/(1 − p)   (element i in C order; p = 1 gives 0)"""
    x = np.asarray(x)
    if p >= 1:
        return np.zeros_like(x)
    keep = dropout_mask(x.size, p, seed, step).reshape(x.shape)
    return np.where(keep, x * x.dtype.type(1.0 / (1.0 - p)), x.dtype.type(0))


def dropout_backward(dy, p, seed, step):
    """dx = dy ⊙ keep/(1 − p), the forward's mask"""
    return dropout(dy, p, seed, step)


# --- normalization -----------------------------------------------------------------------------
def batch_norm_forward(x, gamma, beta, eps=1e-5):
    """per feature: mean, var = batch mean and biased variance;  y = (x − mean)/√(var + eps)·γ + β;
    returns (y, mean, var)"""
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta, mean, var


def batch_norm_inference(x, gamma, beta, mean, var, eps=1e-5):
    """y = (x − mean)·γ/√(var + eps) + β with given (running) statistics"""
    return (x - mean) * (gamma / np.sqrt(var + eps)) + beta


def batch_norm_backward(dy, x, mean, var, gamma, eps=1e-5, batch_stats=True, need_dx=True):
    """x̂ = (x − mean)·invstd;  dβ = Σ dy;  dγ = Σ dy·x̂;
    dx = γ·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)) through batch statistics, else γ·invstd·dy"""
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * invstd
    dbeta, dgamma = dy.sum(axis=0), (dy * xhat).sum(axis=0)
    dx = None
    if need_dx:
        g = dy - dy.mean(axis=0) - xhat * (dy * xhat).mean(axis=0) if batch_stats else dy
        dx = gamma * invstd * g
    return dx, dgamma, dbeta


def layer_norm_forward(x, gamma, beta, eps=1e-5):
    """per sample: mean, var over features;  y = (x − mean)/√(var + eps)·γ + β;
    returns (y, mean, var) with mean, var of shape (batch,)"""
    mean = x.mean(axis=1)
    var = ((x - mean[:, None]) ** 2).mean(axis=1)
    return (x - mean[:, None]) / np.sqrt(var + eps)[:, None] * gamma + beta, mean, var


def layer_norm_backward(dy, x, mean, var, gamma, eps=1e-5, need_dx=True):
    """x̂ per row;  g = dy·γ;  dx = invstd·(g − mean_j g − x̂·mean_j(g·x̂));  dγ = Σ dy·x̂;  dβ = Σ dy"""
    invstd = (1 / np.sqrt(var + eps))[:, None]
    xhat = (x - mean[:, None]) * invstd
    g = dy * gamma
    dx = None
    if need_dx:
        dx = invstd * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


# --- diagnostics and penalties -----------------------------------------------------------------
def sum_squares(x):
    """Σ x²"""
    return float(np.sum(np.asarray(x, dtype=np.float64) ** 2))


def count_nonfinite(x):
    """number of NaN and ±inf elements"""
    return int(np.count_nonzero(~np.isfinite(np.asarray(x))))


def sum_squared_diff(a, b):
    """Σ (a − b)²"""
    return float(np.sum((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))


def mark_active(y, active):
    """active |= any(y > 0 over the batch), per unit  (in place)"""
    active |= (y > 0).any(axis=0)


def weight_penalty(w, l1, l2, grad=None):
    """P = l1·Σ|w| + l2·Σw²;  grad += l1·sign(w) + 2·l2·w  (in place)"""
    w64 = np.asarray(w, dtype=np.float64)
    if grad is not None:
        grad += w.dtype.type(l1) * np.sign(w) + w.dtype.type(2 * l2) * w
    return float(l1 * np.abs(w64).sum() + l2 * (w64 ** 2).sum())
