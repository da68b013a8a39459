"""Learning-rate schedules and how fit applies them."""
import math

import numpy as np
import pytest

from blockprop.nn import Dense, Sequential
from blockprop.optim import SGD
from blockprop.schedules import (Constant, CosineDecay, ExponentialDecay, StepDecay, Warmup,
                                 from_config, to_config)


def test_values():
    assert Constant()(0) == Constant()(17.5) == 1.0
    s = StepDecay(step_epochs=2, gamma=0.5)
    assert [s(e) for e in (0, 1.9, 2, 3.99, 4)] == [1, 1, 0.5, 0.5, 0.25]
    e = ExponentialDecay(0.9)
    assert e(0) == 1 and e(0.99) == 1 and e(1) == 0.9 and math.isclose(e(3.5), 0.9 ** 3)
    c = CosineDecay(10, min_factor=0.1)
    assert c(0) == 1 and math.isclose(c(5), 0.55) and math.isclose(c(10), 0.1) and math.isclose(c(20), 0.1)
    w = Warmup(StepDecay(1, 0.5), warmup_epochs=2)
    assert w(0) == 0 and w(1) == 0.5 and w(2) == 1 and w(3) == 0.5


def test_config_round_trip():
    for s in (Constant(), StepDecay(3, 0.2), ExponentialDecay(0.95), CosineDecay(7, 0.01),
              Warmup(CosineDecay(5), 1.5)):
        back = from_config(to_config(s))
        assert type(back) is type(s) and all(back(e) == s(e) for e in np.linspace(0, 12, 49))
    with pytest.raises(ValueError):
        to_config(lambda epoch: 1.0)


@pytest.mark.parametrize("make", [lambda: StepDecay(0, 0.5), lambda: StepDecay(1, -0.5),
                                  lambda: CosineDecay(-1), lambda: Warmup(Constant(), -1),
                                  lambda: ExponentialDecay(float("nan"))])
def test_bad_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_fit_applies_schedule_before_every_update():
    seen = []

    class Spy(SGD):
        def step(self, params, lr=None):
            seen.append(lr)
            super().step(params, lr)

    X = np.random.default_rng(0).normal(size=(10, 2))
    y = np.arange(10) % 2
    model = Sequential(Dense(2, 2, seed=0))
    sched = Warmup(StepDecay(1, 0.5), warmup_epochs=1)
    hist = model.fit(X, y, epochs=3, batch_size=4, optimizer=Spy(0.1), schedule=sched, verbose=0)
    progress = [e + i / 3 for e in range(3) for i in range(3)]  # 3 batches per epoch: 4, 4, 2 rows
    assert seen == pytest.approx([0.1 * sched(p) for p in progress])
    assert hist.history["lr"] == pytest.approx([0.1 * sched(2 / 3), 0.1 * sched(5 / 3), 0.1 * sched(8 / 3)])
    # A second fit continues the schedule (and keeps it when none is given).
    seen.clear()
    model.fit(X, y, epochs=1, batch_size=4, verbose=0)
    assert seen == pytest.approx([0.1 * sched(3 + i / 3) for i in range(3)])
