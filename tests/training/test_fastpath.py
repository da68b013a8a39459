"""The C++ training loop (blockprop._fastpath) against the Python one: same kernels, same order,
so the same weights to the bit."""
import os
import signal
import threading

import numpy as np
import pytest

from blockprop import _fastpath
from blockprop.nn import Dense, ReLU, Sequential, Sigmoid, Softmax, Tanh
from blockprop.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from blockprop.optim import SGD, Adam


def make_data(loss, n=103, features=5, outputs=4, dtype="float32"):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, features)).astype(dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, outputs, n)
    elif loss == "bce":
        y = (rng.random((n, outputs)) > 0.5).astype(dtype)
    else:
        y = rng.standard_normal((n, outputs)).astype(dtype)
    return X, y


def make_model(layout, dtype, outputs=4):
    if layout == "fused":
        layers = [Dense(5, 11, "relu", seed=0, dtype=dtype), Dense(11, 7, "tanh", seed=1, dtype=dtype),
                  Dense(7, outputs, seed=2, dtype=dtype)]
    else:  # activation layers after linear Dense layers, and a layer without bias
        layers = [Dense(5, 11, seed=0, dtype=dtype), ReLU(), Dense(11, 7, seed=1, dtype=dtype, bias=False),
                  Sigmoid(), Dense(7, outputs, seed=2, dtype=dtype)]
    return Sequential(*layers)


def train(enabled, layout, dtype, loss, optimizer, shuffle, monkeypatch, epochs=3, batch_size=16):
    monkeypatch.setattr(_fastpath, "enabled", enabled)
    X, y = make_data(loss, dtype=dtype)
    model = make_model(layout, dtype)
    hist = model.fit(X, y, epochs=epochs, batch_size=batch_size, loss=loss, optimizer=optimizer(),
                     shuffle=shuffle, seed=5, verbose=0)
    return model, hist


