"""blockprop.export_c: the generated C99 file compiles with a real C compiler under
``-std=c99 -O2 -Wall -Wextra -Werror -pedantic``, and ``<name>_predict`` run on real-sized inputs
gives ``Sequential.predict``'s outputs within 1e-5, for every layer type, both dtypes, used as a
.c file and as a header; the weights in it are bit-exact; bad arguments get clear errors."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import blockprop as bp
from blockprop.nn import (ELU, GELU, BatchNorm1d, Dense, Dropout, Layer, LayerNorm, LeakyReLU,
                          ReLU, Sequential, Sigmoid, Softmax, Softplus, Tanh)
from blockprop.nn.layers import ACTIVATIONS
from blockprop.optim import Adam

CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler on this machine (CI has gcc)")
FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]

# Reads n rows of float32 from a file, writes the outputs to another: allocation is the harness's.
HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#define {UP}_HEADER_ONLY
#include "{file}"
int main(int argc, char **argv) {{
    FILE *in, *out;
    int n;
    float *x, *y;
    if (argc != 4) return 2;
    n = atoi(argv[1]);
    x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * {UP}_IN_FEATURES);
    y = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * {UP}_OUT_FEATURES);
    in = fopen(argv[2], "rb");
    if (!x || !y || !in) return 3;
    if (fread(x, sizeof(float), (size_t)n * {UP}_IN_FEATURES, in) != (size_t)n * {UP}_IN_FEATURES) return 4;
    fclose(in);
    y[0] = 12345.0f;  /* untouched when n is 0 */
    {name}_predict(x, n, y);
    out = fopen(argv[3], "wb");
    if (!out) return 5;
    fwrite(y, sizeof(float), (size_t)(n > 0 ? n : 1) * {UP}_OUT_FEATURES, out);
    fclose(out);
    return 0;
}}
"""


def run_c(model, X, tmp_path, name="model", single_unit=False):
    """Export ``model``, compile it with a harness and return what ``<name>_predict`` gives for X."""
    src = tmp_path / f"{name}.c"
    assert bp.export_c(model, src, name=name) == str(src)
    harness = HARNESS.format(UP=name.upper(), name=name, file=src.name)
    if single_unit:  # the whole file included into the one translation unit
        harness = harness.replace(f"#define {name.upper()}_HEADER_ONLY\n", "")
    (tmp_path / "main.c").write_text(harness)
    exe = tmp_path / "predict"
    units = ["main.c"] if single_unit else ["main.c", src.name]
    built = subprocess.run([CC, *FLAGS, *units, "-o", str(exe), "-lm"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, f"{CC} failed:\n{built.stderr[-4000:]}"
    X = np.ascontiguousarray(X, dtype=np.float32)
    X.tofile(tmp_path / "x.bin")
    ran = subprocess.run([str(exe), str(len(X)), "x.bin", "y.bin"], cwd=tmp_path, capture_output=True,
                         timeout=600)
    assert ran.returncode == 0, ran
    return np.fromfile(tmp_path / "y.bin", np.float32).reshape(max(len(X), 1), -1)


def check(model, X, tmp_path, what, **kwargs):
    expected = model.predict(X.astype(model.dtype))
    got = run_c(model, X, tmp_path, **kwargs)
    err = float(np.max(np.abs(got.astype(np.float64) - expected)))
    within = np.abs(got.astype(np.float64) - expected) <= 1e-5 + 1e-5 * np.abs(expected)  # per element
    assert got.shape == expected.shape and within.all(), (
        f"{what}: shape {expected.shape}, dtype {model.dtype.name}, path C (cc -O2), max error {err:.3g}")
    return err


def data(n=1000, features=784, seed=0, unit=True):
    rng = np.random.default_rng(seed)
    return rng.random((n, features), dtype=np.float32) if unit else rng.standard_normal((n, features)).astype(np.float32)


def trained(model, X, epochs=2):
    """Fit a little, so weights, biases, γ, β and running statistics all move off their initial values."""
    y = np.abs(X[:, :model.out_features]).argmax(axis=1) % model.out_features
    model.fit(X, y, epochs=epochs, batch_size=64, optimizer=Adam(1e-3), seed=0, verbose=0)
    return model


@needs_cc
def test_mnist_sized_mlp(tmp_path):
    X = data()
    model = trained(Sequential(Dense(784, 128, "relu", seed=0), Dense(128, 10, seed=1)), X[:512], epochs=1)
    check(model, X, tmp_path, "784-128-10")


@needs_cc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_with_each_fused_activation(activation, dtype, tmp_path):
    X = data(500, 200, seed=1, unit=False)
    model = Sequential(Dense(200, 256, activation, seed=0, dtype=dtype), Dense(256, 64, activation, seed=1, dtype=dtype),
                       Dense(64, 10, seed=2, dtype=dtype))
    check(trained(model, X), X, tmp_path, f"Dense {activation}")


@needs_cc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layer", [ReLU, Sigmoid, Tanh, Softplus, GELU, Softmax, lambda: LeakyReLU(0.2),
                                   lambda: ELU(0.7), lambda: Dropout(0.4, seed=3)],
                         ids=["ReLU", "Sigmoid", "Tanh", "Softplus", "GELU", "Softmax", "LeakyReLU", "ELU",
                              "Dropout"])
