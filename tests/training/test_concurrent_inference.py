"""Inference from many threads on one model: predict, predict_proba, predict_classes, evaluate,
model(X) in evaluation mode and the scikit-learn estimators' predict / predict_proba / score run
at once from any number of threads, each getting exactly its serial result, and leave the model
as it was (weights, running statistics, mode, the layers' arrays). Training stays exclusive:
inference while another thread trains is refused (it never sees a torn update), and so is
training while another thread runs inference."""
from __future__ import annotations

import copy
import threading

import numpy as np
import pytest

from blockprop.nn import (ELU, GELU, BatchNorm1d, Dense, Dropout, LayerNorm, LeakyReLU, Layer, ReLU,
                          Sequential, Sigmoid, Softmax, Softplus, Tanh)
from blockprop.optim import SGD

THREADS = 4
CALLS = 25


def _models(dtype):
    return {
        "fused": Sequential(Dense(20, 64, "relu", seed=0, dtype=dtype), Dense(64, 32, "gelu", seed=1, dtype=dtype),
                            Dense(32, 16, "tanh", seed=2, dtype=dtype), Dense(16, 4, seed=3, dtype=dtype)),
        "activations": Sequential(Dense(20, 32, seed=0, dtype=dtype), Sigmoid(), Dense(32, 32, seed=1, dtype=dtype),
                                  LeakyReLU(0.2), ELU(0.5), Softplus(), GELU(), Tanh(), ReLU(),
                                  Dense(32, 4, seed=2, dtype=dtype), Softmax()),
        "norm": Sequential(Dense(20, 48, "elu", seed=0, dtype=dtype), BatchNorm1d(48, dtype=dtype),
                           Dropout(0.3, seed=5), Dense(48, 24, "leaky_relu", seed=1, dtype=dtype),
                           LayerNorm(24, dtype=dtype), Dense(24, 4, "softplus", seed=2, dtype=dtype)),
    }


def _data(dtype, n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 20)).astype(dtype)
    return X, np.abs(X[:, :4]).argmax(axis=1)


def _trained(kind, dtype):
    model = _models(dtype)[kind]
    X, y = _data(dtype)
    model.fit(X, y, epochs=2, batch_size=32, optimizer=SGD(0.05), seed=0, verbose=0)  # running stats move
    return model


def _calls(model, X, y):
    """The inference calls, each on a slice of X that differs by call number."""
    def eval_call(Xb):
        model.eval()  # every thread sets the same mode: a read of shared state, no race on results
        return model(Xb)
    return [
        ("predict", lambda i: model.predict(X[i:i + 64 + i])),
        ("predict batch 7", lambda i: model.predict(X[i:], batch_size=7)),
        ("predict_proba", lambda i: model.predict_proba(X[2 * i:])),
        ("predict_classes", lambda i: model.predict_classes(X[:100 + i])),
        ("evaluate", lambda i: model.evaluate(X[i:], y[i:], batch_size=50)),
        ("__call__ eval", lambda i: eval_call(X[i:i + 33])),
    ]


def _run_threads(work, threads=THREADS):
    start, errors, results = threading.Barrier(threads), [], {}

    def body(t):
        try:
            start.wait()
            results[t] = work(t)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    pool = [threading.Thread(target=body, args=(t,)) for t in range(threads)]
    for p in pool:
        p.start()
    for p in pool:
        p.join(600)
    assert not errors, errors
    return results


def _same(a, b, what):
    if isinstance(a, dict):
        assert a == b, f"{what}: {a} != {b}"
        return
    assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
    diff = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.size else 0.0
    assert np.array_equal(a, b), f"{what}: shape {a.shape}, dtype {a.dtype}, max error {diff}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["fused", "activations", "norm"])
