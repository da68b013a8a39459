"""Optimizers: update named parameters in place with the compiled kernels.

``step(params)`` takes ``{name: Parameter}`` (as ``Sequential.parameters()`` returns) and keeps
per-parameter state under those names, so ``state_dict()`` / ``load_state_dict()`` move it with
a saved model. ``lr`` is the base learning rate; a schedule passes the scaled rate to ``step``.
"""
from __future__ import annotations

import math
import weakref
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import numpy as np

from . import kernels as K


def _check(name: str, value: Any, low: float = 0.0, high: float = math.inf,
           high_open: bool = False) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < low or v > high or (high_open and v == high):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"{name} must lie in {bound}, got {value!r}")
    return v


class Optimizer:
    """Base class: hyperparameters in ``self.hyperparameters()``, arrays in ``self.state``."""

    def __init__(self, lr: float):
        self.lr = _check("lr", lr)
        self.state: Dict[str, Dict[str, Any]] = {}
        self._owner: Any = None  # weak reference to the model it trains (see for_model)

    def __getstate__(self) -> Dict[str, Any]:
        # Copies and pickles are unbound: the weak reference cannot be pickled, and a deep copy
        # of a model must keep its optimizer's state rather than find it owned by the original.
        return dict(self.__dict__, _owner=None)

    def fresh(self) -> "Optimizer":
        """A new optimizer of this type with these hyperparameters and no state."""
        return type(self)(**self.hyperparameters())

    def step(self, params: Mapping[str, Any], lr: Optional[float] = None) -> None:
        """Update every parameter from its ``grad``; ``lr`` overrides ``self.lr`` for this step."""
        lr = self.lr if lr is None else _check("lr", lr)
        if not isinstance(params, Mapping):
            raise TypeError(f"step: params must be a mapping name -> Parameter, got {type(params).__name__}")
        for name, p in params.items():
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise TypeError(f"step: params[{name!r}] must be a Parameter (with .data and .grad), "
                                f"got {type(p).__name__}")
            self._update(name, p, lr)

    def _update(self, name: str, p: Any, lr: float) -> None:
        raise NotImplementedError

    def state_arrays(self, name: str, data: np.ndarray) -> Tuple[np.ndarray, ...]:
        """The state arrays the update of parameter ``name`` (value ``data``) reads and writes,
        created (zeros like ``data``) as its first update would: the Python step and the C++ loop
        (:mod:`blockprop._fastpath`) share them."""
        raise NotImplementedError

    def step_count(self, names: Iterable[str]) -> Optional[int]:
        """How many updates the parameters ``names`` have had, when it is the same for all of them
        (0 for one never updated); None when it differs, which only the Python step handles."""
        return 0

    def advance_steps(self, names: Iterable[str], n: int) -> None:
        """Count ``n`` updates of the parameters ``names`` made outside :meth:`step` (the C++
        loop), after :meth:`state_arrays` gave it their state."""

    def hyperparameters(self) -> Dict[str, Any]:
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        """``{"type", "hyperparameters", "state": {param name: {buffer: array or int}}}`` (copies)."""
        state = {name: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for name, s in self.state.items()}
        return {"type": type(self).__name__, "hyperparameters": self.hyperparameters(), "state": state}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyperparameters and per-parameter state from ``state_dict()``'s output."""
        if not isinstance(state_dict, Mapping) or not isinstance(state_dict.get("state"), Mapping) \
                or not isinstance(state_dict.get("hyperparameters"), Mapping):
            raise TypeError("load_state_dict: expected state_dict()'s output, a mapping with "
                            "'type', 'hyperparameters' and 'state' mappings")
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(f"state of a {state_dict.get('type')} optimizer cannot load into {type(self).__name__}")
        type(self).__init__(self, **state_dict["hyperparameters"])
        self.state = {name: {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                      for name, s in state_dict["state"].items()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay
    (PyTorch's semantics: ``v = μ·v + g``, ``p −= lr·v``)."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(lr)
        self.momentum = _check("momentum", momentum, 0.0, 1.0, high_open=True)  # as sgd_step
        self.nesterov = bool(nesterov)
        self.weight_decay = _check("weight_decay", weight_decay)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def state_arrays(self, name: str, data: np.ndarray) -> Tuple[np.ndarray, ...]:
        """``(velocity,)`` with momentum, ``()`` without (no state kept)."""
        if self.momentum == 0:
            return ()
        s = self.state.setdefault(name, {})
        if "velocity" not in s:
            s["velocity"] = np.zeros_like(data)
        return (s["velocity"],)

    # SGD's update does not depend on how many came before: no count kept (step_count is 0).

    def _update(self, name: str, p: Any, lr: float) -> None:
        velocity = (self.state_arrays(name, p.data) or (None,))[0]
        K.sgd_step(p.data, p.grad, velocity, lr=lr, momentum=self.momentum,
                   nesterov=self.nesterov, weight_decay=self.weight_decay)

    def hyperparameters(self) -> Dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam with bias correction; ``weight_decay`` is L2 on the gradient, or with ``decoupled``
    AdamW's decay of the weights themselves."""

    def __init__(self, lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False):
        super().__init__(lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check("beta1", betas[0], 0.0, 1.0, high_open=True),
                      _check("beta2", betas[1], 0.0, 1.0, high_open=True))
        self.eps = _check("eps", eps)
        if self.eps == 0:  # adam_step divides by sqrt(v̂) + eps
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.weight_decay = _check("weight_decay", weight_decay)
        self.decoupled = bool(decoupled)

    def state_arrays(self, name: str, data: np.ndarray) -> Tuple[np.ndarray, ...]:
        """``(m, v)``; a new parameter's come with a step count of 0."""
        s = self.state.get(name)
        if s is None:
            s = self.state[name] = {"m": np.zeros_like(data), "v": np.zeros_like(data), "step": 0}
        return s["m"], s["v"]

    def step_count(self, names: Iterable[str]) -> Optional[int]:
        counts = {self.state[n]["step"] if n in self.state else 0 for n in names}
        return counts.pop() if len(counts) == 1 else (0 if not counts else None)

    def advance_steps(self, names: Iterable[str], n: int) -> None:
        for name in names:
            self.state[name]["step"] += n

    def _update(self, name: str, p: Any, lr: float) -> None:
        m, v = self.state_arrays(name, p.data)
        s = self.state[name]
        s["step"] += 1  # bias correction of this update: its 1-based count
        K.adam_step(p.data, p.grad, m, v, s["step"], lr=lr, beta1=self.betas[0],
                    beta2=self.betas[1], eps=self.eps, weight_decay=self.weight_decay,
                    decoupled_weight_decay=self.decoupled)

    def hyperparameters(self) -> Dict[str, Any]:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay, "decoupled": self.decoupled}


def AdamW(lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2) -> Adam:
    """Adam with decoupled weight decay (Loshchilov & Hutter)."""
    return Adam(lr, betas, eps, weight_decay, decoupled=True)


OPTIMIZER_TYPES = {"SGD": SGD, "Adam": Adam}


def for_model(opt: Optimizer, model: Any) -> Optimizer:
    """The optimizer ``model`` trains with when given ``opt``: ``opt`` itself, unless ``opt``
    already trains another model that is still alive; then a new optimizer with ``opt``'s
    hyperparameters and no state. Optimizer state (Adam's moments and step counts, momentum)
    belongs to the model it was built on: two models sharing it would each corrupt the other's.
    Changes nothing; :func:`bind` makes the choice stick once the call is accepted."""
    owner = opt._owner() if getattr(opt, "_owner", None) is not None else None
    if owner is None or owner is model:
        return opt
    return opt.fresh()


def bind(opt: Optimizer, model: Any) -> None:
    """Record that ``opt`` trains ``model`` (see :func:`for_model`)."""
    opt._owner = weakref.ref(model)


def get_optimizer(optimizer: Any) -> Optimizer:
    """An optimizer from an instance or a name ("sgd", "adam") with default hyperparameters."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in ("sgd", "adam"):
        return SGD() if optimizer.lower() == "sgd" else Adam()
    raise ValueError(f"unknown optimizer {optimizer!r}; use an SGD/Adam instance or 'sgd'/'adam'")