def test_activation_layers(layer, dtype, tmp_path):
    X = data(500, 100, seed=2, unit=False)
    model = Sequential(Dense(100, 128, seed=0, dtype=dtype), layer(), Dense(128, 16, seed=1, dtype=dtype), layer())
    check(trained(model, X), X, tmp_path, f"{type(model.layers[1]).__name__}")


@needs_cc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normalization_layers_in_evaluation_form(dtype, tmp_path):
    X = data(600, 64, seed=3, unit=False) * 3 + 1
    model = Sequential(Dense(64, 128, "relu", seed=0, dtype=dtype), BatchNorm1d(128, dtype=dtype), Dropout(0.3),
                       Dense(128, 64, "tanh", seed=1, dtype=dtype), LayerNorm(64, dtype=dtype),
                       Dense(64, 5, seed=2, dtype=dtype), Softmax())
    trained(model, X, epochs=3)
    bn = model.layers[1]
    assert not np.allclose(bn.running_var, 1) and not np.allclose(model.layers[4].gamma.data, 1)
    check(model, X, tmp_path, "BatchNorm1d + LayerNorm")


@needs_cc
def test_every_layer_in_one_float64_model_used_as_a_single_unit(tmp_path):
    X = data(300, 50, seed=4, unit=False)
    model = Sequential(Dense(50, 64, "gelu", seed=0, dtype="float64"), BatchNorm1d(64, dtype="float64"), ELU(0.5),
                       Dense(64, 64, "elu", bias=False, seed=1, dtype="float64"), LayerNorm(64, dtype="float64"),
                       LeakyReLU(0.1), Dropout(0.2), Dense(64, 32, "softplus", seed=2, dtype="float64"), Sigmoid(),
                       Dense(32, 32, "leaky_relu", seed=3, dtype="float64"), Tanh(), Softplus(), GELU(), ReLU(),
                       Dense(32, 7, "sigmoid", seed=4, dtype="float64"), Softmax())
    check(trained(model, X), X, tmp_path, "every layer, float64", single_unit=True, name="net64")
    assert "double row0" in (tmp_path / "net64.c").read_text()


@needs_cc
@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")  # max_iter kept small on purpose
def test_a_fitted_sklearn_estimator_exports_its_network(tmp_path):
    pytest.importorskip("sklearn")
    from blockprop.sklearn import MLPClassifier
    X = data(400, 30, seed=5, unit=False)
    y = np.array(["a", "b", "c"])[np.abs(X[:, :3]).argmax(axis=1)]
    clf = MLPClassifier(hidden_layer_sizes=(40, 20), max_iter=30, random_state=0).fit(X, y)
    got = run_c(clf, X, tmp_path, name="clf")
    proba = np.exp(got - got.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    assert np.abs(proba - clf.predict_proba(X)).max() <= 1e-5
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(X)).mean() >= 0.999