def test_threads_get_their_serial_results_and_change_nothing(kind, dtype):
    model = _trained(kind, dtype)
    X, y = _data(dtype, n=400, seed=1)
    calls = _calls(model, X, y)
    serial = {(name, i): fn(i) for name, fn in calls for i in range(CALLS)}
    model.train()  # inference must not depend on (or change) the model's mode
    before = model.state_dict()

    def work(t):
        out = {}
        for i in range(CALLS):
            for name, fn in calls[t % 2::2] + calls[(t + 1) % 2::2]:  # threads interleave differently
                out[(name, i)] = fn(i)
        return out

    results = _run_threads(work)
    for t, out in results.items():
        assert set(out) == set(serial)
        for key, value in out.items():
            _same(value, serial[key], f"{kind} {dtype} thread {t} {key}")
    after = model.state_dict()
    for name in before:
        assert np.array_equal(before[name], after[name]), f"{kind}: {name} changed by inference"
    held = [f"{type(l).__name__}.{a}" for l in model.layers for a in l._cache if getattr(l, a) is not None]
    assert not held, f"inference left {held} on the layers"
    assert model._readers == {} and model._owner is None


def test_call_in_training_mode_is_still_forward():
    model = _trained("norm", "float32")
    X, _ = _data("float32", n=64, seed=2)
    model.train()
    running = model.layers[1].running_mean.copy()
    model(X)  # training forward: batch statistics, running statistics updated, arrays kept
    assert not np.array_equal(running, model.layers[1].running_mean)
    assert model.layers[0]._x is not None
    model.backward(np.ones((64, 4), np.float32))
    model.eval()
    model(X)  # inference: drops what forward kept, so a backward now is refused
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.ones((64, 4), np.float32))


class _Scaled(Layer):
    """A custom layer without ``infer``: its forward may keep state, so inference takes the model."""

    def __init__(self):
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return 2 * x if not self.training else x


def test_a_custom_layer_without_infer_still_predicts_one_thread_at_a_time():
    model = Sequential(Dense(20, 8, "relu", seed=0), _Scaled(), Dense(8, 3, seed=1))
    X, _ = _data("float32", n=50)
    expected = model.layers[2].infer(2 * model.layers[0].infer(X))
    _same(model.predict(X), expected, "custom layer predict")  # evaluation mode was set for it
    assert model.training  # and the mode restored
    t, release = _holding(model, X)
    try:
        with pytest.raises(RuntimeError, match="another thread"):
            model.predict(X)
    finally:
        release.set()
        t.join(60)


class _ScaledWithInfer(_Scaled):
    def infer(self, x):
        return 2 * x


def test_a_custom_layer_with_infer_serves_threads():
    model = Sequential(Dense(20, 8, "relu", seed=0), _ScaledWithInfer(), Dense(8, 3, seed=1))
    X, _ = _data("float32", n=50)
    expected = model.layers[2].infer(2 * model.layers[0].infer(X))
    t, release = _holding(model, X)
    try:
        _same(model.predict(X), expected, "custom layer with infer, beside a held predict")
    finally:
        release.set()
        t.join(60)
    assert model.layers[1].calls == 0  # forward never ran


def _holding(model, X, call="predict"):
    """A thread inside ``model.<call>`` until the returned event is set."""
    entered, release = threading.Event(), threading.Event()

    class Waiting:
        def __array__(self, dtype=None, copy=None):
            entered.set()
            release.wait(60)
            return X

    args = (Waiting(),) if call == "predict" else (Waiting(), np.zeros(len(X), int))
    t = threading.Thread(target=getattr(model, call), args=args)
    t.start()
    assert entered.wait(60), "the inference thread never entered the model"
    return t, release


@pytest.mark.parametrize("call", ["predict", "evaluate"])
def test_training_is_refused_while_another_thread_runs_inference(call):
    model = _trained("fused", "float32")
    X, y = _data("float32", n=64)
    before, expected = model.state_dict(), model.predict(X)
    t, release = _holding(model, X, call)
    try:
        for train in (lambda: model.fit(X, y, epochs=1, verbose=0),
                      lambda: model.train_step(X, y),
                      lambda: model.load_state_dict(before)):
            with pytest.raises(RuntimeError, match="another thread .*1 call reading it in progress"):
                train()
        # other inference goes on meanwhile, and a copy is free to train
        _same(model.predict(X), expected, "predict beside a held inference call")
        twin = copy.deepcopy(model)
        twin.fit(X, y, epochs=1, verbose=0)
    finally:
        release.set()
        t.join(60)
    for name, value in model.state_dict().items():
        assert np.array_equal(value, before[name]), name
    model.fit(X, y, epochs=1, verbose=0)  # free once the inference returned


