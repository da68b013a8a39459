"""Training diagnostics: the reduction kernels vs the reference, the history entries, and the
warnings for dead ReLUs, exploding and vanishing gradients (and silence when healthy)."""
import math
import re
import warnings

import numpy as np
import pytest

from blockprop import kernels as K
from blockprop import reference as R
from blockprop.diagnostics import Diagnostics, TrainingDiagnosticWarning
from blockprop.nn import Dense, ReLU, Sequential
from blockprop.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from blockprop.optim import SGD, Adam
from conftest import random_array


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (65, 40)])
def test_kernels_match_reference(shape, isa, dtype, rng):
    a, b = random_array(rng, shape, dtype), random_array(rng, shape, dtype)
    assert K.sum_squares(a) == pytest.approx(R.sum_squares(a), rel=1e-12)
    assert K.sum_squared_diff(a, b) == pytest.approx(R.sum_squared_diff(a, b), rel=1e-12)
    a[:, 0] = -1  # a unit that never fires
    active, want = np.zeros(shape[1], bool), np.zeros(shape[1], bool)
    K.mark_active(a, active)
    R.mark_active(a, want)
    np.testing.assert_array_equal(active, want)
    assert not active[0]
    K.mark_active(np.abs(b), active)  # accumulates
    assert active.all()


# Lengths: 0, 1, primes, around the vector widths (4/8/16 floats, 2/4/8 doubles, the kernel steps 4
# vectors) and around the parallel threshold (blocking::kMinParallelElements = 2**15).
NONFINITE_LENGTHS = [0, 1, 2, 3, 7, 15, 16, 17, 31, 63, 64, 65, 127, 1021,
                     2**15 - 1, 2**15, 2**15 + 1, 100_003]


def _finite_data(rng, n, dtype):
    """Random finite values with zeros, −0, denormals and the largest and smallest floats mixed in."""
    info = np.finfo(dtype)
    x = (rng.standard_normal(n) * 1e3).astype(dtype)
    special = np.array([0.0, -0.0, info.smallest_subnormal, -info.smallest_subnormal, info.tiny,
                        info.tiny / 2, info.max, info.min], dtype=dtype)
    x[::3] = np.resize(special, x[::3].size)
    return x


