"""precision="bfloat16" through training and inference: fit (the C++ loop and the Python step give
the same bits, as at float32), predict / predict_proba / evaluate against the bfloat16 reference
forward, float32 master weights, refusals that change nothing, and float32 unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import blockprop as bp
from blockprop import _fastpath
from blockprop import reference as ref


def data(n=600, d=20, classes=3, seed=0):
    X = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    W = np.random.default_rng(100).standard_normal((classes, d))  # one labelling for every seed
    return X, (X @ W.T).argmax(axis=1)


def model(d=20, classes=3, dtype="float32"):
    return bp.Sequential([bp.Dense(d, 48, activation="relu", seed=1, dtype=dtype),
                          bp.Dense(48, 32, activation="tanh", seed=2, dtype=dtype),
                          bp.Dense(32, classes, seed=3, dtype=dtype)])


def train(precision, fast, optimizer=None, epochs=3):
    X, y = data()
    before = _fastpath.enabled
    _fastpath.enabled = fast
    try:
        m = model()
        h = m.fit(X, y, epochs=epochs, batch_size=32, seed=0, verbose=0, precision=precision,
                  optimizer=optimizer or bp.optim.SGD(0.05, momentum=0.9))
    finally:
        _fastpath.enabled = before
    return m, h


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cpp_loop_and_python_step_agree_bit_for_bit(optimizer):
    make = (lambda: bp.optim.SGD(0.05, momentum=0.9)) if optimizer == "sgd" else (lambda: bp.optim.Adam(1e-3))
    (m1, h1), (m2, h2) = train("bfloat16", True, make()), train("bfloat16", False, make())
    for a, b in zip(m1.parameters().values(), m2.parameters().values()):
        assert np.array_equal(a.data, b.data)
    assert h1.history["loss"] == h2.history["loss"]


def test_bfloat16_rounds_but_learns_like_float32():
    (m16, h16), (m32, h32) = train("bfloat16", True, epochs=8), train("float32", True, epochs=8)
    assert all(p.data.dtype == np.float32 for p in m16.parameters().values())  # float32 master weights
    assert not np.array_equal(m16.layers[0].weight.data, m32.layers[0].weight.data)
    X, y = data(seed=1)
    a16 = m16.evaluate(X, y, precision="bfloat16")["accuracy"]
    a32 = m32.evaluate(X, y)["accuracy"]
    assert a32 > 0.85 and abs(a16 - a32) < 0.03, (a16, a32)
    assert abs(h16.history["loss"][-1] - h32.history["loss"][-1]) < 0.05


def test_float32_is_the_default_bit_for_bit():
    (m1, _), (m2, _) = train("float32", True), train("float32", True)
    X, y = data()
    m3 = model()
    m3.fit(X, y, epochs=3, batch_size=32, seed=0, verbose=0, optimizer=bp.optim.SGD(0.05, momentum=0.9))
    for a, b, c in zip(m1.parameters().values(), m2.parameters().values(), m3.parameters().values()):
        assert np.array_equal(a.data, c.data) and np.array_equal(b.data, c.data)


def reference_forward(m, X, precision):
    h = X
    for layer in m.layers:
        h = ref.dense_forward(h, layer.weight.data, layer.b, layer.activation or "linear",
                              precision=precision)
    return h


def test_predict_evaluate_against_reference():
    m, _ = train("bfloat16", True)
    X, y = data(n=300, seed=2)
    got = m.predict(X, precision="bfloat16")
    want = reference_forward(m, X, "bfloat16")
    # Each layer: float32 sums of exact bf16 products; an output one float32 step off rounds the
    # next layer's bf16 input a step off at most, a 2⁻⁸ relative change: allow a few bf16 steps.
    assert np.allclose(got, want, rtol=2e-2, atol=2e-2), np.abs(got - want).max()
    f32 = m.predict(X)
    assert not np.array_equal(got, f32)
    assert np.allclose(got, f32, atol=0.1)
    proba = m.predict_proba(X, precision="bfloat16")
    assert np.allclose(proba, bp.softmax(got), atol=1e-6)
    assert np.array_equal(m.predict_classes(X, precision="bfloat16"), proba.argmax(axis=1))
    scores = m.evaluate(X, y, precision="bfloat16")
    assert scores["accuracy"] == np.mean(got.argmax(axis=1) == y)


def test_refusals_change_nothing():
    X, y = data()
    m = model()
    before = [p.data.copy() for p in m.parameters().values()]
    with pytest.raises(ValueError, match="fit: precision must be one of 'float32', 'bfloat16', got 'bf16'"):
        m.fit(X, y, precision="bf16", verbose=0)
    with pytest.raises(TypeError, match="fit: precision must be a str"):
        m.fit(X, y, precision=16, verbose=0)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, m.parameters().values()))
    assert m.optimizer is None and m.progress.updates == 0
    for call in (m.predict, m.predict_proba, m.predict_classes):
        with pytest.raises(ValueError, match="precision must be one of"):
            call(X, precision="half")
    with pytest.raises(ValueError, match="evaluate: precision must be one of"):
        m.evaluate(X, y, precision="half")
    m64 = model(dtype="float64")
    with pytest.raises(TypeError, match="fit: precision='bfloat16' takes float32 arrays.*float64"):
        m64.fit(X, y, precision="bfloat16", verbose=0)
    with pytest.raises(TypeError, match="predict: precision='bfloat16' takes float32"):
        m64.predict(X, precision="bfloat16")
    assert m64.progress.updates == 0


def test_precision_does_not_leak_past_the_call():
    m, _ = train("bfloat16", True, epochs=1)
    X, _ = data(n=50)
    assert np.array_equal(m.predict(X), m.predict(X, precision="float32"))
    assert bp._precision.current() == "float32"