def test_predict_during_fit_is_refused_and_does_not_disturb_training(tmp_path):
    """What a predict during fit sees: a RuntimeError, never weights half-way through an update;
    fit ends with the weights an undisturbed fit gets."""
    X, y = _data("float32", n=4096)
    alone = _models("float32")["norm"]
    alone.fit(X, y, epochs=3, batch_size=16, seed=3, verbose=0)
    model = _models("float32")["norm"]
    done = threading.Event()
    trainer = threading.Thread(target=lambda: (model.fit(X, y, epochs=3, batch_size=16, seed=3, verbose=0),
                                               done.set()))
    refused = 0
    trainer.start()
    try:
        while not done.is_set() and trainer.is_alive():
            for call in (lambda: model.predict(X[:64]), lambda: model.evaluate(X[:64], y[:64]),
                         lambda: model.predict_proba(X[:8]), lambda: model.save(tmp_path / "m.npz"),
                         model.state_dict, lambda: model.astype("float64")):
                try:
                    call()
                except RuntimeError as e:
                    assert "another thread" in str(e) and "Sequential.fit" in str(e), e
                    refused += 1
    finally:
        trainer.join(600)
    assert done.is_set() and refused > 0
    for name, value in alone.state_dict().items():
        assert np.array_equal(value, model.state_dict()[name]), f"{name} differs after refused predicts"


def test_two_threads_training_one_model_are_still_refused():
    X, y = _data("float32", n=4096)
    model = _models("float32")["fused"]
    trainer = threading.Thread(target=lambda: model.fit(X, y, epochs=4, batch_size=16, verbose=0))
    trainer.start()
    try:
        while model._owner is None and trainer.is_alive():
            pass
        with pytest.raises(RuntimeError, match="another thread .*Sequential.fit"):
            model.train_step(X[:8], y[:8])
    finally:
        trainer.join(600)


def test_a_copy_is_free_and_pickles_without_the_record_of_use():
    model = _trained("fused", "float32")
    X, y = _data("float32", n=64)
    t, release = _holding(model, X)
    try:
        twin = copy.deepcopy(model)
        assert twin._owner is None and not getattr(twin, "_readers", {})
        twin.fit(X, y, epochs=1, verbose=0)
    finally:
        release.set()
        t.join(60)


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")  # max_iter kept small on purpose
def test_sklearn_estimators_serve_threads():
    pytest.importorskip("sklearn")
    from blockprop.sklearn import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 12))
    labels = np.array(["ant", "bee", "cat"])[np.abs(X[:, :3]).argmax(axis=1)]
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0).fit(X, labels)
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=5, random_state=0).fit(X, X[:, 0] - X[:, 1])
    calls = [("clf.predict", lambda i: clf.predict(X[i:])), ("clf.predict_proba", lambda i: clf.predict_proba(X[i:])),
             ("clf.score", lambda i: clf.score(X[i:], labels[i:])), ("reg.predict", lambda i: reg.predict(X[i:])),
             ("reg.score", lambda i: reg.score(X[i:], X[i:, 0] - X[i:, 1]))]
    serial = {(name, i): fn(i) for name, fn in calls for i in range(CALLS)}
    results = _run_threads(lambda t: {(name, i): fn(i) for i in range(CALLS) for name, fn in calls})
    for t, out in results.items():
        for key, value in out.items():
            if isinstance(value, float):
                assert value == serial[key], (t, key)
            else:
                assert np.array_equal(value, serial[key]), (t, key)
