"""Layers and Sequential against blockprop.reference; the activation layers with parameters (LeakyReLU,
ELU, GELU, Softplus: argument checks, gradcheck, save/load); Dense's L1/L2 weight penalties in the
reported loss and the gradient, and L2 as weight decay."""
import numpy as np
import pytest

import blockprop as bp
from blockprop import _fastpath
from blockprop import reference as R
from blockprop.nn import (ELU, GELU, CrossEntropyLoss, Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Softmax,
                          Softplus, Tanh)
from blockprop.optim import SGD

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def close(a, b, dtype):
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL[dtype] * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_matches_reference(dtype, activation, bias):
    rng = np.random.default_rng(1)
    layer = Dense(7, 5, activation, bias=bias, seed=3, dtype=dtype)
    if bias:
        layer.b = rng.normal(size=5)
    x = rng.normal(size=(9, 7)).astype(dtype)
    dy = rng.normal(size=(9, 5)).astype(dtype)
    act = activation or "linear"
    b = layer.b if bias else None
    y = layer.forward(x)
    assert y.dtype == dtype and y.shape == (9, 5)
    close(y, R.dense_forward(x, layer.W, b, act), dtype)
    dx = layer.backward(dy)
    rdx, rdW, rdb = R.dense_backward(x, layer.W, dy, R.dense_forward(x, layer.W, b, act), act)
    close(dx, rdx, dtype)
    close(layer.weight.grad, rdW, dtype)
    assert set(layer.parameters()) == ({"W", "b"} if bias else {"W"})
    if bias:
        close(layer.parameters()["b"].grad, rdb, dtype)
    assert layer.backward(dy, need_dx=False) is None


@pytest.mark.parametrize("cls,fwd,bwd", [(ReLU, R.relu, R.relu_backward),
                                         (Sigmoid, R.sigmoid, R.sigmoid_backward),
                                         (Tanh, R.tanh, R.tanh_backward),
                                         (Softmax, R.softmax, R.softmax_backward)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_layers_match_reference(cls, fwd, bwd, dtype):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 4)).astype(dtype)
    dy = rng.normal(size=(6, 4)).astype(dtype)
    layer = cls()
    y = layer.forward(x)
    close(y, fwd(x), dtype)
    close(layer.backward(dy), bwd(dy, fwd(x)), dtype)


def test_he_and_xavier_init_statistics_and_seeding():
    he = Dense(400, 300, seed=0).W
    assert he.shape == (300, 400) and he.dtype == np.float32
    assert abs(he.std() - np.sqrt(2 / 400)) < 0.02 * np.sqrt(2 / 400)
    assert abs(he.mean()) < 0.01 * he.std() * 10
    limit = np.sqrt(6 / (400 + 300))
    for init in ("xavier", "glorot"):
        w = Dense(400, 300, init=init, seed=0).W
        assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
        assert abs(w.std() - limit / np.sqrt(3)) < 0.02 * limit
    assert not Dense(4, 3, init="zeros").W.any()
    assert np.array_equal(Dense(5, 4, seed=7).W, Dense(5, 4, seed=7).W)
    assert not np.array_equal(Dense(5, 4, seed=7).W, Dense(5, 4, seed=8).W)
    assert not Dense(5, 4, seed=7).b.any()


@pytest.mark.parametrize("kwargs", [dict(in_features=0, out_features=3), dict(in_features=2, out_features=2.5),
                                    dict(in_features=2, out_features=3, activation="swish"),
                                    dict(in_features=2, out_features=3, init="orthogonal"),
                                    dict(in_features=2, out_features=3, dtype="int32")])
def test_dense_rejects_bad_config(kwargs):
    with pytest.raises(ValueError):
        Dense(**kwargs)


def test_weight_setters_check_shapes():
    layer = Dense(3, 2, bias=False)
    layer.W = np.ones((2, 3))
    assert layer.W.dtype == np.float32 and layer.W.sum() == 6
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        layer.W = np.ones((3, 2))
    with pytest.raises(ValueError, match="bias=False"):
        layer.b = np.ones(2)
    with pytest.raises(RuntimeError):
        Dense(3, 2).backward(np.ones((1, 2), np.float32))


