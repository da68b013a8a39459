"""Sequential.fit / evaluate with ``sample_weight``: each batch's loss is the weighted mean
Σ w·ℓ / Σ w (kernels.weighted_loss). The C++ loop and the Python step give the same weights bit for
bit on every instruction set; a weight of 0 is the row left out; bad weights are refused by name;
without weights nothing changes (tests/training/test_step.py)."""
from __future__ import annotations

import numpy as np
import pytest

from blockprop import _fastpath
from blockprop.nn import Dense, ReLU, Sequential
from blockprop.nn.losses import Loss
from blockprop.optim import SGD, Adam

N, FEATURES, OUTPUTS = 61, 5, 3


def data(loss, dtype="float64", n=N):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, FEATURES)).astype(dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, OUTPUTS, n)
    elif loss == "bce":
        y = (rng.random((n, OUTPUTS)) > 0.5).astype(dtype)
    else:
        y = rng.standard_normal((n, OUTPUTS)).astype(dtype)
    w = rng.uniform(0, 2, n)
    w[::4] = 0.0
    w[:8] = 0.0  # the first batch of 8 (unshuffled) is all left out
    return X, y, w


def model(dtype="float64", layout="fused"):
    if layout == "fused":
        return Sequential(Dense(FEATURES, 9, "tanh", seed=0, dtype=dtype, l2=0.01),
                          Dense(9, OUTPUTS, seed=1, dtype=dtype))
    return Sequential(Dense(FEATURES, 9, seed=0, dtype=dtype), ReLU(), Dense(9, OUTPUTS, seed=1, dtype=dtype))


OPTIMIZERS = {"sgd-momentum": lambda: SGD(0.05, momentum=0.9, nesterov=True),
              "adam": lambda: Adam(0.01, weight_decay=1e-3)}


def fit(loss, opt, dtype="float64", layout="fused", batch_size=8, shuffle=True, weights="data",
        rows=slice(None)):
    X, y, w = data(loss, dtype)
    m = model(dtype, layout)
    sw = w if isinstance(weights, str) else weights
    hist = m.fit(X[rows], y[rows], epochs=3, batch_size=batch_size, loss=loss, optimizer=OPTIMIZERS[opt](),
                 shuffle=shuffle, seed=5, verbose=0, sample_weight=None if sw is None else sw[rows])
    return m, hist.history["loss"]


def assert_same(got, want, what, exact=True):
    for key, w in want.state_dict().items():
        g = got.state_dict()[key]
        err = float(np.max(np.abs(g.astype(np.float64) - w))) if w.size else 0.0
        ok = np.array_equal(g, w) if exact else np.allclose(g, w, rtol=1e-10, atol=1e-12)
        assert ok, f"{what}: {key} shape={w.shape} dtype={w.dtype} max abs error {err:.3g}"


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "bce"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("layout", ["fused", "layers"])
def test_cpp_and_python_paths_give_the_same_weighted_training(loss, opt, layout, dtype, isa, monkeypatch):
    fast, fast_loss = fit(loss, opt, np.dtype(dtype).name, layout)
    monkeypatch.setattr(_fastpath, "enabled", False)
    python, python_loss = fit(loss, opt, np.dtype(dtype).name, layout)
    assert_same(fast, python, f"{loss}/{opt}/{layout} isa={isa}: C++ path vs Python path")
    assert fast_loss == python_loss


def test_the_cpp_loop_takes_weighted_fits(monkeypatch):
    calls = []
    real = _fastpath.train_batches

    def spy(*args):
        calls.append(args[-1] is not None)
        return real(*args)

    monkeypatch.setattr(_fastpath, "train_batches", spy)
    fit("mse", "adam")
    assert calls and all(calls)


def test_weights_change_training_and_equal_weights_do_not():
    unweighted, _ = fit("cross_entropy", "adam", weights=None)
    weighted, _ = fit("cross_entropy", "adam")
    assert not np.array_equal(unweighted.layers[0].W, weighted.layers[0].W)
    # the weighted mean of equal weights is the plain mean (up to rounding: other kernels)
    same, _ = fit("cross_entropy", "adam", weights=np.full(N, 2.5))
    assert_same(same, unweighted, "weights all 2.5 vs no weights", exact=False)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "bce"])
