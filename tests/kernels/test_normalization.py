"""BatchNorm1d and LayerNorm: kernels vs the NumPy reference on every ISA and dtype, the reference
vs finite differences, running statistics as PyTorch, train/eval mode, gradcheck, save/load."""
import numpy as np
import pytest

import blockprop as bp
from blockprop import kernels as K
from blockprop import reference as R
from blockprop.nn import BatchNorm1d, Dense, LayerNorm, ReLU, Sequential
from blockprop.optim import SGD
from conftest import assert_close, f64, random_array

SHAPES = [(1, 1), (2, 3), (17, 5), (64, 33)]


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_kernels_match_reference(shape, isa, dtype, rng):
    rows, cols = shape
    x = random_array(rng, shape, dtype, -3, 5)
    g, b = random_array(rng, (cols,), dtype, 0.5, 2), random_array(rng, (cols,), dtype)
    dy = random_array(rng, shape, dtype)
    y, mean, var = K.batch_norm_forward(x, g, b, 1e-5)
    wy, wm, wv = R.batch_norm_forward(*f64(x, g, b), 1e-5)
    k, where = rows, dict(shape=shape, isa=isa)
    assert_close(mean, wm, dtype=dtype, k=k, name="bn mean", scale=5, **where)
    assert_close(var, wv, dtype=dtype, k=k, name="bn var", scale=5, **where)
    # normalized values divide by σ: relative to the spread, allow a few ulps of |x|/σ
    assert_close(y, R.batch_norm_forward(*f64(x, g, b), 1e-5)[0], dtype=dtype, k=k, name="bn y",
                 scale=10 * (1 + np.abs(wy)), **where)
    for batch_stats in (True, False):
        got = K.batch_norm_backward(dy, x, mean, var, g, 1e-5, batch_stats)
        want = R.batch_norm_backward(*f64(dy, x, mean, var, g), 1e-5, batch_stats)
        for gv, wv_, what in zip(got, want, ("dx", "dgamma", "dbeta")):
            assert_close(gv, wv_, dtype=dtype, k=k, name=f"bn {what} batch_stats={batch_stats}",
                         scale=10 * (1 + np.abs(wv_).max()), **where)
    rm, rv = random_array(rng, (cols,), dtype), random_array(rng, (cols,), dtype, 0.5, 2)
    assert_close(K.batch_norm_inference(x, g, b, rm, rv, 1e-5),
                 R.batch_norm_inference(*f64(x, g, b, rm, rv), 1e-5), dtype=dtype, k=2,
                 name="bn inference", scale=10, **where)


@pytest.mark.parametrize("shape", SHAPES)
def test_layer_norm_kernels_match_reference(shape, isa, dtype, rng):
    rows, cols = shape
    x = random_array(rng, shape, dtype, -3, 5)
    g, b = random_array(rng, (cols,), dtype, 0.5, 2), random_array(rng, (cols,), dtype)
    dy = random_array(rng, shape, dtype)
    y, mean, var = K.layer_norm_forward(x, g, b, 1e-5)
    wy, wm, wv = R.layer_norm_forward(*f64(x, g, b), 1e-5)
    where = dict(shape=shape, isa=isa)
    assert_close(mean, wm, dtype=dtype, k=cols, name="ln mean", scale=5, **where)
    assert_close(var, wv, dtype=dtype, k=cols, name="ln var", scale=5, **where)
    assert_close(y, wy, dtype=dtype, k=cols, name="ln y", scale=10 * (1 + np.abs(wy)), **where)
    got = K.layer_norm_backward(dy, x, mean, var, g, 1e-5)
    want = R.layer_norm_backward(*f64(dy, x, mean, var, g), 1e-5)
    for gv, wv_, what in zip(got, want, ("dx", "dgamma", "dbeta")):
        assert_close(gv, wv_, dtype=dtype, k=max(rows, cols), name=f"ln {what}",
                     scale=10 * (1 + np.abs(wv_).max()), **where)


