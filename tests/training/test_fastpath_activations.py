"""The C++ training loop (blockprop._fastpath) with the activations that have parameters: LeakyReLU,
ELU and softplus (fused or as layers) train bit-identically to the Python loop; GELU and
non-default parameters are refused. (These belong in test_fastpath.py, kept apart while that file
is being edited elsewhere.)"""
import numpy as np
import pytest

import blockprop as bp
from blockprop import _fastpath
from blockprop.nn import ELU, GELU, Dense, LeakyReLU, Sequential, Softplus
from blockprop.optim import SGD


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
