"""fit / evaluate / predict: correctness against a hand-computed step, learning, input checks."""
import os
import re
import signal
import time
import warnings

import numpy as np
import pytest

from blockprop import _fastpath, step
from blockprop import reference as R
from blockprop.nn import Dense, ReLU, Sequential
from blockprop.optim import SGD, Adam
from blockprop.training import EpochOrders


def spirals(n_per_class=300, classes=2, noise=0.15, seed=0):
    """Interleaved spiral arms, one per class, in 2-D."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c in range(classes):
        r = np.linspace(0.1, 1.0, n_per_class)
        t = np.linspace(0, 3.5, n_per_class) + 2 * np.pi * c / classes + rng.normal(0, noise, n_per_class) * 0.5
        X.append(np.c_[r * np.sin(t), r * np.cos(t)])
        y.append(np.full(n_per_class, c))
    return np.concatenate(X), np.concatenate(y)


def small_model(dtype="float32", out=3):
    return Sequential(Dense(2, 16, "tanh", seed=0, dtype=dtype), Dense(16, out, seed=1, dtype=dtype))


def test_train_step_matches_hand_computed_reference_step():
    """Two SGD-momentum steps through the model == the same maths with blockprop.reference."""
    rng = np.random.default_rng(0)
    model = Sequential(Dense(3, 5, "tanh", seed=0, dtype="float64"), Dense(5, 4, seed=1, dtype="float64"))
    for p in model.parameters().values():
        p.data[...] = rng.normal(size=p.data.shape)
    P = {k: p.data.copy() for k, p in model.parameters().items()}
    V = {k: np.zeros_like(v) for k, v in P.items()}
    opt = SGD(lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(2):
        X, y = rng.normal(size=(6, 3)), rng.integers(0, 4, 6)
        loss = model.train_step(X, y, loss="cross_entropy", optimizer=opt)
        h = R.dense_forward(X, P["0.W"], P["0.b"], "tanh")
        z = R.dense_forward(h, P["1.W"], P["1.b"])
        ref_loss, dz = R.softmax_cross_entropy(z, y)
        dh, g1W, g1b = R.dense_backward(h, P["1.W"], dz)
        _, g0W, g0b = R.dense_backward(X, P["0.W"], dh, h, "tanh")
        for k, g in zip(["0.W", "0.b", "1.W", "1.b"], [g0W, g0b, g1W, g1b]):
            R.sgd_step(P[k], g, V[k], lr=0.1, momentum=0.9, weight_decay=0.01)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        for k, p in model.parameters().items():
            np.testing.assert_allclose(p.data, P[k], rtol=0, atol=1e-12)
    assert model.optimizer is opt


def test_spirals_are_learned_quickly():
    X, y = spirals()
    X_val, y_val = spirals(seed=1)
    model = Sequential(Dense(2, 64, "relu", seed=0), Dense(64, 64, "relu", seed=1), Dense(64, 2, seed=2))
    hist = model.fit(X, y, epochs=60, batch_size=32, optimizer=Adam(0.01), validation_data=(X_val, y_val),
                     seed=0, verbose=0)
    assert hist.history["accuracy"][-1] >= 0.95
    assert model.evaluate(X_val, y_val)["accuracy"] >= 0.95
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert all(len(v) == 60 for v in hist.history.values())
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_every_sample_is_used_including_the_last_partial_batch(monkeypatch):
    """On the Python path (the C++ path is held to it in test_fastpath.py)."""
    monkeypatch.setattr(_fastpath, "enabled", False)
    sizes, rows = [], []
    model = small_model()
    original = step.train_batch

    def spy(model, Xb, Yb, lr, monitor=None, weights=None):
        sizes.append(len(Xb))
        rows.extend(Xb[:, 0].tolist())
        return original(model, Xb, Yb, lr, monitor, weights)

    monkeypatch.setattr(step, "train_batch", spy)
    X = np.c_[np.arange(10), np.zeros(10)].astype(np.float32)
    model.fit(X, np.arange(10) % 3, epochs=2, batch_size=4, seed=3, verbose=0)
    assert sizes == [4, 4, 2, 4, 4, 2]
    assert sorted(rows[:10]) == list(range(10)) and sorted(rows[10:]) == list(range(10))
    assert rows[:10] != rows[10:]  # reshuffled every epoch
    assert model.progress.updates == 6 and model.progress.epochs == 2
    rows.clear()
    model.fit(X, np.arange(10) % 3, epochs=1, batch_size=4, shuffle=False, verbose=0)
    assert rows == list(range(10))


@pytest.mark.parametrize("cpp_path", (True, False), ids=("C++ loop", "Python loop"))
def test_fit_warns_once_when_the_loss_diverges(cpp_path):
    """A learning rate that blows the weights up gives a NaN or infinite loss: fit says so once
    (not once an epoch), naming the epoch; the history keeps the figures. Both training loops."""
    from blockprop.diagnostics import TrainingDiagnosticWarning
    from blockprop.nn import GELU
    from blockprop.nn.losses import get_loss
    X, y = spirals()
    model = (Sequential(Dense(2, 16, "relu", seed=0), Dense(16, 2, seed=1)) if cpp_path
             else Sequential(Dense(2, 16, seed=0), GELU(), Dense(16, 2, seed=1)))
    assert (_fastpath.plan(model, get_loss("cross_entropy"), SGD(1e30)) is not None) == cpp_path
    with pytest.warns(TrainingDiagnosticWarning, match=r"in epoch 0: training diverged") as caught:
        hist = model.fit(X, y, epochs=3, batch_size=32, optimizer=SGD(1e30), verbose=0, seed=0)
    assert sum("diverged" in str(w.message) for w in caught) == 1
    assert not np.isfinite(hist.history["loss"]).any()
    with warnings.catch_warnings():  # a sane rate: no warning at all
        warnings.simplefilter("error")
        small_model(out=2).fit(X, y, epochs=2, batch_size=32, optimizer=SGD(0.1), verbose=0, seed=0)


def test_second_fit_continues_with_the_same_optimizer_state():
    X, y = spirals(50)
    model = small_model(out=2)
    opt = Adam(0.01)
    model.fit(X, y, epochs=2, batch_size=10, optimizer=opt, loss="cross_entropy", verbose=0)
    steps = opt.state["0.W"]["step"]
    model.fit(X, y, epochs=1, batch_size=10, verbose=0)
    assert model.optimizer is opt and opt.state["0.W"]["step"] == steps + 10


def test_seeded_training_is_reproducible_and_epochs_zero_changes_nothing():
    X, y = spirals(40)
    a, b = small_model(out=2), small_model(out=2)
    before = a.state_dict()
    a.fit(X, y, epochs=0, verbose=0)
    assert all(np.array_equal(before[k], v) for k, v in a.state_dict().items())
    a.fit(X, y, epochs=3, batch_size=8, seed=5, optimizer=SGD(0.1, momentum=0.9), verbose=0)
    b.fit(X, y, epochs=3, batch_size=8, seed=5, optimizer=SGD(0.1, momentum=0.9), verbose=0)
    assert all(np.array_equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_default_optimizer_and_loss():
    X, y = spirals(20)
    model = small_model(out=2)
    model.fit(X, y, epochs=1, verbose=0)
    assert type(model.optimizer) is SGD and model.optimizer.lr == 0.01
    assert type(model.loss).__name__ == "CrossEntropyLoss"


def _forward_rows(model):
    """Spy: the row count of every forward pass."""
    calls, original = [], model.forward
    model.forward = lambda x: calls.append(len(x)) or original(x)
    return calls


def test_predict_is_batched_and_consistent():
    X, _ = spirals(100)
    model = small_model()
    full = model.forward(X.astype(np.float32))
    calls = _forward_rows(model)
    out = model.predict(X, batch_size=64)
    assert calls == [64, 64, 64, 8]
    np.testing.assert_allclose(out, full, rtol=1e-6, atol=1e-6)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert np.array_equal(model.predict_classes(X), out.argmax(axis=1))


def test_predict_without_batch_size_takes_rows_by_activation_width():
    """No batch_size: as many rows as keep the widest activation under 8 MiB, at least 1024; the
    outputs are the same bits as in small batches, and evaluate batches the same way."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, 2))
    narrow = small_model()                            # widest: 16 floats, X (float64) 2 wide
    calls = _forward_rows(narrow)
    out = narrow.predict(X)
    assert calls == [20000]                           # 8 MiB / (16 × 4 B) rows: all of them
    del narrow.forward
    assert np.array_equal(out, narrow.predict(X, batch_size=7))
    wide = Sequential(Dense(2, 4096, "relu", seed=0), Dense(4096, 3, seed=1))
    calls = _forward_rows(wide)
    wide.predict(X[:3000].astype(np.float32))
    assert calls == [1024, 1024, 952]                 # 8 MiB / (4096 × 4 B) = 512: the floor
    calls.clear()
    wide.evaluate(X[:3000], rng.integers(0, 3, 3000))
    assert calls == [1024, 1024, 952]
    with pytest.raises(ValueError, match="batch_size"):
        wide.predict(X, batch_size=0)