@pytest.mark.parametrize("kind", ["batch", "layer"])
def test_reference_backward_matches_finite_differences(kind):
    rng = np.random.default_rng(0)
    x, g, b, dy = rng.standard_normal((5, 4)), rng.uniform(0.5, 2, 4), rng.standard_normal(4), rng.standard_normal((5, 4))
    fwd = R.batch_norm_forward if kind == "batch" else R.layer_norm_forward
    bwd = R.batch_norm_backward if kind == "batch" else R.layer_norm_backward

    def loss(x_, g_, b_):
        return float((fwd(x_, g_, b_, 1e-5)[0] * dy).sum())

    _, mean, var = fwd(x, g, b, 1e-5)
    dx, dg, db = bwd(dy, x, mean, var, g, 1e-5)
    for arr, grad in ((x, dx), (g, dg), (b, db)):
        numeric = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + 1e-6
            up = loss(x, g, b)
            arr[i] = old - 1e-6
            down = loss(x, g, b)
            arr[i] = old
            numeric[i] = (up - down) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


def test_bad_input():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match="gamma"):
        K.batch_norm_forward(x, np.ones(2), np.zeros(3))
    with pytest.raises(TypeError, match="beta"):
        K.layer_norm_forward(x, np.ones(3), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="eps"):
        K.batch_norm_forward(x, np.ones(3), np.zeros(3), eps=-1.0)
    with pytest.raises(ValueError, match="x"):
        K.layer_norm_forward(np.ones(3), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="expects 4 input features"):
        Sequential(Dense(3, 5), BatchNorm1d(4), Dense(4, 2))
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1d(3, momentum=0)
    with pytest.raises(ValueError, match="share one dtype"):
        Sequential(Dense(3, 4), LayerNorm(4, dtype="float64"))


def test_batch_norm_running_statistics_follow_pytorch():
    rng = np.random.default_rng(1)
    bn = BatchNorm1d(3, momentum=0.2, dtype="float64")
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = rng.standard_normal((10, 3)) * 2 + 1
        bn.forward(x)
        rm = 0.8 * rm + 0.2 * x.mean(0)
        rv = 0.8 * rv + 0.2 * x.var(0, ddof=1)
    np.testing.assert_allclose(bn.running_mean, rm, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, rv, rtol=1e-12)
    bn.training = False
    x = rng.standard_normal((4, 3))
    snapshot = bn.running_mean.copy()
    np.testing.assert_allclose(bn.forward(x), (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, snapshot)  # evaluation does not update them
    bn.training = True
    single = bn.forward(x[:1])  # one sample: no variance, output β, statistics untouched
    np.testing.assert_array_equal(single, np.zeros((1, 3)))
    np.testing.assert_array_equal(bn.running_mean, snapshot)


def _model(dtype="float64"):
    return Sequential(Dense(4, 6, seed=0, dtype=dtype), BatchNorm1d(6, dtype=dtype), ReLU(),
                      Dense(6, 5, seed=1, dtype=dtype), LayerNorm(5, dtype=dtype), Dense(5, 3, seed=2, dtype=dtype))


def test_gradcheck_in_both_modes():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    model = _model()
    model.layers[1].gamma.data[:] = rng.uniform(0.5, 2, 6)
    model.layers[4].beta.data[:] = rng.standard_normal(5)
    assert max(bp.gradcheck(model, X, y, "cross_entropy").values()) < 1e-6
    model.layers[1].running_mean[:] = rng.standard_normal(6)
    model.layers[1].running_var[:] = rng.uniform(0.5, 2, 6)
    assert max(bp.gradcheck(model.eval(), X, y, "cross_entropy").values()) < 1e-6


def test_fit_eval_modes_and_save_load(tmp_path):
    rng = np.random.default_rng(3)
    X, y = (rng.standard_normal((64, 4)) * 3 + 2).astype(np.float32), rng.integers(0, 3, 64)
    model = _model("float32")
    h = model.fit(X, y, epochs=3, batch_size=16, optimizer=SGD(0.1), validation_data=(X, y), verbose=0)
    assert model.training
    bn = model.layers[1]
    assert not np.allclose(bn.running_mean, 0)
    # validation ran in evaluation mode: evaluate gives the same numbers
    assert h.history["val_loss"][-1] == pytest.approx(model.evaluate(X, y)["loss"], rel=1e-6)
    assert model.training  # evaluate restored the mode
    before = bn.running_mean.copy()
    model.predict(X)
    np.testing.assert_array_equal(bn.running_mean, before)
    model.save(tmp_path / "m.npz")
    loaded = bp.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.layers[1].running_var, bn.running_var)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert set(model.state_dict()) >= {"1.running_mean", "1.running_var", "1.gamma", "4.beta"}
    copy = model.astype("float64")
    np.testing.assert_allclose(copy.predict(X), model.predict(X), rtol=1e-4, atol=1e-5)
    assert model.eval() is model and not model.training and not model.layers[1].training