@pytest.mark.parametrize("enabled", [True, False], ids=["cpp", "python"])
def test_weight_zero_is_the_row_left_out(loss, enabled, monkeypatch):
    # Full batch, so the batches line up: the rows of weight 0 change nothing.
    monkeypatch.setattr(_fastpath, "enabled", enabled)
    X, y, w = data(loss)
    keep = w > 0
    with_zeros, loss_a = fit(loss, "adam", batch_size=N, weights=np.where(keep, 1.0, 0.0))
    left_out, loss_b = fit(loss, "adam", batch_size=N, weights=None, rows=keep)
    assert_same(with_zeros, left_out, f"{loss}: weight 0 vs row left out", exact=False)
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-12)


def test_integer_weights_are_repeated_rows():
    X, y, w = data("mse")
    reps = np.arange(N) % 3
    m1 = model()
    m1.fit(X, y, epochs=2, batch_size=N, loss="mse", optimizer=SGD(0.1), verbose=0,
           sample_weight=reps.astype(float))
    m2 = model()
    m2.fit(np.repeat(X, reps, axis=0), np.repeat(y, reps, axis=0), epochs=2, batch_size=int(reps.sum()),
           loss="mse", optimizer=SGD(0.1), verbose=0)
    assert_same(m1, m2, "weights 0,1,2 vs rows repeated", exact=False)


@pytest.mark.parametrize("weights,exc,match", [
    (np.ones(N - 1), ValueError, r"sample_weight must have shape \(61,\)"),
    (np.ones((N, 1)), ValueError, "shape"),
    (-np.ones(N), ValueError, "must be ≥ 0"),
    (np.r_[np.ones(N - 1), np.nan], ValueError, "NaN or infinity"),
    (np.r_[np.inf, np.ones(N - 1)], ValueError, "NaN or infinity"),
    (np.zeros(N), ValueError, "zero for every sample"),
    (np.array(["a"] * N), TypeError, "numeric"),
    ("heavy", TypeError, "numeric"),
])
def test_bad_sample_weights_are_refused_by_name_before_training(weights, exc, match):
    X, y, _ = data("mse")
    m = model()
    before = m.state_dict()
    with pytest.raises(exc, match=match):
        m.fit(X, y, loss="mse", verbose=0, sample_weight=weights)
    assert all(np.array_equal(v, before[k]) for k, v in m.state_dict().items())
    with pytest.raises(exc, match=match):
        m.evaluate(X, y, loss="mse", sample_weight=weights)


def test_a_scalar_weight_is_every_rows():
    a, _ = fit("mse", "sgd-momentum", weights=np.full(N, 3.0))
    X, y, _ = data("mse")
    b = model()
    b.fit(X, y, epochs=3, batch_size=8, loss="mse", optimizer=OPTIMIZERS["sgd-momentum"](), seed=5,
          verbose=0, sample_weight=3.0)
    assert_same(b, a, "sample_weight=3.0 vs an array of 3.0")


def test_a_loss_without_weights_is_refused():
    class Custom(Loss):  # a loss of one's own, without a weighted form
        name = "custom"

        def __call__(self, pred, target):
            return float(np.mean((pred - target) ** 2)), 2 * (pred - target) / pred.size

        def prepare_target(self, y, n_outputs, dtype):
            return np.asarray(y, dtype=dtype)

    X, y, w = data("mse")
    with pytest.raises(TypeError, match="does not take sample weights"):
        model().fit(X, y, loss=Custom(), verbose=0, sample_weight=w)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "bce"])
def test_weighted_evaluate(loss):
    X, y, w = data(loss)
    m = model()
    m.fit(X, y, epochs=2, loss=loss, optimizer=Adam(0.01), verbose=0)
    plain = m.evaluate(X, y, loss=loss)
    np.testing.assert_allclose(list(m.evaluate(X, y, loss=loss, sample_weight=np.full(N, 0.3)).values()),
                               list(plain.values()), rtol=1e-12)
    got = m.evaluate(X, y, loss=loss, sample_weight=w, batch_size=16)
    # the weighted mean by hand, from each row's own loss and accuracy
    per_row = np.array([m.evaluate(X[i:i + 1], y[i:i + 1], loss=loss)["loss"] for i in range(N)])
    assert got["loss"] == pytest.approx(np.sum(w * per_row) / w.sum(), rel=1e-12)
    if loss != "mse":
        right = np.array([m.evaluate(X[i:i + 1], y[i:i + 1], loss=loss)["accuracy"] for i in range(N)])
        assert got["accuracy"] == pytest.approx(np.sum(w * right) / w.sum(), rel=1e-12)
