"""Dropout: the counter-based mask equals the NumPy reference bit for bit on every ISA, dtype and
thread count; the layer is reproducible, the identity in evaluation, and gradchecks with a fixed
mask."""
import numpy as np
import pytest

import blockprop as bp
from blockprop import kernels as K
from blockprop import reference as R
from blockprop.nn import Dense, Dropout, Sequential
from blockprop.optim import SGD
from conftest import random_array


@pytest.mark.parametrize("shape", [(1,), (5,), (64, 33), (3, 1000)])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_kernel_equals_reference_exactly(shape, p, isa, dtype, rng):
    x = random_array(rng, shape, dtype)
    for seed, step in [(0, 0), (12345, 7), (2 ** 64 - 1, 2 ** 64 - 1)]:
        y = K.dropout(x, p, seed, step)
        want = R.dropout(x, p, seed, step)
        assert y.dtype == dtype and y.shape == shape
        assert np.array_equal(y, want), f"dropout shape={shape} dtype={dtype} isa={isa} p={p} seed={seed}"
        dx = K.dropout_backward(x, p, seed, step)  # same mask, same scale
        assert np.array_equal(dx, want), f"dropout_backward shape={shape} dtype={dtype} isa={isa}"


def test_mask_statistics_and_scaling():
    x = np.ones(200_000, np.float32)
    y = K.dropout(x, 0.3, seed=1, step=0)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.005  # binomial sd ≈ 0.001
    np.testing.assert_array_equal(y[kept], np.float32(1 / 0.7))
    assert abs(y.mean() - 1) < 0.01  # inverted scaling keeps the expectation
    other_step, other_seed = K.dropout(x, 0.3, 1, 1) != 0, K.dropout(x, 0.3, 2, 0) != 0
    assert 0.35 < (other_step == kept).mean() < 0.65 and 0.35 < (other_seed == kept).mean() < 0.65


def test_independent_of_thread_count():
    x = np.random.default_rng(0).standard_normal((512, 300)).astype(np.float32)
    before = bp.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            bp.set_num_threads(n)
            outs.append(K.dropout(x, 0.5, 9, 3))
    finally:
        bp.set_num_threads(before)
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize("bad,exc", [({"p": -0.1}, ValueError), ({"p": 1.5}, ValueError),
                                     ({"p": float("nan")}, ValueError), ({"seed": -1}, ValueError),
                                     ({"seed": 2 ** 64}, ValueError), ({"step": "x"}, TypeError),
                                     ({"seed": 1.5}, TypeError)])
def test_bad_arguments(bad, exc):
    args = {**dict(p=0.5, seed=0, step=0), **bad}
    with pytest.raises(exc, match=list(bad)[0]):
        K.dropout(np.ones(3), **args)


def _data():
    rng = np.random.default_rng(3)
    return rng.standard_normal((40, 6)).astype(np.float32), rng.integers(0, 3, 40)


def _model(seed=5):
    return Sequential(Dense(6, 16, "relu", seed=0), Dropout(0.5, seed=seed), Dense(16, 3, seed=1))


def test_layer_identity_in_evaluation_and_predict():
    X, _ = _data()
    model = _model()
    assert not np.array_equal(model.forward(X), model.eval().forward(X))  # training mode drops
    model.train()
    plain = Sequential(Dense(6, 16, "relu", seed=0), Dense(16, 3, seed=1))
    np.testing.assert_array_equal(model.predict(X), plain.predict(X))
    assert model.training  # predict restored the mode


def test_training_is_reproducible_and_resumable(tmp_path):
    X, y = _data()
    a, b = _model(), _model()
    for m in (a, b):
        m.fit(X, y, epochs=3, batch_size=8, optimizer=SGD(0.1), seed=0, verbose=0)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    # 2 epochs, save, load, 1 more epoch == 3 epochs in one go
    c = _model()
    c.fit(X, y, epochs=2, batch_size=8, optimizer=SGD(0.1), seed=0, verbose=0)
    c.save(tmp_path / "c.npz")
    d = bp.load(tmp_path / "c.npz")
    d.fit(X, y, epochs=1, batch_size=8, verbose=0)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, d.state_dict()[k])
    assert a.history.history["loss"] != _model(seed=6).fit(X, y, epochs=3, batch_size=8, optimizer=SGD(0.1),
                                                           seed=0, verbose=0).history["loss"]


def test_gradcheck_with_a_fixed_mask():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    model = Sequential(Dense(4, 8, "tanh", seed=0, dtype="float64"), Dropout(0.4, seed=11),
                       Dense(8, 3, seed=1, dtype="float64"))
    model.layers[1].step = 17  # the mask of update 17, fixed while gradcheck perturbs
    assert np.count_nonzero(model.forward(X) != model.eval().forward(X)) > 0
    model.train()
    assert max(bp.gradcheck(model, X, y, "cross_entropy").values()) < 1e-6


def test_config_round_trip_and_validation():
    layer = Dropout(0.25, seed=3)
    assert Dropout(**layer.get_config()).get_config() == {"p": 0.25, "seed": 3}
    assert isinstance(Dropout().seed, int)
    for bad in (-0.1, 1.0, "x", True):
        with pytest.raises(ValueError, match="p must"):
            Dropout(bad)
