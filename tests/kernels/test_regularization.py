"""L1/L2 weight penalties: the kernel vs the reference and finite differences, the penalty in the
reported loss and the gradient, L2 as weight decay."""
import numpy as np
import pytest

from blockprop import _fastpath
from blockprop import kernels as K
from blockprop import reference as R
from blockprop.nn import CrossEntropyLoss, Dense, Sequential
from blockprop.optim import SGD
from conftest import assert_close, random_array


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_kernel_matches_reference(n, isa, dtype, rng):
    w = random_array(rng, (n,), dtype)
    w[0] = 0  # sign(0) = 0
    g, g_ref = random_array(rng, (n,), dtype), None
    g_ref = g.astype(np.float64)
    value = K.weight_penalty(w, 0.01, 0.1, g)
    want = R.weight_penalty(w.astype(np.float64), 0.01, 0.1, g_ref)
    assert value == pytest.approx(want, rel=1e-12)
    assert_close(g, g_ref, dtype=dtype, k=2, name="weight_penalty grad", isa=isa)
    assert K.weight_penalty(w, 0.0, 0.0) == 0.0


def test_penalty_gradient_matches_finite_differences():
    w = np.random.default_rng(0).standard_normal(20)
    g = np.zeros_like(w)
    K.weight_penalty(w, 0.3, 0.7, g)
    for i in range(w.size):
        up, down = w.copy(), w.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        numeric = (K.weight_penalty(up, 0.3, 0.7) - K.weight_penalty(down, 0.3, 0.7)) / 2e-6
        assert g[i] == pytest.approx(numeric, rel=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="l1"):
        Dense(3, 2, l1=-1)
    with pytest.raises(TypeError, match="l2"):
        Dense(3, 2, l2="big")
    with pytest.raises(ValueError, match="l1 and l2"):
        K.weight_penalty(np.ones(3), -1.0, 0.0)
    with pytest.raises(ValueError, match="grad"):
        K.weight_penalty(np.ones(3), 1.0, 0.0, np.ones(4))


def _data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((32, 5)).astype(np.float32), rng.integers(0, 3, 32)


def test_loss_and_gradient_include_the_penalty():
    X, y = _data()
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
    assert _fastpath.plan(model, CrossEntropyLoss(), SGD(0.1)) is None  # C++ loop has no penalties


def test_l2_penalty_is_weight_decay_of_twice_l2():
    X, y = _data()
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
