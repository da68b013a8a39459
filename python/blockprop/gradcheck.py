"""Check back-propagation against central finite differences."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from .nn.losses import get_loss
from .training import as_inputs, as_targets


def gradcheck(model: Any, X: Any, y: Any, loss: Any, eps: float = 1e-6) -> Dict[str, float]:
    """Worst relative error ``|a − n| / max(|a| + |n|, floor)`` per parameter between the
    back-propagated gradient ``a`` and the central difference ``n = (L(p+eps) − L(p−eps)) / 2eps``.

    ``floor = 1e-9·max(1, |L|) / eps`` (1e-3·max(1, |L|) at the default eps): the difference
    quotient's rounding error, a few ``1e-16·|L| / eps``, would swamp a purely relative
    comparison of tiny gradient elements, so those are measured against the floor instead.

    Runs on a float64 copy of ``model``; the model itself is untouched. One forward pass per
    perturbed element, so keep the network and ``X`` small. Values below ~1e-6 mean agreement.
    """
    loss_fn = get_loss(loss)
    if loss_fn is None:
        raise ValueError("gradcheck needs a loss")
    if not hasattr(model, "astype") or not hasattr(model, "parameters"):
        raise TypeError(f"gradcheck: model must be a blockprop Sequential, got {type(model).__name__}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not (0 < eps < 1):
        raise ValueError(f"gradcheck: eps must be a number in (0, 1), got {eps!r}")
    m = model.astype("float64")
    X = as_inputs(m, X)
    Y = as_targets(m, loss_fn, y, len(X))
    value, grad = loss_fn(m.forward(X), Y)
    floor = 1e-9 * max(1.0, abs(value)) / eps
    m.backward(grad)
    errors = {}
    for name, p in m.parameters().items():
        analytic = p.grad.copy()
        numeric = np.empty_like(p.data)
        flat = p.data.reshape(-1)  # a view: writing it perturbs the parameter
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            up, _ = loss_fn(m.forward(X), Y)
            flat[i] = original - eps
            down, _ = loss_fn(m.forward(X), Y)
            flat[i] = original
            numeric.flat[i] = (up - down) / (2 * eps)
        err = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), floor)
        errors[name] = float(err.max())
    return errors