def _mlp(dtype=np.float32):
    return Sequential(Dense(4, 8, "relu", seed=0, dtype=dtype), Dense(8, 6, seed=1, dtype=dtype),
                      Tanh(), Dense(6, 3, "sigmoid", seed=2, dtype=dtype), Softmax())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sequential_forward_backward_match_reference_chain(dtype):
    rng = np.random.default_rng(3)
    model = _mlp(dtype)
    for p in model.parameters().values():  # non-zero biases, so they are exercised
        p.data[...] = rng.normal(size=p.data.shape) * 0.5
    x = rng.normal(size=(10, 4)).astype(dtype)
    dy = rng.normal(size=(10, 3)).astype(dtype)
    P = {k: p.data for k, p in model.parameters().items()}
    h1 = R.dense_forward(x, P["0.W"], P["0.b"], "relu")
    h2 = R.dense_forward(h1, P["1.W"], P["1.b"])
    h3 = R.tanh(h2)
    h4 = R.dense_forward(h3, P["3.W"], P["3.b"], "sigmoid")
    out = R.softmax(h4)
    close(model.forward(x), out, dtype)
    dx = model.backward(dy, need_dx=True)
    d4 = R.softmax_backward(dy, out)
    d3, gW3, gb3 = R.dense_backward(h3, P["3.W"], d4, h4, "sigmoid")
    d2 = R.tanh_backward(d3, h3)
    d1, gW1, gb1 = R.dense_backward(h1, P["1.W"], d2)
    d0, gW0, gb0 = R.dense_backward(x, P["0.W"], d1, h1, "relu")
    close(dx, d0, dtype)
    grads = {k: p.grad for k, p in model.parameters().items()}
    assert list(grads) == ["0.W", "0.b", "1.W", "1.b", "3.W", "3.b"]
    for k, ref in zip(grads, [gW0, gb0, gW1, gb1, gW3, gb3]):
        close(grads[k], ref, dtype)
    assert model.backward(dy) is None  # the default skips the input gradient


def test_sequential_checks_layers_and_dtypes():
    with pytest.raises(ValueError, match="expects 5 input features"):
        Sequential(Dense(3, 4), Dense(5, 2))
    with pytest.raises(ValueError, match="dtype"):
        Sequential(Dense(3, 4), Dense(4, 2, dtype="float64"))
    with pytest.raises(TypeError, match="layer 1"):
        Sequential(Dense(3, 4), "relu")
    with pytest.raises(ValueError):
        Sequential(ReLU())
    model = Sequential([Dense(3, 4), ReLU(), Dense(4, 2)])  # a list works too
    assert (model.in_features, model.out_features, model.dtype) == (3, 2, np.float32)


def test_astype_is_a_copy():
    model = _mlp()
    m64 = model.astype("float64")
    assert m64.dtype == np.float64 and model.dtype == np.float32
    for (k, a), (_, b) in zip(model.parameters().items(), m64.parameters().items()):
        assert b.data.dtype == np.float64 and np.array_equal(a.data, b.data.astype(np.float32))
    m64.parameters()["0.W"].data[...] = 0
    assert model.parameters()["0.W"].data.any()


def test_state_dict_round_trip_and_checks():
    a, b = _mlp(), Sequential(Dense(4, 8, "relu", seed=9), Dense(8, 6, seed=9), Tanh(),
                              Dense(6, 3, "sigmoid", seed=9), Softmax())
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert np.array_equal(a.forward(x), b.forward(x))
    with pytest.raises(ValueError, match="0.W"):
        b.load_state_dict({**a.state_dict(), "0.W": np.zeros((4, 8))})
    with pytest.raises(ValueError):
        b.load_state_dict({"0.W": np.zeros((8, 4))})


def test_repr_and_summary(capsys):
    model = _mlp()
    text = repr(model)
    assert "(0): Dense(4, 8, activation='relu')" in text and "(4): Softmax()" in text
    model.summary()
    out = capsys.readouterr().out
    n_params = 4 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3
    assert f"Total parameters: {n_params}" in out and "(batch, 3)" in out


