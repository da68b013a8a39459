"""A refused call leaves the model exactly as it was, and optimizer state belongs to the model it
trains (issue 20). The battery (battery_cases.py, models "batchnorm-adam" etc.) compares every
refused call with a snapshot; these are the reported cases by name."""
from __future__ import annotations

import numpy as np
import pytest

import blockprop as bp
from blockprop.callbacks import ModelCheckpoint
from blockprop.nn import BatchNorm1d, Dense, ReLU, Sequential
from blockprop.optim import SGD, Adam


def data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), np.arange(n) % 2


def trained():
    X, y = data()
    m = Sequential(Dense(3, 6, seed=0), BatchNorm1d(6), ReLU(), Dense(6, 2, seed=1))
    m.fit(X, y, epochs=1, batch_size=4, optimizer=Adam(0.01), seed=1, verbose=0)
    return m


def snapshot(m):
    opt = m.optimizer
    return ({k: v.copy() for k, v in m.state_dict().items()},
            {n: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()} for n, s in opt.state.items()},
            (m.loss, opt, m.schedule, m.history), (m.progress.epochs, m.progress.updates, m.progress.seed))


def assert_unchanged(before, m):
    after = snapshot(m)
    assert before[0].keys() == after[0].keys()
    for k in before[0]:
        assert np.array_equal(before[0][k], after[0][k]), f"{k} changed"
    assert before[1].keys() == after[1].keys()
    for n in before[1]:
        for k in before[1][n]:
            assert np.array_equal(before[1][n][k], after[1][n][k]), f"optimizer state {n}/{k} changed"
    assert all(a is b for a, b in zip(before[2], after[2])), "loss/optimizer/schedule/history replaced"
    assert before[3] == after[3]


def test_train_step_refused_lr_keeps_batchnorm_statistics():
    m = trained()
    X, y = data()
    before = snapshot(m)
    with pytest.raises(ValueError, match="lr"):
        m.train_step(X, y, lr=float("nan"))
    assert_unchanged(before, m)
    with pytest.raises(ValueError, match="y"):
        m.train_step(X, y + 5, loss="mse", optimizer=SGD(0.1))  # neither loss nor optimizer kept
    assert_unchanged(before, m)


def test_load_state_dict_with_a_bad_last_entry_writes_nothing():
    m = trained()
    before = snapshot(m)
    sd = {k: v + 1 for k, v in m.state_dict().items()}
    last = list(sd)[-1]
    sd[last] = np.full(sd[last].shape, "x")
    with pytest.raises(TypeError, match=last):
        m.load_state_dict(sd)
    assert_unchanged(before, m)


def test_fit_refused_by_a_checkpoint_callback_keeps_optimizer_history_and_seed(tmp_path):
    m = trained()
    X, y = data()
    before = snapshot(m)
    with pytest.raises(ValueError, match="does not exist"):
        m.fit(X, y, optimizer=SGD(0.5), schedule=lambda e: 1.0, seed=99, verbose=0,
              callbacks=[ModelCheckpoint(str(tmp_path / "missing" / "m.npz"))])
    assert_unchanged(before, m)
    m.fit(X, y, verbose=0)  # and it trains on from where it was


def test_one_optimizer_given_to_two_models_keeps_their_states_apart():
    X, y = data()
    opt = Adam(0.01)
    a = Sequential(Dense(3, 2, seed=0))
    b = Sequential(Dense(3, 5, seed=0), Dense(5, 2, seed=1))  # "0.W" of another shape
    a.fit(X, y, epochs=2, optimizer=opt, seed=0, verbose=0)
    state_a = {n: {k: np.copy(v) for k, v in s.items()} for n, s in opt.state.items()}
    b.fit(X, y, epochs=1, optimizer=opt, seed=0, verbose=0)  # was: an error naming adam_step
    assert a.optimizer is opt and b.optimizer is not opt
    assert b.optimizer.hyperparameters() == opt.hyperparameters()
    for n, s in state_a.items():  # a's moments and step counts untouched by b's training
        for k, v in s.items():
            assert np.array_equal(opt.state[n][k], v)
    # b trained exactly as with its own fresh Adam
    c = Sequential(Dense(3, 5, seed=0), Dense(5, 2, seed=1))
    c.fit(X, y, epochs=1, optimizer=Adam(0.01), seed=0, verbose=0)
    for k, v in c.state_dict().items():
        assert np.array_equal(b.state_dict()[k], v)
    # train_step follows the same rule; the owning model keeps using it
    d = Sequential(Dense(3, 2, seed=0))
    d.train_step(X, y, optimizer=opt)
    assert d.optimizer is not opt
    a.train_step(X, y, optimizer=opt)
    assert a.optimizer is opt and opt.state["0.W"]["step"] == state_a["0.W"]["step"] + 1