def test_binary_classification_and_regression():
    X, y = spirals(100, noise=0.0)
    X = X[(np.abs(X[:, 0]) > 0.1)]
    y = (X[:, 0] > 0).astype(int)  # a linearly separable problem
    clf = Sequential(Dense(2, 8, "tanh", seed=0), Dense(8, 1, seed=1))
    hist = clf.fit(X, y, epochs=30, batch_size=16, loss="bce", optimizer=Adam(0.05), verbose=0)
    assert hist.history["accuracy"][-1] > 0.95
    assert clf.predict_classes(X).shape == (len(X),) and np.mean(clf.predict_classes(X) == y) > 0.95
    assert ((clf.predict_proba(X) > 0) & (clf.predict_proba(X) < 1)).all()

    reg = Sequential(Dense(2, 16, "tanh", seed=0, dtype="float64"), Dense(16, 1, seed=1, dtype="float64"))
    target = X[:, 0] - 0.5 * X[:, 1]
    hist = reg.fit(X, target, epochs=40, batch_size=16, loss="mse", optimizer=Adam(0.01), verbose=0)
    assert "accuracy" not in hist.history and hist.history["loss"][-1] < 0.01
    assert set(reg.evaluate(X, target)) == {"loss"}
    assert reg.predict(X).dtype == np.float64


