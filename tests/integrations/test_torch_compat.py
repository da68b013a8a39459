"""blockprop.torch_compat: state_dict export/import with PyTorch's keys, to_torch/from_torch,
and the same outputs in both for the same input."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import blockprop
from blockprop import Dense, Sequential, torch_compat
from blockprop.nn import ReLU, Sigmoid, Softmax, Tanh

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the weight-exchange tests "
                                            "need it (CI installs the CPU build)")
nn = torch.nn

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _model(dtype, seed=0):
    return Sequential(Dense(5, 16, "relu", seed=seed, dtype=dtype),
                      Dense(16, 8, "tanh", seed=seed + 1, dtype=dtype),
                      Dense(8, 6, "sigmoid", bias=False, seed=seed + 2, dtype=dtype),
                      Dense(6, 4, seed=seed + 3, dtype=dtype), Softmax())


def _assert_same(got, want, dtype, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.max(np.abs(got - want))
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.allclose(got, want, **TOL[dtype]), (
        f"{what}: shape={got.shape}, dtype={np.dtype(dtype).name}, isa={blockprop.isa()}, max abs err {err:.3g}")


def _torch_forward(module, X):
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


def test_import_blockprop_does_not_import_torch():
    code = "import sys, blockprop, blockprop.torch_compat; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_keys_count_activation_modules():
    model = _model(np.float32)
    assert torch_compat.torch_keys(model) == {
        "0.weight": "0.W", "0.bias": "0.b", "2.weight": "1.W", "2.bias": "1.b",
        "4.weight": "2.W", "6.weight": "3.W", "6.bias": "3.b"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_export_loads_strictly_into_handwritten_torch_module(dtype):
    model = _model(dtype)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    module = nn.Sequential(nn.Linear(5, 16, dtype=tdtype), nn.ReLU(), nn.Linear(16, 8, dtype=tdtype),
                           nn.Tanh(), nn.Linear(8, 6, bias=False, dtype=tdtype), nn.Sigmoid(),
                           nn.Linear(6, 4, dtype=tdtype), nn.Softmax(dim=1))
    sd = torch_compat.state_dict(model)
    assert all(isinstance(v, torch.Tensor) and v.dtype == tdtype for v in sd.values())
    module.load_state_dict(sd, strict=True)
    X = np.random.default_rng(1).normal(size=(33, 5)).astype(dtype)
    _assert_same(model.predict(X), _torch_forward(module, X), dtype, "blockprop -> torch")
    # copies: changing the export does not touch the model
    sd["0.weight"].zero_()
    assert np.any(model.layers[0].W != 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_import_from_torch_state_dict(dtype):
    torch.manual_seed(0)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    module = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(),
                           nn.Linear(8, 6, bias=False), nn.Sigmoid(), nn.Linear(6, 4),
                           nn.Softmax(dim=-1)).to(tdtype)
    model = Sequential(Dense(5, 16, "relu", dtype=dtype), Dense(16, 8, "tanh", dtype=dtype),
                       Dense(8, 6, "sigmoid", bias=False, dtype=dtype), Dense(6, 4, dtype=dtype),
                       Softmax())
    torch_compat.load_state_dict(model, module.state_dict())
    np.testing.assert_array_equal(model.layers[1].W, module[2].weight.detach().numpy().astype(dtype))
    X = np.random.default_rng(2).normal(size=(40, 5)).astype(dtype)
    _assert_same(model.predict(X), _torch_forward(module, X), dtype, "torch -> blockprop")


def test_round_trip_through_modules_is_exact():
    model = _model(np.float32, seed=5)
    module = torch_compat.to_torch(model)
    assert [type(m).__name__ for m in module] == ["Linear", "ReLU", "Linear", "Tanh", "Linear",
                                                   "Sigmoid", "Linear", "Softmax"]
    back = torch_compat.from_torch(module)
    assert repr(back) == repr(model)
    for (k1, a), (k2, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k1 == k2 and a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert list(torch_compat.state_dict(back)) == list(module.state_dict())


def test_standalone_activation_layers_and_float64_module():
    model = Sequential(Dense(3, 4, dtype="float64"), ReLU(), Dense(4, 4, dtype="float64"), Tanh(),
                       Sigmoid(), Dense(4, 2, dtype="float64"))
    module = torch_compat.to_torch(model)
    assert [type(m).__name__ for m in module] == ["Linear", "ReLU", "Linear", "Tanh", "Sigmoid", "Linear"]
    assert module[0].weight.dtype == torch.float64
    X = np.random.default_rng(3).normal(size=(7, 3))
    _assert_same(model.predict(X), _torch_forward(module, X), np.float64, "stand-alone activations")
    back = torch_compat.from_torch(module)
    # the ReLU after a linear Dense fuses; Sigmoid after Tanh stays a layer
    assert repr(back.layers[0]) == "Dense(3, 4, activation='relu')" and back.dtype == np.float64
    _assert_same(back.predict(X), model.predict(X), np.float64, "fused round trip")


def test_trained_in_blockprop_predicts_the_same_in_torch():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(256, 6)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    model = Sequential(Dense(6, 32, "relu", seed=0), Dense(32, 3, seed=1))
    model.fit(X, y, epochs=5, batch_size=32, optimizer="adam", verbose=0, seed=0)
    module = torch_compat.to_torch(model)
    _assert_same(model.predict(X), _torch_forward(module, X), np.float32, "trained model")
    np.testing.assert_array_equal(model.predict_classes(X), _torch_forward(module, X).argmax(axis=1))


def test_numpy_export_needs_no_torch_tensors():
    model = _model(np.float64)
    sd = torch_compat.state_dict(model, as_numpy=True)
    assert all(type(v) is np.ndarray for v in sd.values())
    other = _model(np.float64, seed=9)
    torch_compat.load_state_dict(other, sd)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        np.testing.assert_array_equal(a, b)


def test_mismatches_raise_and_change_nothing():
    model = _model(np.float32)
    before = model.state_dict()
    good = torch_compat.state_dict(model, as_numpy=True)
    with pytest.raises(ValueError, match=r"missing \['6.bias'\]"):
        torch_compat.load_state_dict(model, {k: v for k, v in good.items() if k != "6.bias"})
    with pytest.raises(ValueError, match=r"unexpected \['1.weight'\]"):
        torch_compat.load_state_dict(model, {**good, "1.weight": good["0.weight"]})
    bad = dict(good, **{"6.weight": np.zeros((6, 4)), "0.weight": np.ones((16, 5))})
    with pytest.raises(ValueError, match=r"6.weight \(blockprop 3.W\) must have shape \(4, 6\)"):
        torch_compat.load_state_dict(model, bad)
    with pytest.raises(TypeError, match="numbers"):
        torch_compat.load_state_dict(model, dict(good, **{"0.bias": np.array(["a"] * 16)}))
    for a, b in zip(before.values(), model.state_dict().values()):
        np.testing.assert_array_equal(a, b)


def test_unsupported_modules_and_layers_are_named():
    with pytest.raises(ValueError, match="'1' \\(LeakyReLU\\)"):
        torch_compat.from_torch(nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(), nn.Linear(3, 1)))
    with pytest.raises(ValueError, match="dim=0"):
        torch_compat.from_torch(nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=0)))
    with pytest.raises(TypeError, match="nn.Sequential"):
        torch_compat.from_torch(nn.Linear(2, 3))
    with pytest.raises(ValueError, match="expects 4 input features"):
        torch_compat.from_torch(nn.Sequential(nn.Linear(2, 3), nn.Linear(4, 1)))
    with pytest.raises(TypeError, match="Sequential"):
        torch_compat.state_dict(nn.Linear(2, 3))  # type: ignore[arg-type]


def test_half_precision_weights_are_widened():
    module = nn.Sequential(nn.Linear(3, 2)).to(torch.bfloat16)
    model = torch_compat.from_torch(module, dtype="float32")
    np.testing.assert_array_equal(model.layers[0].W, module[0].weight.float().detach().numpy())