def test_package_exports():
    for name in ("nn", "optim", "schedules", "Sequential", "Dense", "gradcheck", "load"):
        assert hasattr(bp, name)
    assert callable(bp.gradcheck) and bp.Sequential is Sequential


# Activation layers with parameters

def test_parametrized_activation_layers_reject_bad_arguments():
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


# L1/L2 weight penalties

def test_dense_rejects_bad_penalties():
    with pytest.raises(ValueError, match="l1"):
        Dense(3, 2, l1=-1)
    with pytest.raises(TypeError, match="l2"):
        Dense(3, 2, l2="big")


def _penalty_data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((32, 5)).astype(np.float32), rng.integers(0, 3, 32)


def test_loss_and_gradient_include_the_penalty():
    X, y = _penalty_data()
    model = Sequential(Dense(5, 8, "relu", seed=0, l1=1e-3, l2=1e-2), Dense(8, 3, seed=1, l2=1e-2))
    plain = Sequential(Dense(5, 8, "relu", seed=0), Dense(8, 3, seed=1))
    W0, W1 = (l.W.astype(np.float64) for l in (model.layers[0], model.layers[1]))
    penalty = 1e-3 * np.abs(W0).sum() + 1e-2 * (W0 ** 2).sum() + 1e-2 * (W1 ** 2).sum()
    data_loss = plain.evaluate(X, y)["loss"]
    value = model.train_step(X, y, optimizer=SGD(0.0))
    assert value == pytest.approx(data_loss + penalty, rel=1e-5)
    plain.train_step(X, y, optimizer=SGD(0.0))
    g = plain.layers[0].weight.grad + np.float32(1e-3) * np.sign(plain.layers[0].W) + np.float32(2e-2) * plain.layers[0].W
    np.testing.assert_allclose(model.layers[0].weight.grad, g, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(model.layers[0].b, plain.layers[0].b)  # bias not penalized
    assert _fastpath.plan(model, CrossEntropyLoss(), SGD(0.1)) is not None  # penalties run in C++ too (test_fastpath.py)


def test_l2_penalty_is_weight_decay_of_twice_l2():
    X, y = _penalty_data()
    a = Sequential(Dense(5, 8, "tanh", seed=0, l2=0.05, dtype="float64"), Dense(8, 3, seed=1, l2=0.05, dtype="float64"))
    b = Sequential(Dense(5, 8, "tanh", seed=0, dtype="float64"), Dense(8, 3, seed=1, dtype="float64"))
    a.fit(X, y, epochs=2, batch_size=8, optimizer=SGD(0.1), seed=0, verbose=0)
    # weight decay also decays the biases, so compare with biases frozen out: use bias-free layers
    a2 = Sequential(Dense(5, 8, "tanh", seed=0, bias=False, l2=0.05, dtype="float64"),
                    Dense(8, 3, seed=1, bias=False, l2=0.05, dtype="float64"))
    b2 = Sequential(Dense(5, 8, "tanh", seed=0, bias=False, dtype="float64"),
                    Dense(8, 3, seed=1, bias=False, dtype="float64"))
    a2.fit(X, y, epochs=2, batch_size=8, optimizer=SGD(0.1), seed=0, verbose=0)
    b2.fit(X, y, epochs=2, batch_size=8, optimizer=SGD(0.1, weight_decay=0.1), seed=0, verbose=0)
    for k, v in a2.state_dict().items():
        np.testing.assert_allclose(v, b2.state_dict()[k], rtol=1e-10, atol=1e-12)
    # the penalty shows in the reported loss, weight decay does not
    assert a2.history.history["loss"][-1] > b2.history.history["loss"][-1]
    b.fit(X, y, epochs=2, batch_size=8, optimizer=SGD(0.1), seed=0, verbose=0)
    assert np.linalg.norm(a.layers[0].W) < np.linalg.norm(b.layers[0].W)  # shrinks the weights