@needs_cc
def test_no_rows_writes_nothing(tmp_path):
    model = Sequential(Dense(8, 4, seed=0))
    out = run_c(model, np.zeros((0, 8), np.float32), tmp_path)
    assert out[0, 0] == 12345.0


def test_weights_are_written_exactly(tmp_path):
    for dtype in ("float32", "float64"):
        model = Sequential(Dense(20, 30, "tanh", seed=0, dtype=dtype), LayerNorm(30, dtype=dtype), Dense(30, 3, seed=1, dtype=dtype))
        model.layers[0].W[0, :4] = [0.1, -0.0, 1e-40 if dtype == "float32" else 1e-310, 3.4e38]
        model.layers[2].b = [1 / 3, -2.5, 7]
        text = (tmp_path / "m.c")
        bp.export_c(model, text)
        source = text.read_text()
        for label, array in (("0_W", model.layers[0].W), ("0_b", model.layers[0].b), ("2_b", model.layers[2].b),
                             ("1_gamma", model.layers[1].gamma.data)):
            body = re.search(rf"model_{label}\[\d+\] = {{(.*?)}};", source, re.S).group(1)
            values = np.array([float.fromhex(v.strip().rstrip("f")) for v in body.split(",")])
            assert np.array_equal(values.astype(array.dtype), array.ravel()), (dtype, label)
            assert np.array_equal(np.signbit(values), np.signbit(array.ravel())), (dtype, label)
        assert ("static const float" in source) == (dtype == "float32")
        assert "#define MODEL_IN_FEATURES 20" in source and "#define MODEL_OUT_FEATURES 3" in source
        assert "void model_predict(const float *x, int n, float *y);" in source
        assert "malloc" not in source and "static float" not in source and "static double" not in source
        assert set(re.findall(r"#include\s*[<\"]([^>\"]+)", source)) == {"math.h", "stddef.h"}


@pytest.mark.parametrize("name", ["", "1net", "my-net", "net.c", "int", "static", "__net", "_Net", "n\u00e9t", 3, None])
def test_bad_names_are_refused(name, tmp_path):
    with pytest.raises(ValueError, match="export_c: name"):
        bp.export_c(Sequential(Dense(2, 2)), tmp_path / "m.c", name=name)
    assert not (tmp_path / "m.c").exists()


def test_other_bad_arguments_are_refused(tmp_path):
    model = Sequential(Dense(3, 2, seed=0))
    with pytest.raises(FileNotFoundError, match="directory .* does not exist"):
        bp.export_c(model, tmp_path / "missing" / "m.c")
    with pytest.raises(IsADirectoryError, match="export_c: cannot write"):
        bp.export_c(model, tmp_path)
    with pytest.raises(TypeError, match="path must be a file path"):
        bp.export_c(model, 42)
    with pytest.raises(TypeError, match="must be a blockprop Sequential"):
        bp.export_c("model", tmp_path / "m.c")
    model.layers[0].W[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"0\.W holds NaN"):
        bp.export_c(model, tmp_path / "m.c")

    class Scale(Layer):
        def forward(self, x):
            return 2 * x
    with pytest.raises(TypeError, match=r"layer 1 \(.*Scale.*\) has no C form"):
        bp.export_c(Sequential(Dense(3, 2), Scale()), tmp_path / "m.c")
    assert not (tmp_path / "m.c").exists()


def test_an_unfitted_estimator_is_refused(tmp_path):
    pytest.importorskip("sklearn")
    from blockprop.sklearn import MLPRegressor
    with pytest.raises(ValueError, match="not fitted yet"):
        bp.export_c(MLPRegressor(), tmp_path / "m.c")


def test_export_c_is_the_package_function():
    assert bp.export_c.__module__ == "blockprop.export_c" and callable(bp.export_c)
    assert os.path.basename(bp.__file__) == "__init__.py"
