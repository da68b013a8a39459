"""Callbacks for :func:`blockprop.training.fit`: run after every epoch with its metrics.

``fit(..., callbacks=[EarlyStopping("val_loss", patience=3, restore_best_weights=True),
ModelCheckpoint("best.npz", save_best_only=True), ReduceLROnPlateau(factor=0.5),
lambda epoch, logs: print(epoch, logs["loss"])])``

A callback sees ``logs``, the epoch's history entry (``"loss"``, ``"accuracy"``, ``"val_loss"``,
``"lr"``, diagnostics...). Setting ``model.stop_training = True`` ends ``fit`` after the epoch.
Epochs are counted as in the history: from the model's first fit, starting at 0.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy as np

from . import serialization

__all__ = ["Callback", "LambdaCallback", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau"]


class Callback:
    """Base class; override any of the hooks (each gets the model being trained)."""

    def on_train_begin(self, model: Any) -> None:
        pass

    def on_epoch_end(self, model: Any, epoch: int, logs: Dict[str, float]) -> None:
        pass

    def on_train_end(self, model: Any) -> None:
        pass


class LambdaCallback(Callback):
    """Wraps a plain ``fn(epoch, logs)`` (what ``fit`` does with a bare callable)."""

    def __init__(self, fn: Callable[[int, Dict[str, float]], Any]):
        if not callable(fn):
            raise TypeError(f"LambdaCallback needs a callable fn(epoch, logs), got {fn!r}")
        self.fn = fn

    def on_epoch_end(self, model: Any, epoch: int, logs: Dict[str, float]) -> None:
        self.fn(epoch, logs)

    def __repr__(self) -> str:
        return f"LambdaCallback({self.fn!r})"


def prepare(callbacks: Optional[Iterable[Any]]) -> List[Callback]:
    """``fit``'s ``callbacks`` argument as a list of Callback objects (callables wrapped)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or callable(callbacks):
        callbacks = [callbacks]
    out = []
    for cb in callbacks:
        if isinstance(cb, Callback):
            out.append(cb)
        elif isinstance(cb, type) and issubclass(cb, Callback):
            raise TypeError(f"callbacks: got the class {cb.__name__}, not an instance (add '()')")
        elif callable(cb):
            out.append(LambdaCallback(cb))
        else:
            raise TypeError(f"callbacks: {cb!r} is neither a Callback nor a callable fn(epoch, logs)")
    return out


def check_monitors(callbacks: List[Callback], has_validation: bool, classifier: bool) -> None:
    """Before training: a monitored ``val_*`` metric needs validation data, ``*accuracy`` a
    classification loss (else the callback could never act)."""
    for cb in callbacks:
        monitor = getattr(cb, "monitor", None)
        if monitor is None:
            continue
        if monitor.startswith("val_") and not has_validation:
            raise ValueError(f"{type(cb).__name__} monitors {monitor!r} but fit has no validation_data; "
                             f"pass validation_data=(X_val, y_val) or monitor {monitor[4:]!r}")
        if monitor.endswith("accuracy") and not classifier:
            raise ValueError(f"{type(cb).__name__} monitors {monitor!r} but the loss is not a "
                             "classification loss (no accuracy is recorded)")


