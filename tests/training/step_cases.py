"""The option matrix of the one-training-step tests (tests/training/test_step.py), shared with
tests/mpi_worker.py so that ``distributed.fit`` trains the very same cases.

A case is a model (every layer kind, activation and penalty), a loss, an optimizer and a
schedule. Every way of training must give the same weights for it: ``fit`` on the C++ path and on
the Python path, a ``train_step`` loop and ``distributed.fit`` on one rank bit for bit; on 2 and
3 ranks × batch B, one process with batch N·B within 1e-9 (float64) where nothing depends on how
the batch is split (no dropout, no batch statistics).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List

import numpy as np

import blockprop as bp
from blockprop import nn, optim, schedules

N, FEATURES, HIDDEN, OUTPUTS = 62, 5, 8, 3  # 62 rows: the last batch of 12 holds 2
BATCH, EPOCHS, SEED = 12, 3, 11             # one process: batches of 12 = 2 ranks × 6 = 3 × 4


@dataclass
class Case:
    layers: Callable[[str], List[Any]]   # dtype -> fresh layers (fixed seeds)
    loss: str = "cross_entropy"
    optimizer: Callable[[], Any] = lambda: optim.SGD(0.1, momentum=0.9)
    schedule: Callable[[], Any] = schedules.Constant
    cpp: bool = False                    # the C++ loop (blockprop._fastpath) trains it
    splits: bool = True                  # N ranks × B equal one process × N·B (no dropout or batch statistics)

    def model(self, dtype: str = "float64") -> bp.Sequential:
        return bp.Sequential(*self.layers(dtype))


def _mlp(activation: Any = "relu", l1: float = 0.0, l2: float = 0.0, out: int = OUTPUTS) -> Callable[[str], List[Any]]:
    return lambda dt: [nn.Dense(FEATURES, HIDDEN, activation, seed=1, dtype=dt, l1=l1, l2=l2),
                       nn.Dense(HIDDEN, out, seed=2, dtype=dt, l2=l2 / 2)]


def _with(*middle: Callable[[str], Any]) -> Callable[[str], List[Any]]:
    """Dense → the given layers → Dense."""
    return lambda dt: ([nn.Dense(FEATURES, HIDDEN, seed=1, dtype=dt)] + [make(dt) for make in middle]
                       + [nn.Dense(HIDDEN, OUTPUTS, seed=2, dtype=dt)])


ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu", "softplus")
LAYERS: Dict[str, Case] = {f"dense-{a}": Case(_mlp(a), cpp=a != "gelu") for a in ACTIVATIONS}
LAYERS.update({
    "ReLU": Case(_with(lambda dt: nn.ReLU()), cpp=True),
    "Sigmoid": Case(_with(lambda dt: nn.Sigmoid()), cpp=True),
    "Tanh": Case(_with(lambda dt: nn.Tanh()), cpp=True),
    "LeakyReLU": Case(_with(lambda dt: nn.LeakyReLU()), cpp=True),
    "LeakyReLU-0.2": Case(_with(lambda dt: nn.LeakyReLU(0.2))),
    "ELU": Case(_with(lambda dt: nn.ELU()), cpp=True),
    "ELU-0.5": Case(_with(lambda dt: nn.ELU(0.5))),
    "GELU": Case(_with(lambda dt: nn.GELU())),
    "Softplus": Case(_with(lambda dt: nn.Softplus()), cpp=True),
    "Softmax": Case(_with(lambda dt: nn.Softmax())),
    "Dropout": Case(_with(lambda dt: nn.ReLU(), lambda dt: nn.Dropout(0.3, seed=5)), cpp=True,
                    splits=False),
    "BatchNorm1d": Case(_with(lambda dt: nn.BatchNorm1d(HIDDEN, dtype=dt), lambda dt: nn.ReLU()),
                        splits=False),
    "LayerNorm": Case(_with(lambda dt: nn.LayerNorm(HIDDEN, dtype=dt), lambda dt: nn.Tanh())),
    "l1": Case(_mlp(l1=0.01), cpp=True),
    "l2": Case(_mlp(l2=0.05), cpp=True),
    "l1+l2": Case(_mlp(l1=0.01, l2=0.05), cpp=True),
    "l2+Dropout": Case(lambda dt: [nn.Dense(FEATURES, HIDDEN, "relu", seed=1, dtype=dt, l2=0.5),
                                   nn.Dropout(0.5, seed=3), nn.Dense(HIDDEN, OUTPUTS, seed=2, dtype=dt)],
                       cpp=True, splits=False),
})

OPTIMIZERS: Dict[str, Callable[[], Any]] = {
    "SGD": lambda: optim.SGD(0.1),
    "SGD-momentum": lambda: optim.SGD(0.1, momentum=0.9),
    "SGD-nesterov": lambda: optim.SGD(0.1, momentum=0.9, nesterov=True),
    "SGD-weight-decay": lambda: optim.SGD(0.1, momentum=0.5, weight_decay=0.01),
    "Adam": lambda: optim.Adam(0.01),
    "AdamW": lambda: optim.AdamW(0.01, weight_decay=0.1),
    "Adam-l2": lambda: optim.Adam(0.01, weight_decay=0.01),
}

SCHEDULES: Dict[str, Callable[[], Any]] = {
    "Constant": schedules.Constant,
    "StepDecay": lambda: schedules.StepDecay(1, gamma=0.5),
    "ExponentialDecay": lambda: schedules.ExponentialDecay(0.7),
    "CosineDecay": lambda: schedules.CosineDecay(EPOCHS),
    "Warmup": lambda: schedules.Warmup(schedules.CosineDecay(EPOCHS), warmup_epochs=1),
}


def _cases() -> Dict[str, Case]:
    cases: Dict[str, Case] = {}
    for name, case in LAYERS.items():  # every layer option with momentum SGD and with Adam
        cases[f"{name}/SGD-momentum"] = case
        cases[f"{name}/Adam"] = Case(case.layers, optimizer=OPTIMIZERS["Adam"], cpp=case.cpp,
                                     splits=case.splits)
    for name, make in OPTIMIZERS.items():  # every optimizer on a penalized network
        cases[f"l1+l2/{name}"] = Case(_mlp(l1=0.01, l2=0.05), optimizer=make, cpp=True)
    for name, make in SCHEDULES.items():
        cases[f"relu/{name}"] = Case(_mlp(), schedule=make, cpp=True)
    for loss in ("mse", "bce"):
        cases[f"relu/{loss}"] = Case(_mlp(l2=0.01), loss=loss, cpp=True)
    cases["everything"] = Case(
        lambda dt: [nn.Dense(FEATURES, HIDDEN, "relu", seed=1, dtype=dt, l1=0.001, l2=0.01),
                    nn.BatchNorm1d(HIDDEN, dtype=dt), nn.Dropout(0.2, seed=4),
                    nn.Dense(HIDDEN, HIDDEN, "gelu", seed=3, dtype=dt), nn.LayerNorm(HIDDEN, dtype=dt),
                    nn.Dense(HIDDEN, OUTPUTS, seed=2, dtype=dt, l2=0.02)],
        optimizer=OPTIMIZERS["AdamW"], schedule=SCHEDULES["Warmup"], splits=False)
    return cases


CASES = _cases()


def dataset(loss: str):
    """Inputs and targets for ``loss``: class labels, regression targets or multi-label 0/1."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, FEATURES))
    if loss == "cross_entropy":
        y: np.ndarray = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5).astype(np.int64)
    elif loss == "mse":
        y = np.c_[X[:, :2].sum(axis=1), X[:, 2] * X[:, 3], np.tanh(X[:, 4])]
    else:
        y = (X[:, :OUTPUTS] > 0).astype(np.float64)
    return X, y