def test_progress_bar_only_when_verbose(capsys):
    X, y = spirals(20)
    small_model(out=2).fit(X, y, epochs=2, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    small_model(out=2).fit(X, y, epochs=2, verbose=1)
    assert "Epoch 2/2" in capsys.readouterr().err
    small_model(out=2).fit(X, y, epochs=2, verbose=2)
    assert "Epoch 2/2: loss=" in capsys.readouterr().out


GOOD_X, GOOD_Y = np.zeros((4, 2)), np.array([0, 1, 2, 0])


@pytest.mark.parametrize("X,y,kwargs,error,match", [
    (np.zeros((4, 3)), GOOD_Y, {}, ValueError, r"3 features.*\(4, 3\).*expects 2"),
    (np.zeros(4), GOOD_Y, {}, ValueError, r"2-D.*\(4,\)"),
    (np.zeros((0, 2)), GOOD_Y[:0], {}, ValueError, "empty"),
    (GOOD_X, GOOD_Y[:3], {}, ValueError, "X has 4, y has shape \\(3,\\)"),
    (GOOD_X, np.array([0, 1, 3, 0]), {}, ValueError, r"\[0, 3\)"),
    (GOOD_X, np.array([0, 1.5, 2, 0]), {}, ValueError, "integer"),
    (np.array([[0, 1], [np.nan, 0], [0, 0], [0, 0]]), GOOD_Y, {}, ValueError, "NaN.*row 1"),
    (np.array([["a", "b"]] * 4), GOOD_Y, {}, TypeError, "numeric"),
    ([[0, 1], [2]], GOOD_Y[:2], {}, TypeError, "numeric"),
    (GOOD_X, GOOD_Y, dict(batch_size=0), ValueError, "batch_size"),
    (GOOD_X, GOOD_Y, dict(epochs=-1), ValueError, "epochs"),
    (GOOD_X, GOOD_Y, dict(epochs=1.5), TypeError, "epochs"),
    (GOOD_X, GOOD_Y, dict(loss="hinge"), ValueError, "unknown loss"),
    (GOOD_X, GOOD_Y, dict(validation_data=GOOD_X), TypeError, "validation_data"),
    (GOOD_X, GOOD_Y, dict(validation_data=(np.zeros((2, 5)), GOOD_Y[:2])), ValueError, "X_val has 5 features"),
    (GOOD_X, GOOD_Y, dict(shuffle="yes"), TypeError, "shuffle must be True, False or an EpochOrders"),
    (GOOD_X, GOOD_Y, dict(shuffle=EpochOrders([[0, 1, 2, 3]]), epochs=2), ValueError, "orders of 1 epochs"),
    (GOOD_X, GOOD_Y, dict(shuffle=EpochOrders([[0, 1, 2, 2]])), ValueError, "order 0 is not a permutation"),
    (GOOD_X, GOOD_Y, dict(shuffle=EpochOrders([[0, 1, 2]])), ValueError, "order 0 is not a permutation"),
    (GOOD_X, GOOD_Y, dict(shuffle=EpochOrders([[0, 1, 2, 4]])), ValueError, "order 0 is not a permutation"),
])
def test_fit_rejects_bad_input(X, y, kwargs, error, match):
    model = small_model()
    before = model.state_dict()
    with pytest.raises(error, match=match):
        model.fit(X, y, verbose=0, **kwargs)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert model.optimizer is None  # nothing was set up by the failed call


def test_predict_and_evaluate_reject_bad_input():
    model = small_model()
    with pytest.raises(ValueError, match="expects 2"):
        model.predict(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(GOOD_X, batch_size=0)
    with pytest.raises(ValueError, match="NaN"):
        model.predict_proba(np.full((2, 2), np.inf))
    with pytest.raises(ValueError, match="different numbers of samples"):
        model.evaluate(GOOD_X, GOOD_Y[:2])
    with pytest.raises(ValueError, match="empty"):
        model.predict(np.zeros((0, 2)))


@pytest.fixture
def default_sigint():
    """Python's default SIGINT handler for the test, whatever the process inherited: started with
    SIGINT ignored (nohup, background jobs, some CI runners), the signal would never reach fit."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_at_a_batch_boundary_and_reraises(monkeypatch, default_sigint):
    """On the Python path, whose optimizer steps can be spied on (C++ path: test_fastpath.py)."""
    monkeypatch.setattr(_fastpath, "enabled", False)
    X, y = spirals(50)
    model = small_model(out=2)
    model.fit(X, y, epochs=1, batch_size=10, verbose=0)  # 10 batches per epoch
    opt = model.optimizer
    original = opt.step
    calls = []

    def step_then_interrupt(params, lr=None):
        calls.append(1)
        if len(calls) == 13:  # in the middle of the second epoch of the next fit
            os.kill(os.getpid(), signal.SIGINT)  # delivered while this step is still running
        original(params, lr)

    opt.step = step_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epochs=5, batch_size=10, verbose=0)
    assert len(calls) == 13  # the interrupted batch finished, nothing after it ran
    assert model.progress.updates == 10 + 13
    assert len(model.history.epoch) == 1 and len(model.history.history["loss"]) == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    opt.step = original
    model.fit(X, y, epochs=1, batch_size=10, verbose=0)  # the model is still usable
    assert np.isfinite(model.predict(X)).all()


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_predict_rejects_nonfinite_input_that_the_network_would_hide(dtype):
    """predict checks X in its first Dense layer (its GEMM counts non-finite values before the
    activation). -inf under a ReLU whose weights are all positive, or inf times a zero weight
    that a later layer ignores, would leave the output finite: still refused, with the message of
    the full check, in any batch; a finite X that overflows inside the network is not refused."""
    model = Sequential(Dense(3, 4, "relu", seed=0, dtype=dtype), Dense(4, 2, seed=1, dtype=dtype))
    model.layers[0].W = np.abs(model.layers[0].W) + 0.1
    X = np.ones((2500, 3))
    X[1777, 1] = -np.inf
    assert np.isfinite(model.forward(X.astype(dtype))).all()  # the network alone hides it
    suffix = " after conversion to float32" if dtype == np.float32 else ""
    for batch_size in (None, 1000, 1):
        with pytest.raises(ValueError, match=re.escape(
                f"X contains NaN or infinity (in 1 rows, the first at row 1777){suffix}") + "$"):
            model.predict(X, batch_size=batch_size)
    X[1777, 1] = 1.0
    X[3, 0] = np.nan
    with pytest.raises(ValueError, match="in 1 rows, the first at row 3"):
        model.predict_classes(X)
    X[3, 0] = 1e300  # finite in float64, inf in float32: refused without a cast warning
    if dtype == np.float32:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match=r"in 1 rows, the first at row 3\) after conversion to float32$"):
                model.predict(X)
    X[3, 0] = 1.0
    model.layers[0].W = np.full((4, 3), np.finfo(dtype).max)  # finite weights, overflowing layer
    with np.errstate(over="ignore", invalid="ignore"):
        out = model.predict(X)
    assert out.shape == (2500, 2) and not np.isfinite(out).all()


def test_predict_checks_input_up_front_when_the_first_layer_is_not_dense():
    model = Sequential(ReLU(), Dense(2, 3, seed=0))
    X = np.ones((5, 2))
    X[4, 1] = -np.inf  # ReLU would turn it into 0
    with pytest.raises(ValueError, match="in 1 rows, the first at row 4"):
        model.predict(X)


def test_predict_and_evaluate_release_the_layers_arrays(rng):
    """predict and evaluate leave no batch's arrays in the layers (what forward keeps for
    backward): the memory is free once they return, and a backward after them is refused as one
    before any forward, not run on the last batch they saw."""
    from blockprop.nn import GELU, BatchNorm1d, LayerNorm
    model = Sequential(Dense(6, 5, "relu", seed=0), GELU(), BatchNorm1d(5), LayerNorm(5), ReLU(),
                       Dense(5, 3, seed=1))
    X = rng.standard_normal((20, 6)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    cached = [(layer, name) for layer in model.layers for name in layer._cache]
    assert len(cached) == 12
    for name, call in (("predict", lambda: model.predict(X)),
                       ("evaluate", lambda: model.evaluate(X, y, loss="cross_entropy"))):
        model.forward(X)
        assert all(getattr(layer, layer._cache[0]) is not None for layer in model.layers)
        call()
        held = [f"{type(layer).__name__}.{attr}" for layer, attr in cached
                if getattr(layer, attr) is not None]
        assert not held, f"{name} left {held} held"
        with pytest.raises(RuntimeError, match="before forward"):
            model.backward(np.ones((20, 3), np.float32))
    model.fit(X, y, epochs=2, batch_size=8, validation_data=(X, y), verbose=0)  # trains on after


@pytest.mark.parametrize("cpp", [True, False], ids=["cpp", "python"])
def test_given_epoch_orders_train_each_epoch_on_its_order(cpp, monkeypatch):
    """shuffle=EpochOrders(orders): epoch e trains on X[orders[e]] in that order, bit for bit as a
    fit on the reordered rows without shuffling, epoch by epoch (the C++ loop and the Python one),
    sample weights following their rows; orders of the wrong kind are refused up front."""
    if not cpp:
        monkeypatch.setattr(_fastpath, "plan", lambda *a: None)
    X, y = spirals(n_per_class=50)
    w = np.random.default_rng(1).uniform(0.5, 2, len(X))
    rng = np.random.default_rng(2)
    orders = [rng.permutation(len(X)) for _ in range(3)]
    given = small_model(out=2)
    given.fit(X, y, epochs=3, batch_size=16, optimizer=SGD(0.1, momentum=0.9), verbose=0,
              shuffle=EpochOrders(orders), sample_weight=w)
    replayed = small_model(out=2)
    for e, o in enumerate(orders):
        replayed.fit(X[o], y[o], epochs=1, batch_size=16, verbose=0, shuffle=False, sample_weight=w[o],
                     optimizer=SGD(0.1, momentum=0.9) if e == 0 else None)
    assert all(np.array_equal(v, replayed.state_dict()[k]) for k, v in given.state_dict().items())
    assert EpochOrders(orders) == EpochOrders([o.copy() for o in orders]) != EpochOrders(orders[:2])
    assert EpochOrders(orders)[1:] == EpochOrders(orders[1:])
    with pytest.raises(ValueError, match="1-D integer"):
        EpochOrders([np.zeros(4)])
    with pytest.raises(ValueError, match="non-empty"):
        EpochOrders([])