class _Monitoring(Callback):
    """Tracks the best value of a monitored metric: ``mode`` "min", "max" or "auto" (max for
    accuracies, min otherwise); an improvement must beat the best by more than ``min_delta``."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or \
                not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number ≥ 0, got {min_delta!r}")
        self.monitor: Optional[str] = monitor
        self.min_delta = float(min_delta)
        self.mode = mode if mode != "auto" else ("max" if "acc" in monitor else "min")
        self.best = math.inf if self.mode == "min" else -math.inf

    def _value(self, logs: Dict[str, float]) -> float:
        if self.monitor not in logs:
            raise ValueError(f"{type(self).__name__}: metric {self.monitor!r} is not recorded; "
                             f"available: {sorted(logs)}")
        return float(logs[self.monitor])

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer ≥ 0, got {value!r}")
    return int(value)


class EarlyStopping(_Monitoring):
    """Stops training after ``patience`` epochs in a row without improvement of ``monitor`` (0:
    at the first one). With
    ``restore_best_weights`` the model ends with the weights (and buffers) of its best epoch."""

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False):
        super().__init__(monitor, mode, min_delta)
        self.patience = _count("patience", patience)
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch: Optional[int] = None
        self.best_epoch: Optional[int] = None
        self._best_state: Optional[Dict[str, np.ndarray]] = None

    def on_train_begin(self, model: Any) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.stopped_epoch, self.best_epoch, self._best_state = 0, None, None, None

    def on_epoch_end(self, model: Any, epoch: int, logs: Dict[str, float]) -> None:
        value = self._value(logs)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_state = model.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            model.stop_training = True

    def on_train_end(self, model: Any) -> None:
        if self.restore_best_weights and self._best_state is not None:
            model.load_state_dict(self._best_state)

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r}, "
                f"restore_best_weights={self.restore_best_weights})")


class ModelCheckpoint(_Monitoring):
    """Saves the model (:func:`blockprop.save`: atomic, with optimizer state) after each epoch, or
    with ``save_best_only`` only when ``monitor`` improved. ``path`` may hold format fields from
    the logs and ``{epoch}`` (counted from 1), e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``;
    under :func:`blockprop.fit_many` also ``{model}``, the model's index, which it needs when the
    same path is given for several models."""

    def __init__(self, path: Any, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", min_delta: float = 0.0):
        super().__init__(monitor, mode, min_delta)
        self.path = os.fspath(path)
        self.save_best_only = bool(save_best_only)
        self.saved: List[str] = []
        self.fields: Dict[str, Any] = {}  # more format fields (fit_many: "model")
        if not save_best_only:
            self.monitor = None  # nothing monitored: every epoch is saved

    def on_train_begin(self, model: Any) -> None:
        directory = os.path.dirname(os.path.abspath(self.path.split("{")[0] + "x"))
        if not os.path.isdir(directory):
            raise ValueError(f"ModelCheckpoint: directory {directory!r} does not exist")

    def on_epoch_end(self, model: Any, epoch: int, logs: Dict[str, float]) -> None:
        if self.save_best_only:
            value = self._value(logs)
            if not self._improved(value):
                return
            self.best = value
        try:
            path = self.path.format(epoch=epoch + 1, **self.fields, **logs)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"ModelCheckpoint: cannot format path {self.path!r} with epoch and "
                             f"{sorted([*self.fields, *logs])}: {e}") from None
        serialization.save(model, path)
        self.saved.append(path)

    def __repr__(self) -> str:
        return f"ModelCheckpoint({self.path!r}, monitor={self.monitor!r}, save_best_only={self.save_best_only})"


class ReduceLROnPlateau(_Monitoring):
    """Multiplies the optimizer's base learning rate by ``factor`` (never below ``min_lr``) after
    ``patience`` epochs in a row without improvement of ``monitor``, then waits ``cooldown``
    epochs before counting again. A
    schedule keeps scaling the reduced rate."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, mode: str = "auto", min_lr: float = 0.0,
                 cooldown: int = 0, verbose: bool = False):
        super().__init__(monitor, mode, min_delta)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must lie in (0, 1), got {factor!r}")
        if isinstance(min_lr, bool) or not isinstance(min_lr, (int, float)) or not min_lr >= 0:
            raise ValueError(f"ReduceLROnPlateau: min_lr must be ≥ 0, got {min_lr!r}")
        self.factor, self.min_lr = float(factor), float(min_lr)
        self.patience, self.cooldown = _count("patience", patience), _count("cooldown", cooldown)
        self.verbose = bool(verbose)
        self.wait = self.cooldown_left = 0

    def on_train_begin(self, model: Any) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = self.cooldown_left = 0

    def on_epoch_end(self, model: Any, epoch: int, logs: Dict[str, float]) -> None:
        value = self._value(logs)
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            opt = model.optimizer
            new = max(opt.lr * self.factor, self.min_lr)
            if new < opt.lr:
                if self.verbose:
                    print(f"ReduceLROnPlateau: epoch {epoch}: lr {opt.lr:.4g} -> {new:.4g}")
                opt.lr = new
            self.wait, self.cooldown_left = 0, self.cooldown

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor}, "
                f"patience={self.patience}, min_lr={self.min_lr})")
