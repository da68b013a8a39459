"""Plain-NumPy reference of every kernel in :mod:`blockprop.kernels`: same names, same signatures.

Written to be read: each function is the maths of its kernel and nothing else (no blocking, no
validation). The tests check the compiled kernels against these, and these against finite
differences.
"""
from __future__ import annotations

import numpy as np

_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")


def gemm(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """C = alpha·op(a)·op(b) + beta·C"""
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    c = alpha * (a @ b)
    if out is None:
        return c
    out[...] = c + beta * out if beta != 0 else c
    return out


def _activate(z, activation):
    if activation in (None, "linear"):
        return z
    return {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}[activation](z)


def _activation_grad(dy, y, activation):
    """δ = dy ⊙ f'(·), written through the output y."""
    if activation in (None, "linear"):
        return dy
    return {"relu": relu_backward, "sigmoid": sigmoid_backward, "tanh": tanh_backward}[activation](dy, y)


def dense_forward(x, W, b=None, activation="linear"):
    """y = f(x·Wᵀ + b)"""
    z = x @ W.T
    if b is not None:
        z = z + b
    return _activate(z, activation)


def dense_backward(x, W, dy, y=None, activation="linear", need_dx=True):
    """δ = dy ⊙ f'(y);  dx = δ·W;  dW = δᵀ·x;  db = Σ_batch δ"""
    delta = _activation_grad(dy, y, activation)
    dx = delta @ W if need_dx else None
    return dx, delta.T @ x, delta.sum(axis=0)


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


def binary_cross_entropy(logits, targets):
    """L = mean(max(z,0) − z·t + log(1 + e^−|z|));  ∂L/∂z = (sigmoid(z) − t)/n"""
    z, t = logits, targets
    per_element = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    loss = float(per_element.astype(np.float64).mean()) if z.size else 0.0
    return loss, (sigmoid(z) - t) / max(z.size, 1)


def sgd_step(param, grad, velocity=None, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """g = grad + wd·p;  v = μ·v + g;  p −= lr·(g + μ·v if nesterov else v)   (in place)"""
    g = grad + weight_decay * param
    if momentum != 0:
        velocity *= momentum
        velocity += g
        g = g + momentum * velocity if nesterov else velocity
    param -= lr * g


def adam_step(param, grad, m, v, step, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, decoupled_weight_decay=False):
    """m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= lr·m̂/(sqrt(v̂) + eps)   (in place)"""
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
