"""LeakyReLU, ELU, GELU, softplus: kernels vs the NumPy reference on every ISA and dtype, the
reference vs finite differences, fused dense layers, nn layers (gradcheck, save/load) and the C++
training loop (bit-identical, or refused for GELU)."""
import numpy as np
import pytest

import blockprop as bp
from blockprop import _fastpath
from blockprop import kernels as K
from blockprop import reference as R
from blockprop.nn import ELU, GELU, Dense, LeakyReLU, Sequential, Softplus
from blockprop.optim import SGD
from conftest import assert_close, f64, random_array

# (name, kwargs): derivative through y except GELU (through x)
CASES = [("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {}),
         ("elu", {"alpha": 0.5}), ("gelu", {}), ("softplus", {})]
THROUGH_INPUT = {"gelu"}


@pytest.mark.parametrize("name,kw", CASES)
@pytest.mark.parametrize("shape", [(1,), (7,), (33, 17)])
def test_kernels_match_reference(name, kw, shape, isa, dtype, rng):
    x = random_array(rng, shape, dtype, -8, 8)
    dy = random_array(rng, shape, dtype)
    y = getattr(K, name)(x, **kw)
    assert y.dtype == dtype
    assert_close(y, getattr(R, name)(f64(x), **kw), dtype=dtype, k=4, name=f"{name} forward",
                 shape=shape, isa=isa)
    v = x if name in THROUGH_INPUT else y
    dx = getattr(K, name + "_backward")(dy, v, **kw)
    assert_close(dx, getattr(R, name + "_backward")(f64(dy), f64(v), **kw), dtype=dtype, k=4,
                 name=f"{name} backward", shape=shape, isa=isa)


@pytest.mark.parametrize("name,kw", CASES)
def test_reference_derivatives_match_finite_differences(name, kw):
    x = np.linspace(-6, 6, 241) + 0.013  # avoid the kink at 0
    h = 1e-6
    numeric = (getattr(R, name)(x + h, **kw) - getattr(R, name)(x - h, **kw)) / (2 * h)
    v = x if name in THROUGH_INPUT else getattr(R, name)(x, **kw)
    analytic = getattr(R, name + "_backward")(np.ones_like(x), v, **kw)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_known_values():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(K.leaky_relu(x), [-0.01, 0, 2])
    np.testing.assert_allclose(K.elu(x), [np.expm1(-1), 0, 2])
    np.testing.assert_allclose(K.gelu(x), [-0.15865525393145707, 0, 1.9544997361036416], rtol=1e-14)
    np.testing.assert_allclose(K.softplus(np.array([-800.0, 0.0, 800.0])), [0, np.log(2), 800])
    assert np.all(np.isfinite(K.softplus(np.array([-1e30, 1e30], np.float32))))


@pytest.mark.parametrize("act", ["leaky_relu", "elu", "gelu", "softplus"])
def test_fused_dense_matches_reference(act, isa, dtype, rng):
    x, W, b = (random_array(rng, s, dtype) for s in [(9, 13), (6, 13), (6,)])
    dy = random_array(rng, (9, 6), dtype)
    y = K.dense_forward(x, W, b, act)
    assert_close(y, R.dense_forward(*f64(x, W, b), act), dtype=dtype, k=13, name=f"dense {act}", isa=isa)
    # GELU's backward takes the pre-activation, the others the output
    v = K.dense_forward(x, W, b, "linear") if act == "gelu" else y
    got = K.dense_backward(x, W, dy, v, act)
    want = R.dense_backward(*f64(x, W, dy, v), act)
    for g, w, what in zip(got, want, ("dx", "dW", "db")):
        assert_close(g, w, dtype=dtype, k=13, name=f"dense {act} {what}", isa=isa)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown activation"):
        K.dense_forward(np.ones((2, 2)), np.ones((2, 2)), None, "swish")
    with pytest.raises(ValueError, match="alpha"):
        K.elu(np.ones(3), alpha=-1.0)
    with pytest.raises(TypeError, match="negative_slope"):
        K.leaky_relu(np.ones(3), negative_slope="x")
    with pytest.raises(ValueError, match="alpha"):
        ELU(alpha=-1)
    with pytest.raises(ValueError, match="negative_slope"):
        LeakyReLU(float("nan"))


def _net(kind, dtype="float64"):
    if kind == "layers":
        return Sequential(Dense(4, 6, seed=0, dtype=dtype), LeakyReLU(0.1), Dense(6, 6, seed=1, dtype=dtype),
                          ELU(0.7), Dense(6, 5, seed=2, dtype=dtype), GELU(), Dense(5, 5, seed=3, dtype=dtype),
                          Softplus(), Dense(5, 3, seed=4, dtype=dtype))
    return Sequential(Dense(4, 6, "leaky_relu", seed=0, dtype=dtype), Dense(6, 6, "elu", seed=1, dtype=dtype),
                      Dense(6, 5, "gelu", seed=2, dtype=dtype), Dense(5, 5, "softplus", seed=3, dtype=dtype),
                      Dense(5, 3, seed=4, dtype=dtype))


@pytest.mark.parametrize("kind", ["layers", "fused"])
def test_gradcheck_and_save_load(kind, tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    model = _net(kind)
    errors = bp.gradcheck(model, X, y, "cross_entropy")
    assert max(errors.values()) < 1e-6, errors
    model.eval()  # GELU fused in evaluation; backward recomputes its input: same gradients
    assert max(bp.gradcheck(model, X, y, "cross_entropy").values()) < 1e-6
    model.train()
    model.fit(X, y, epochs=2, batch_size=4, optimizer=SGD(0.1), verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = bp.load(tmp_path / "m.npz")
    assert [repr(l) for l in loaded.layers] == [repr(l) for l in model.layers]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_gelu_training_and_evaluation_forwards_agree():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((16, 4)).astype(np.float32)
    model = _net("fused", "float32")
    train_out = model.forward(X)
    np.testing.assert_allclose(model.predict(X), train_out, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("layout", ["dense", "layer"])
@pytest.mark.parametrize("act,layer", [("leaky_relu", LeakyReLU), ("elu", ELU), ("softplus", Softplus)])
def test_cpp_training_loop_is_bit_identical(layout, act, layer, monkeypatch):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((50, 5)).astype(np.float32), rng.integers(0, 3, 50)
    results = []
    for enabled in (False, True):
        monkeypatch.setattr(_fastpath, "enabled", enabled)
        layers = ([Dense(5, 8, act, seed=0)] if layout == "dense" else [Dense(5, 8, seed=0), layer()])
        model = Sequential(*layers, Dense(8, 3, seed=1))
        assert (_fastpath.plan(model, model.loss or bp.nn.CrossEntropyLoss(), SGD(0.1)) is not None) == enabled
        h = model.fit(X, y, epochs=2, batch_size=8, optimizer=SGD(0.1, momentum=0.9), seed=0, verbose=0)
        results.append((model.state_dict(), h.history["loss"]))
    (slow, slow_loss), (fast, fast_loss) = results
    assert slow_loss == fast_loss
    for name in slow:
        np.testing.assert_array_equal(slow[name], fast[name], err_msg=name)


def test_cpp_loop_refuses_gelu_and_custom_parameters():
    loss, opt = bp.nn.CrossEntropyLoss(), SGD(0.1)
    assert _fastpath.plan(Sequential(Dense(3, 4, "gelu"), Dense(4, 2)), loss, opt) is None
    assert _fastpath.plan(Sequential(Dense(3, 4), GELU(), Dense(4, 2)), loss, opt) is None
    assert _fastpath.plan(Sequential(Dense(3, 4), LeakyReLU(0.2), Dense(4, 2)), loss, opt) is None
    assert _fastpath.plan(Sequential(Dense(3, 4), ELU(0.5), Dense(4, 2)), loss, opt) is None
    w = np.zeros((2, 3), np.float32)
    layers = [(w, None, "gelu", None, None, None, None)]
    with pytest.raises(ValueError, match="GELU"):
        bp._core.mlp_train_batches(layers, "mse", "sgd", {"momentum": 0.0, "weight_decay": 0.0, "nesterov": False},
                                   np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32),
                                   np.arange(4), 2, np.full(2, 0.1))