OPTIMIZERS = {
    "sgd": lambda: SGD(0.05),
    "sgd_momentum_wd": lambda: SGD(0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda: SGD(0.05, momentum=0.8, nesterov=True),
    "adam": lambda: Adam(0.01, weight_decay=1e-3),
    "adamw": lambda: Adam(0.01, weight_decay=1e-2, decoupled=True),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("layout", ["fused", "separate"])
def test_cpp_loop_gives_the_python_loops_weights_bit_for_bit(dtype, loss, opt, layout, monkeypatch):
    shuffle = opt != "sgd"  # one unshuffled run per layout/loss/dtype
    slow, h_slow = train(False, layout, dtype, loss, OPTIMIZERS[opt], shuffle, monkeypatch)
    fast, h_fast = train(True, layout, dtype, loss, OPTIMIZERS[opt], shuffle, monkeypatch)
    assert _fastpath.plan(fast, fast.loss, fast.optimizer) is not None
    for name, p in slow.parameters().items():
        q = fast.parameters()[name]
        assert np.array_equal(p.data, q.data), f"{name}: max diff {np.abs(p.data - q.data).max()}"
    assert h_slow.history["loss"] == h_fast.history["loss"]
    assert h_slow.history.get("accuracy") == h_fast.history.get("accuracy")
    assert slow.progress.updates == fast.progress.updates == 3 * 7  # 103 rows in batches of 16
    s_slow, s_fast = slow.optimizer.state_dict()["state"], fast.optimizer.state_dict()["state"]
    assert s_slow.keys() == s_fast.keys()
    for name in s_slow:
        for key, value in s_slow[name].items():
            assert np.array_equal(value, s_fast[name][key]), f"optimizer state {name}.{key}"


def test_python_and_cpp_paths_can_take_turns(monkeypatch):
    """Optimizer state made by one path is picked up by the other."""
    X, y = make_data("cross_entropy")
    a, b = make_model("fused", "float32"), make_model("fused", "float32")
    for model, order in ((a, (False, True, False)), (b, (True, True, True))):
        for i, enabled in enumerate(order):
            monkeypatch.setattr(_fastpath, "enabled", enabled)
            model.fit(X, y, epochs=1, batch_size=10, optimizer=Adam(0.01) if i == 0 else None, seed=2,
                      verbose=0)
    for name, p in a.parameters().items():
        assert np.array_equal(p.data, b.parameters()[name].data), name


def test_models_the_cpp_loop_cannot_run_use_the_python_loop():
    softmax_end = Sequential(Dense(5, 4, seed=0), Softmax())
    double_act = Sequential(Dense(5, 4, "relu", seed=0), Tanh())
    plain = Sequential(Dense(5, 4, seed=0), Tanh(), Dense(4, 3, seed=1))
    assert _fastpath.plan(softmax_end, CrossEntropyLoss(), SGD()) is None
    assert _fastpath.plan(double_act, MSELoss(), SGD()) is None
    assert _fastpath.plan(plain, BCEWithLogitsLoss(), Adam()) is not None

    class MyLoss(MSELoss):
        pass

    assert _fastpath.plan(plain, MyLoss(), SGD()) is None


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_on_the_cpp_path_stops_between_chunks_and_leaves_a_usable_model(tmp_path):
    X, y = make_data("cross_entropy", n=20000, features=64)
    model = Sequential(Dense(64, 256, "relu", seed=0), Dense(256, 4, seed=1))
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y, epochs=1000, batch_size=8, optimizer=SGD(0.01), verbose=0)
    finally:
        timer.cancel()
    steps_per_epoch = 2500
    assert 0 < model.progress.updates < 1000 * steps_per_epoch
    chunk = steps_per_epoch // 20
    assert model.progress.updates % chunk == 0  # a whole number of chunks: no batch half done
    assert all(np.isfinite(p.data).all() for p in model.parameters().values())
    model.save(tmp_path / "m.npz")


@pytest.mark.parametrize("enabled", [True, False], ids=["cpp", "python"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_float64_data_trains_a_float32_model_as_if_converted_without_a_copy(enabled, loss, monkeypatch):
    """float64 X for a float32 model is rounded batch by batch (no float32 copy of the data set),
    on both paths: bit-identical weights and losses to fitting X.astype(float32)."""
    from blockprop import training
    monkeypatch.setattr(_fastpath, "enabled", enabled)
    X64, y = make_data(loss, dtype="float64")
    y = y.astype("float32") if loss == "mse" else y
    seen = []
    real_as_inputs = training.as_inputs

    def spy(*args, **kwargs):
        seen.append(real_as_inputs(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(training, "as_inputs", spy)
    runs = []
    for X in (X64, X64.astype("float32")):
        model = make_model("fused", "float32")
        hist = model.fit(X, y, epochs=2, batch_size=16, loss=loss, optimizer=SGD(0.05, momentum=0.9),
                         seed=3, verbose=0)
        runs.append((model, hist))
    (wide, h_wide), (narrow, h_narrow) = runs
    for name, p in narrow.parameters().items():
        q = wide.parameters()[name].data
        assert q.dtype == np.float32
        assert np.array_equal(p.data, q), f"{name}: max diff {np.abs(p.data - q).max()}"
    assert h_wide.history["loss"] == h_narrow.history["loss"]
    assert np.shares_memory(seen[0], X64), "fit copied the float64 data set"


def test_float64_data_beyond_float32_range_is_refused_as_after_conversion():
    """A float64 value that becomes inf in float32 is refused like one that is inf already; the
    largest float64 that still rounds to float32's max is accepted."""
    model = make_model("fused", "float32")
    X, y = make_data("cross_entropy", dtype="float64")
    edge = float(np.nextafter(2.0 ** 128 - 2.0 ** 103, 0))
    assert np.isfinite(np.float32(edge))
    for bad in (2.0 ** 128 - 2.0 ** 103, -1e39, np.inf, np.nan):
        Xb = X.copy()
        Xb[7, 2] = bad
        with pytest.raises(ValueError, match=r"X contains NaN or infinity \(in 1 rows, the first at row 7\) "
                                             r"after conversion to float32"):
            model.fit(Xb, y, epochs=1, verbose=0)
    X[7, 2] = edge
    Xs = X.copy()
    Xs[:, :] = np.clip(Xs, -1, 1)
    Xs[7, 2] = edge * 1e-38  # in range: accepted
    model.fit(Xs, y, epochs=1, verbose=0)


def test_float64_data_is_not_copied_by_predict_evaluate_or_validation(monkeypatch):
    """predict, evaluate and fit's validation data round float64 X a batch at a time, as fit
    does: the same numbers as with X.astype(float32), and no float32 copy of the whole X."""
    from blockprop import training
    seen = []
    real_as_inputs = training.as_inputs

    def spy(*args, **kwargs):
        seen.append(real_as_inputs(*args, **kwargs))
        return seen[-1]

    X64, y = make_data("cross_entropy", dtype="float64")
    X32 = X64.astype("float32")
    model = make_model("fused", "float32")
    model.fit(X32, y, epochs=1, batch_size=16, loss="cross_entropy", verbose=0, seed=1)
    monkeypatch.setattr(training, "as_inputs", spy)
    assert np.array_equal(model.predict(X64, batch_size=10), model.predict(X32, batch_size=10))
    assert np.shares_memory(seen[0], X64), "predict copied float64 X"
    seen.clear()
    assert model.evaluate(X64, y, batch_size=10) == model.evaluate(X32, y, batch_size=10)
    assert np.shares_memory(seen[0], X64), "evaluate copied float64 X"
    h = [make_model("fused", "float32").fit(X32, y, epochs=1, batch_size=16, validation_data=(Xv, y),
                                             verbose=0, seed=1).history for Xv in (X64, X32)]
    assert h[0]["val_loss"] == h[1]["val_loss"] and h[0]["val_accuracy"] == h[1]["val_accuracy"]
