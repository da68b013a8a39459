"""dense_forward / dense_backward with precision="bfloat16" against the bfloat16 reference on every
bf16 path this machine has (and the portable one always): each product's operands rounded to
bfloat16, bias, activation, δ and db in float32. Tolerance as in test_gemm_bf16 (float32
accumulation of exact bfloat16 products), with the activation's float32 rounding on top."""
from __future__ import annotations

import numpy as np
import pytest

import blockprop
from blockprop import reference as ref

from bf16_paths import BF16_PATHS, PATH_IDS, running_on
from conftest import assert_close, f64, random_array

SHAPES = [(1, 1, 1), (3, 5, 7), (7, 13, 6), (15, 17, 33), (33, 257, 9), (14, 385, 17),
          (64, 784, 128), (256, 1024, 1024), (37, 128, 10), (5, 3, 1001),
          (3, 2100, 4200)]  # a k slice of Wᵀ over 16 MiB: the bias applied per column block
SHAPE_IDS = [f"b{b}-in{i}-out{o}" for b, i, o in SHAPES]
ACTIVATIONS = ["linear", "relu", "tanh", "sigmoid"]
BACKWARD = {"relu": blockprop.relu_backward, "tanh": blockprop.tanh_backward,
            "sigmoid": blockprop.sigmoid_backward}


@pytest.fixture(params=BF16_PATHS, ids=PATH_IDS)
def path(request):
    with running_on(*request.param) as label:
        yield label


def bf(a):
    return ref.round_bfloat16(a).astype(np.float64)


@pytest.mark.parametrize("batch,n_in,n_out", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_backward(batch, n_in, n_out, activation, path, rng):
    x = random_array(rng, (batch, n_in), np.float32)
    W = (rng.uniform(-1, 1, (n_out, n_in)) * np.sqrt(3.0 / n_in)).astype(np.float32)
    b = random_array(rng, (n_out,), np.float32)
    y = blockprop.dense_forward(x, W, b, activation, precision="bfloat16")
    assert y.dtype == np.float32
    z = bf(x) @ bf(W).T + f64(b)
    want = ref.dense_forward(z, np.eye(n_out), None, activation) if activation != "linear" else z
    scale = np.abs(bf(x)) @ np.abs(bf(W)).T + np.abs(f64(b))
    where = dict(dtype=np.float32, isa=path, shape=(batch, n_in, n_out))
    assert_close(y, want, k=n_in, scale=scale, name=f"dense_forward({activation}, bfloat16)", **where)
    assert np.array_equal(ref.dense_forward(x, W, b, activation, precision="bfloat16").shape, y.shape)

    dy = random_array(rng, (batch, n_out), np.float32)
    dx, dW, db = blockprop.dense_backward(x, W, dy, y, activation, precision="bfloat16")
    # δ in float32 as the kernel forms it (its own activation backward), rounded for the products
    d32 = blockprop.dense_backward(x, W, dy, y, activation, need_dx=False)[2]  # db = Σδ, float32
    delta = dy if activation == "linear" else BACKWARD[activation](dy, y)
    assert_close(dx, bf(delta) @ bf(W), k=n_out, scale=np.abs(bf(delta)) @ np.abs(bf(W)),
                 name=f"dense_backward dx ({activation}, bfloat16)", **where)
    assert_close(dW, bf(delta).T @ bf(x), k=batch, scale=np.abs(bf(delta)).T @ np.abs(bf(x)),
                 name=f"dense_backward dW ({activation}, bfloat16)", **where)
    # db is a float32 reduction of δ, as at float32 precision: the same bits
    assert np.array_equal(db, d32), path
    # The reference twin itself where its δ is the kernel's bit for bit (linear: δ = dy). Elsewhere
    # NumPy's f'(y) can differ from the kernel's in the last float32 bit, which can move bf16(δ) a
    # whole bfloat16 step: the checks above use the kernel's δ for that reason.
    if activation != "linear":
        return
    rdx, rdW, rdb = ref.dense_backward(x, W, dy, y, activation, precision="bfloat16")
    assert_close(db, rdb, k=batch, scale=np.abs(dy).sum(axis=0), name="db vs reference", **where)
    assert_close(dx, rdx, k=n_out, scale=np.abs(bf(delta)) @ np.abs(bf(W)) + 1e-6,
                 name="dense_backward dx vs reference", **where)
    assert_close(dW, rdW, k=batch, scale=np.abs(bf(delta)).T @ np.abs(bf(x)) + 1e-6,
                 name="dense_backward dW vs reference", **where)


def test_need_dx_false_and_counted(path, rng):
    x = random_array(rng, (20, 30), np.float32)
    W = random_array(rng, (7, 30), np.float32)
    dy = random_array(rng, (20, 7), np.float32)
    dx, dW, _ = blockprop.dense_backward(x, W, dy, need_dx=False, precision="bfloat16")
    assert dx is None
    assert np.array_equal(dW, blockprop.dense_backward(x, W, dy, precision="bfloat16")[1]), path
    x[4, 2] = np.nan
    y, bad = blockprop.kernels._dense_forward_counted(x, W, None, "relu", precision="bfloat16")
    assert bad == 7 and y.dtype == np.float32


def test_bad_precision():
    x = np.ones((2, 3), np.float32)
    W = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="dense_forward: precision must be one of"):
        blockprop.dense_forward(x, W, precision="half")
    with pytest.raises(ValueError, match="dense_backward: precision must be one of"):
        blockprop.dense_backward(x, W, np.ones((2, 4), np.float32), precision="fp32")
    with pytest.raises(TypeError, match="dense_forward: precision='bfloat16' takes float32"):
        blockprop.dense_forward(x.astype(np.float64), W.astype(np.float64), precision="bfloat16")
    with pytest.raises(TypeError, match="dense_backward: precision='bfloat16' takes float32"):
        blockprop.dense_backward(x.astype(np.float64), W.astype(np.float64),
                                 np.ones((2, 4)), precision="bfloat16")