@pytest.mark.parametrize("n", NONFINITE_LENGTHS)
def test_count_nonfinite_matches_reference(n, isa, dtype, rng):
    x = _finite_data(rng, n, dtype)
    assert K.count_nonfinite(x) == R.count_nonfinite(x) == 0
    bad = np.array([np.nan, -np.nan, np.inf, -np.inf], dtype=dtype)
    for pos in sorted({0, n // 2, n - 1}) if n else []:
        for v in bad:
            y = x.copy()
            y[pos] = v
            assert K.count_nonfinite(y) == R.count_nonfinite(y) == 1, (isa, n, pos, v)
    z = x.copy()
    hit = rng.random(n) < 0.1
    z[hit] = rng.choice(bad, size=int(hit.sum()))
    assert K.count_nonfinite(z) == R.count_nonfinite(z) == int(hit.sum())
    assert K.count_nonfinite(np.full(n, np.nan, dtype)) == n


def test_count_nonfinite_shapes_and_views(isa, dtype, rng):
    x = _finite_data(rng, 6 * 35 * 4, dtype).reshape(6, 35, 4)
    x[2, 3, 1] = np.inf
    x[5, 34, 3] = np.nan
    x[0, 0, 0] = -np.inf
    assert K.count_nonfinite(x) == R.count_nonfinite(x) == 3
    assert K.count_nonfinite(x[:, ::2]) == R.count_nonfinite(x[:, ::2]) == 2  # non-contiguous: copied
    assert K.count_nonfinite(x.T) == 3
    assert K.count_nonfinite(x[1:5]) == 1
    assert K.count_nonfinite(np.float64(np.nan)) == 1  # 0-d
    assert K.count_nonfinite(np.zeros((0, 3), dtype)) == 0
    assert K.count_nonfinite([[1.0, float("inf")], [float("nan"), 2.0]]) == 2  # a list: float64


def test_count_nonfinite_bad_input():
    with pytest.raises(TypeError, match="count_nonfinite: x must have dtype float32 or float64"):
        K.count_nonfinite(np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="count_nonfinite"):
        K.count_nonfinite(None)
    with pytest.raises(TypeError):
        K.count_nonfinite(np.zeros(3, np.float16))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_input_checks_use_the_kernel_and_keep_their_messages(dtype, monkeypatch):
    """as_inputs (predict, fit, validation data) and the regression/binary target checks: the same
    messages as the NumPy check, float32 saying when only the conversion made a value infinite."""
    model = Sequential(Dense(3, 2, seed=0, dtype=dtype))
    X = np.zeros((6, 3))
    X[3, 1], X[5, 0], X[5, 2] = np.nan, np.inf, -np.inf
    suffix = " after conversion to float32" if dtype == np.float32 else ""
    with pytest.raises(ValueError, match=re.escape(
            f"X contains NaN or infinity (in 2 rows, the first at row 3){suffix}") + "$"):
        model.predict(X)
    big = np.zeros((4, 3))
    big[2, 2] = 1e300  # finite in float64, inf in float32
    if dtype == np.float32:
        with pytest.raises(ValueError, match=re.escape(
                "X_val contains NaN or infinity (in 1 rows, the first at row 2) after conversion to float32")):
            model.fit(np.zeros((4, 3)), [0, 1, 0, 1], epochs=1, verbose=0, validation_data=(big, [0, 1, 0, 1]))
    else:
        assert model.predict(big).shape == (4, 2)
    with pytest.raises(ValueError, match="^MSELoss: y contains NaN or infinity$"):
        MSELoss().prepare_target(np.array([[0.0, 1.0], [np.inf, 0.0]], dtype), 2, dtype)
    with pytest.raises(ValueError, match=r"^BCEWithLogitsLoss: targets must lie in \[0, 1\]$"):
        BCEWithLogitsLoss().prepare_target(np.array([[0.0, np.nan]], dtype), 2, dtype)
    with pytest.raises(ValueError, match="^CrossEntropyLoss: y must hold integer class labels"):
        CrossEntropyLoss().prepare_target(np.array([0.0, np.inf], dtype), 2, dtype)
    # MSE on a non-contiguous view takes the NumPy route, with the same answer
    with pytest.raises(ValueError, match="^MSELoss: y contains NaN or infinity$"):
        MSELoss().prepare_target(np.array([[0.0, 5.0], [np.inf, 5.0]], dtype)[:, :1], 1, dtype)
    # the kernel is what decides: a kernel that sees no NaN lets the NaN through
    monkeypatch.setattr(K, "count_nonfinite", lambda x: 0)
    assert np.isnan(model.predict(X)).any()
    assert np.isinf(MSELoss().prepare_target(np.array([[np.inf, 0.0]], dtype), 2, dtype)).any()


def test_kernel_bad_input():
    with pytest.raises(TypeError, match="bool"):
        K.mark_active(np.ones((2, 3)), np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="active"):
        K.mark_active(np.ones((2, 3)), np.zeros(4, bool))
    with pytest.raises(ValueError, match="b"):
        K.sum_squared_diff(np.ones(3), np.ones(4))


def _data(n=200, features=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64)


def _fit(model, **kw):
    X, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = model.fit(X, y, epochs=kw.pop("epochs", 2), batch_size=32, verbose=0, diagnostics=True, **kw)
    return h, [w for w in caught if issubclass(w.category, TrainingDiagnosticWarning)]


def test_healthy_network_records_and_stays_quiet():
    model = Sequential(Dense(10, 32, "relu", seed=0), Dense(32, 16, seed=1), ReLU(), Dense(16, 2, seed=2))
    h, caught = _fit(model, optimizer=SGD(0.05))
    assert caught == [], [str(w.message) for w in caught]
    keys = set(h.history)
    for i in (0, 1, 3):
        assert {f"{i}.grad_norm", f"{i}.weight_norm", f"{i}.update_ratio"} <= keys
    assert {"0.dead_relu", "2.dead_relu"} <= keys and "1.dead_relu" not in keys
    assert 1e-4 < h.history["0.update_ratio"][0] < 1e-1
    assert h.history["0.weight_norm"][-1] == pytest.approx(float(np.linalg.norm(model.layers[0].W)), rel=1e-5)
    assert 0 <= h.history["0.dead_relu"][-1] <= 0.5


def test_values_for_a_single_batch_epoch():
    X, y = _data(n=32)
    model = Sequential(Dense(10, 8, "relu", seed=0), Dense(8, 2, seed=1))
    W0 = model.layers[0].W.copy()
    model.layers[0].b = np.where(np.arange(8) < 3, -100.0, 0.0)  # 3 units dead for every sample
    h = model.fit(X, y, epochs=1, batch_size=32, optimizer=SGD(0.1), verbose=0, diagnostics=True)
    grad = model.layers[0].weight.grad
    assert h.history["0.grad_norm"][0] == pytest.approx(float(np.linalg.norm(grad)), rel=1e-6)
    step = np.linalg.norm(model.layers[0].W.astype(np.float64) - W0) / np.linalg.norm(W0.astype(np.float64))
    assert h.history["0.update_ratio"][0] == pytest.approx(step, rel=1e-5)
    assert h.history["0.dead_relu"][0] == pytest.approx(3 / 8)


def test_dead_relus_warn():
    model = Sequential(Dense(10, 32, "relu", seed=0), Dense(32, 2, seed=1))
    model.layers[0].b = np.full(32, -50.0)  # large negative bias: no unit ever fires
    h, caught = _fit(model, optimizer=SGD(0.05))
    messages = [str(w.message) for w in caught]
    assert any("dead" in m and "layer 0" in m for m in messages), messages
    assert h.history["0.dead_relu"] == [1.0, 1.0]
    assert any("vanishing" in m and "layer 0" in m for m in messages)  # no gradient reaches it
    assert sum("units are dead" in m for m in messages) == 1  # once per layer and kind, not per epoch


def test_exploding_gradients_warn():
    model = Sequential(Dense(10, 64, "relu", seed=0), Dense(64, 64, "relu", seed=1), Dense(64, 2, seed=2))
    for layer in model.layers:
        layer.W = layer.W * 300.0  # huge initialization
    h, caught = _fit(model, optimizer=Adam(1e-3), epochs=1)
    messages = [str(w.message) for w in caught]
    assert any("exploding" in m for m in messages), messages
    assert h.history["0.grad_norm"][0] > 1e3


def test_thresholds_are_configurable_and_validated():
    model = Sequential(Dense(10, 32, "relu", seed=0), Dense(32, 2, seed=1))
    _, caught = _fit(model, optimizer=SGD(0.05), epochs=1)
    assert caught == []
    _, caught = Sequential(Dense(10, 32, "relu", seed=0), Dense(32, 2, seed=1)), None
    X, y = _data()
    with pytest.warns(TrainingDiagnosticWarning, match="exploding"):
        Sequential(Dense(10, 4, seed=0), Dense(4, 2, seed=1)).fit(
            X, y, epochs=1, verbose=0, diagnostics=Diagnostics(vanishing=0.0, exploding=1e-6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Sequential(Dense(10, 4, seed=0), Dense(4, 2, seed=1)).fit(
            X, y, epochs=1, verbose=0, diagnostics=Diagnostics(vanishing=0.0, exploding=1e-6, warn=False))
    with pytest.raises(ValueError, match="vanishing"):
        Diagnostics(vanishing=10, exploding=1)
    with pytest.raises(TypeError, match="diagnostics"):
        model.fit(X, y, verbose=0, diagnostics="yes")
    assert math.isfinite(model.history.history["loss"][0])
