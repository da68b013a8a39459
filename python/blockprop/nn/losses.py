"""Losses: ``loss(pred, target) -> (mean loss, ∂loss/∂pred)`` through the fused kernels.

``prepare_target`` checks and converts a whole target array once (before training), so the
per-batch call does no validation.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from .. import kernels as K


class Loss:
    """Base class. ``classifier``: whether accuracy means something for this loss."""

    name = ""
    classifier = False

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> Tuple[float, np.ndarray]:
        raise NotImplementedError

    def weighted(self, pred: np.ndarray, target: np.ndarray, weights: np.ndarray) -> Tuple[float, np.ndarray]:
        """The weighted mean over rows ``Σ w·ℓ / Σ w`` and its gradient, ``weights`` float64
        ``(batch,)`` (:func:`blockprop.kernels.weighted_loss`). Losses without it take no
        sample weights."""
        raise NotImplementedError

    def prepare_target(self, y: Any, n_outputs: int, dtype: np.dtype) -> np.ndarray:
        """``y`` checked against the model's ``n_outputs`` and converted for ``__call__``."""
        raise NotImplementedError

    def correct(self, pred: np.ndarray, target: np.ndarray, weights: Optional[np.ndarray] = None) -> Any:
        """How many rows of ``pred`` are classified right (classifiers only); with ``weights``
        (float64 ``(batch,)``), the sum of those rows' weights."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _all_finite(y: np.ndarray) -> bool:
    """Whether ``y`` holds no NaN or infinity: integers always; contiguous float32/float64 in one
    pass of the ``count_nonfinite`` kernel (no temporary array); anything else through NumPy."""
    if y.dtype.kind in "biu":
        return True
    if y.dtype in (np.dtype(np.float32), np.dtype(np.float64)) and y.flags.c_contiguous:
        return K.count_nonfinite(y) == 0
    return bool(np.all(np.isfinite(y)))


def _numeric(y: Any, what: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric, got an array of dtype {y.dtype}")
    return y


class MSELoss(Loss):
    """Mean squared error over all elements, for regression."""

    name = "mse"

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> Tuple[float, np.ndarray]:
        return K.mse_loss(pred, target)

    def weighted(self, pred: np.ndarray, target: np.ndarray, weights: np.ndarray) -> Tuple[float, np.ndarray]:
        return K.weighted_loss("mse", pred, target, weights)

    def prepare_target(self, y: Any, n_outputs: int, dtype: np.dtype) -> np.ndarray:
        y = _numeric(y)
        if y.ndim == 1 and n_outputs == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(f"MSELoss: y must have shape (n, {n_outputs}) to match the model's "
                             f"{n_outputs} outputs, got {y.shape}")
        if not _all_finite(y):
            raise ValueError("MSELoss: y contains NaN or infinity")
        with np.errstate(over="ignore"):  # reported just below
            converted = np.ascontiguousarray(y, dtype=dtype)
        # Checked again in the model's dtype: 1e39 is finite in float64 but inf in float32.
        if converted is not y and not _all_finite(converted):
            raise ValueError(f"MSELoss: y contains values beyond the range of {np.dtype(dtype).name} "
                             "(infinite after conversion)")
        return converted


class CrossEntropyLoss(Loss):
    """Softmax + negative log-likelihood on logits ``(batch, classes)`` and integer labels."""

    name = "cross_entropy"
    classifier = True

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> Tuple[float, np.ndarray]:
        return K.softmax_cross_entropy(pred, target)

    def weighted(self, pred: np.ndarray, target: np.ndarray, weights: np.ndarray) -> Tuple[float, np.ndarray]:
        return K.weighted_loss("cross_entropy", pred, target, weights)

    def prepare_target(self, y: Any, n_outputs: int, dtype: np.dtype) -> np.ndarray:
        y = _numeric(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"CrossEntropyLoss: y must be integer class labels of shape (n,), got "
                             f"shape {y.shape} (one-hot targets? pass y.argmax(axis=1))")
        if n_outputs < 2:
            raise ValueError("CrossEntropyLoss needs a model with at least 2 outputs (one per class), "
                             "this one has 1; use loss='bce' for a single logit")
        if y.dtype.kind == "f":
            if not _all_finite(y) or np.any(y != np.round(y)):
                raise ValueError("CrossEntropyLoss: y must hold integer class labels, got non-integer values")
        if y.size and (y.min() < 0 or y.max() >= n_outputs):
            raise ValueError(f"CrossEntropyLoss: labels must lie in [0, {n_outputs}) for a model with "
                             f"{n_outputs} outputs, got values from {y.min()} to {y.max()}")
        return np.ascontiguousarray(y, dtype=np.int64)

    def correct(self, pred: np.ndarray, target: np.ndarray, weights: Optional[np.ndarray] = None) -> Any:
        return K.count_correct(pred, target, weights)  # argmax == label (kernels.count_correct)


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits (sigmoid fused), targets in [0, 1] of the outputs' shape."""

    name = "bce"
    classifier = True

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> Tuple[float, np.ndarray]:
        return K.binary_cross_entropy(pred, target)

    def weighted(self, pred: np.ndarray, target: np.ndarray, weights: np.ndarray) -> Tuple[float, np.ndarray]:
        return K.weighted_loss("bce", pred, target, weights)

    def prepare_target(self, y: Any, n_outputs: int, dtype: np.dtype) -> np.ndarray:
        y = _numeric(y)
        if y.ndim == 1 and n_outputs == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(f"BCEWithLogitsLoss: y must have shape (n, {n_outputs}) to match the "
                             f"model's {n_outputs} outputs, got {y.shape}")
        if y.size and not (_all_finite(y) and y.min() >= 0 and y.max() <= 1):
            raise ValueError("BCEWithLogitsLoss: targets must lie in [0, 1]")
        return np.ascontiguousarray(y, dtype=dtype)

    def correct(self, pred: np.ndarray, target: np.ndarray, weights: Optional[np.ndarray] = None) -> Any:
        # A row is right when every output is on the right side of 0.5 (one output: plain accuracy).
        return K.count_correct(pred, target, weights)


LOSSES: Dict[str, type] = {"mse": MSELoss, "cross_entropy": CrossEntropyLoss, "bce": BCEWithLogitsLoss}
LOSS_TYPES: Dict[str, type] = {cls.__name__: cls for cls in LOSSES.values()}


def get_loss(loss: Union[str, Loss, None]) -> Optional[Loss]:
    """A loss object from a name ("mse", "cross_entropy", "bce") or an instance."""
    if loss is None or isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(f"unknown loss {loss!r}; use one of {sorted(LOSSES)} or a Loss instance")
