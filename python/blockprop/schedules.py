"""Learning-rate schedules: ``schedule(epoch) -> factor`` multiplying the optimizer's base lr.

``epoch`` is training progress in (fractional) epochs, ``updates / steps_per_epoch``, counted
from the model's first ``fit``: the first update of training sees 0.0, the first update of the
third epoch 2.0. ``fit(..., schedule=...)`` evaluates it before every update.
"""
from __future__ import annotations

import math
from typing import Any, Dict


class Schedule:
    """Base class; subclasses are small, pure functions of progress plus their config."""

    def __call__(self, epoch: float) -> float:
        raise NotImplementedError

    def get_config(self) -> Dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    # Infinite values make NaN factors (inf·0 in CosineDecay, inf**0 then inf in the decays).
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be finite and {'≥' if allow_zero else '>'} 0, got {value!r}")
    return v


class Constant(Schedule):
    """Always the base learning rate."""

    def __call__(self, epoch: float) -> float:
        return 1.0


class StepDecay(Schedule):
    """Multiply by ``gamma`` every ``step_epochs`` epochs: ``gamma ** floor(epoch / step_epochs)``."""

    def __init__(self, step_epochs: float, gamma: float = 0.1):
        self.step_epochs = _positive("step_epochs", step_epochs)
        self.gamma = _positive("gamma", gamma, allow_zero=True)

    def __call__(self, epoch: float) -> float:
        return self.gamma ** math.floor(epoch / self.step_epochs)

    def get_config(self) -> Dict[str, Any]:
        return {"step_epochs": self.step_epochs, "gamma": self.gamma}


class ExponentialDecay(Schedule):
    """Multiply by ``gamma`` after each completed epoch: ``gamma ** floor(epoch)``."""

    def __init__(self, gamma: float):
        self.gamma = _positive("gamma", gamma, allow_zero=True)

    def __call__(self, epoch: float) -> float:
        return self.gamma ** math.floor(epoch)

    def get_config(self) -> Dict[str, Any]:
        return {"gamma": self.gamma}


class CosineDecay(Schedule):
    """Half a cosine from 1 down to ``min_factor`` over ``total_epochs``, then ``min_factor``."""

    def __init__(self, total_epochs: float, min_factor: float = 0.0):
        self.total_epochs = _positive("total_epochs", total_epochs)
        self.min_factor = _positive("min_factor", min_factor, allow_zero=True)

    def __call__(self, epoch: float) -> float:
        t = min(max(epoch, 0.0), self.total_epochs) / self.total_epochs
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))

    def get_config(self) -> Dict[str, Any]:
        return {"total_epochs": self.total_epochs, "min_factor": self.min_factor}


class Warmup(Schedule):
    """A linear ramp from 0 over ``warmup_epochs``, then ``schedule`` (started at the ramp's end)."""

    def __init__(self, schedule: Schedule, warmup_epochs: float):
        if not callable(schedule):
            raise TypeError(f"Warmup needs a schedule to follow the ramp, got {schedule!r}")
        self.schedule = schedule
        self.warmup_epochs = _positive("warmup_epochs", warmup_epochs, allow_zero=True)

    def __call__(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            return self.schedule(0.0) * epoch / self.warmup_epochs
        return self.schedule(epoch - self.warmup_epochs)

    def get_config(self) -> Dict[str, Any]:
        return {"schedule": self.schedule, "warmup_epochs": self.warmup_epochs}


SCHEDULE_TYPES = {cls.__name__: cls for cls in (Constant, StepDecay, ExponentialDecay, CosineDecay, Warmup)}


def to_config(schedule: Schedule) -> Dict[str, Any]:
    """A JSON-able description of a built-in schedule (``ValueError`` for other callables)."""
    if type(schedule).__name__ not in SCHEDULE_TYPES or type(schedule) is not SCHEDULE_TYPES[type(schedule).__name__]:
        raise ValueError(f"cannot describe custom schedule {schedule!r}")
    config = schedule.get_config()
    if isinstance(schedule, Warmup):
        config = dict(config, schedule=to_config(schedule.schedule))
    return {"type": type(schedule).__name__, "config": config}


def from_config(description: Dict[str, Any]) -> Schedule:
    """The schedule ``to_config`` described (``ValueError`` for anything else)."""
    if not isinstance(description, dict):
        raise ValueError(f"a schedule description must be a dict, got {type(description).__name__}")
    cls = SCHEDULE_TYPES.get(str(description.get("type")))
    if cls is None:
        raise ValueError(f"unknown schedule type {description.get('type')!r}")
    config = description.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"schedule {cls.__name__}: config must be a dict, got {type(config).__name__}")
    config = dict(config)
    if cls is Warmup:
        if "schedule" not in config:
            raise ValueError("schedule Warmup: config has no inner 'schedule'")
        config["schedule"] = from_config(config["schedule"])
    try:
        return cls(**config)
    except TypeError as e:  # missing or unknown arguments
        raise ValueError(f"schedule {cls.__name__}: bad config {config!r} ({e})") from None