def test_fit_refuses_a_seed_a_saved_model_could_not_hold(tmp_path):
    m = trained()
    X, y = data()
    before = snapshot(m)
    with pytest.raises(ValueError, match="seed"):
        m.fit(X, y, seed=2 ** 64, verbose=0)
    assert_unchanged(before, m)
    m.fit(X, y, seed=2 ** 64 - 1, verbose=0)
    m.save(tmp_path / "m.npz")
    assert bp.load(tmp_path / "m.npz").progress.seed == 2 ** 64 - 1


@pytest.mark.parametrize("where", ["fit", "evaluate", "validation_data", "train_step"])
def test_mse_targets_beyond_float32_are_refused(where):
    """float64 targets that overflow only on conversion to the model's float32 (1e39 -> inf) were
    trained on, ending with non-finite weights; X was checked after conversion, y was not."""
    X, _ = data()
    y = np.zeros((len(X), 2))
    bad = y.copy()
    bad[3, 1] = 1e39
    m = Sequential(Dense(3, 2, seed=0))
    before = {k: v.copy() for k, v in m.state_dict().items()}
    call = {"fit": lambda: m.fit(X, bad, loss="mse", verbose=0),
            "evaluate": lambda: m.evaluate(X, bad, loss="mse"),
            "validation_data": lambda: m.fit(X, y, loss="mse", validation_data=(X, bad), verbose=0),
            "train_step": lambda: m.train_step(X, bad, loss="mse")}[where]
    with pytest.raises(ValueError, match="y.*beyond the range of float32"):
        call()
    assert all(np.array_equal(v, m.state_dict()[k]) for k, v in before.items())
    Sequential(Dense(3, 2, seed=0, dtype="float64")).fit(X, bad, loss="mse", verbose=0)  # fine in float64


@pytest.mark.parametrize("schedule,match", [
    (bp.schedules.ExponentialDecay(1e300), "OverflowError"),
    (bp.schedules.StepDecay(5e-324), "OverflowError"),
    (bp.schedules.StepDecay(1e-3, gamma=10), "OverflowError"),
    (lambda e: 1.0 if e < 2.5 else float("nan"), "returned nan at epoch"),
    (lambda e: 1e308, "learning rate inf"),
])
def test_a_schedule_that_fails_later_is_refused_before_the_first_update(schedule, match):
    """Schedules raised OverflowError (or gave NaN) mid-training, after updates had been made."""
    m = trained()
    X, y = data()
    before = snapshot(m)
    with pytest.raises(ValueError, match=match):
        m.fit(X, y, epochs=4, batch_size=4, optimizer=SGD(10.0), schedule=schedule, verbose=0)
    assert_unchanged(before, m)


def test_copies_and_pickles_of_a_model_keep_its_optimizer_state():
    """The binding of optimizer to model is not carried into copies: a deep copy (or an unpickled
    model) trains on with its own copy of the state, exactly as the original would."""
    import copy
    import pickle
    X, y = data()
    m = trained()
    for twin in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert twin.optimizer is not m.optimizer
        twin.fit(X, y, epochs=1, batch_size=4, seed=5, verbose=0)
        assert twin.optimizer.state["0.W"]["step"] == m.optimizer.state["0.W"]["step"] + 4
    m.fit(X, y, epochs=1, batch_size=4, seed=5, verbose=0)
    assert all(np.array_equal(v, twin.state_dict()[k]) for k, v in m.state_dict().items())