def fit(case: Case, batch_size: int = BATCH, dtype: str = "float64") -> bp.Sequential:
    """``model.fit`` of the case (on whichever path ``_fastpath.enabled`` allows)."""
    X, y = dataset(case.loss)
    model = case.model(dtype)
    model.fit(X, y, epochs=EPOCHS, batch_size=batch_size, loss=case.loss, optimizer=case.optimizer(),
              schedule=case.schedule(), seed=SEED, verbose=0)
    return model


def train_step_loop(case: Case, dtype: str = "float64") -> bp.Sequential:
    """The same training written out as a user would, with ``train_step``: fit's shuffles
    (``default_rng([seed, epoch])``) and learning rates (``lr · schedule(epoch + k / steps)``)."""
    X, y = dataset(case.loss)
    model, opt, schedule = case.model(dtype), case.optimizer(), case.schedule()
    steps = math.ceil(N / BATCH)
    for epoch in range(EPOCHS):
        order = np.random.default_rng([SEED, epoch]).permutation(N)
        for k in range(steps):
            rows = order[k * BATCH:(k + 1) * BATCH]
            model.train_step(X[rows], y[rows], loss=case.loss, optimizer=opt,
                             lr=opt.lr * float(schedule(epoch + k / steps)))
    return model


def distributed_fit(case: Case, batch_size: int) -> bp.Sequential:
    """``distributed.fit`` of the case on this MPI job (collective)."""
    from blockprop import distributed
    X, y = dataset(case.loss)
    model = case.model()
    distributed.fit(model, X, y, epochs=EPOCHS, batch_size=batch_size, loss=case.loss,
                    optimizer=case.optimizer(), schedule=case.schedule(), seed=SEED, verbose=0)
    return model
