"""Back-propagation agrees with finite differences for every activation × loss."""
import numpy as np
import pytest

import blockprop as bp
from blockprop.nn import Dense, ReLU, Sequential, Sigmoid, Softmax, Tanh

HIDDEN = {
    "linear": lambda: [Dense(3, 5, seed=0, dtype="float64")],
    "relu": lambda: [Dense(3, 5, "relu", seed=0, dtype="float64")],
    "sigmoid": lambda: [Dense(3, 5, "sigmoid", seed=0, dtype="float64")],
    "tanh": lambda: [Dense(3, 5, "tanh", seed=0, dtype="float64")],
    "ReLU": lambda: [Dense(3, 5, seed=0, dtype="float64"), ReLU()],
    "Sigmoid": lambda: [Dense(3, 5, seed=0, dtype="float64"), Sigmoid()],
    "Tanh": lambda: [Dense(3, 5, seed=0, dtype="float64"), Tanh()],
    "Softmax": lambda: [Dense(3, 5, seed=0, dtype="float64"), Softmax()],
}


def _problem(loss, n=7, outputs=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = {"mse": rng.normal(size=(n, outputs)), "cross_entropy": rng.integers(0, outputs, n),
         "bce": rng.integers(0, 2, (n, outputs)).astype(float)}[loss]
    return X, y


def _model(hidden, out_activation=None):
    layers = HIDDEN[hidden]()
    for p in (p for l in layers for p in l.parameters().values()):  # non-zero biases matter too
        p.data[...] += np.random.default_rng(1).normal(size=p.data.shape) * 0.1
    return Sequential(*layers, Dense(5, 3, out_activation, seed=2, dtype="float64"))


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "bce"])
@pytest.mark.parametrize("hidden", sorted(HIDDEN))
def test_every_activation_and_loss(hidden, loss):
    X, y = _problem(loss)
    errors = bp.gradcheck(_model(hidden), X, y, loss)
    assert set(errors) == {"0.W", "0.b", f"{len(HIDDEN[hidden]())}.W", f"{len(HIDDEN[hidden]())}.b"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("out_activation", ["relu", "sigmoid", "tanh"])
def test_fused_output_activations(out_activation):
    X, y = _problem("mse")
    assert max(bp.gradcheck(_model("tanh", out_activation), X, y, "mse").values()) < 1e-6


def test_model_is_untouched_and_float32_models_are_checked_in_float64():
    model = Sequential(Dense(3, 4, "tanh", seed=0), Dense(4, 3, seed=1))
    before = model.state_dict()
    X, y = _problem("cross_entropy")
    errors = bp.gradcheck(model, X, y, "cross_entropy")
    assert max(errors.values()) < 1e-6
    assert model.dtype == np.float32 and model.optimizer is None
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


def test_a_wrong_gradient_is_caught():
    model = _model("tanh")
    X, y = _problem("mse")

    class Broken(Tanh):
        def backward(self, dy, need_dx=True):
            return 1.01 * super().backward(dy, need_dx)  # 1 % off

    model.layers.insert(1, Broken())
    model.layers[0].activation = "linear"
    errors = bp.gradcheck(model, X, y, "mse")
    assert errors["0.W"] > 1e-3 and errors["2.W"] < 1e-6
