"""blockprop.dense_forward / dense_backward against the float64 reference, for every activation,
with and without bias, odd shapes and the layers of a 784-128-10 network."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import blockprop
from blockprop import reference as ref

from conftest import DTYPES, ISAS, assert_close, f64, random_array

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh"]

# (batch, in, out): odd sizes around the blocking constants, and the 784-128-10 net at batch
# 1, 32 and 128.
SHAPES = [
    (1, 1, 1), (3, 5, 7), (7, 13, 6), (15, 17, 33), (33, 257, 9), (14, 385, 17),
    (1, 784, 128), (32, 784, 128), (128, 784, 128),
    (1, 128, 10), (32, 128, 10), (128, 128, 10),
]
SHAPE_IDS = [f"b{b}-in{i}-out{o}" for b, i, o in SHAPES]


def layer(rng, batch, n_in, n_out, dtype, bias=True):
    """x, W (scaled by 1/sqrt(in) so pre-activations are O(1)), b or None."""
    x = random_array(rng, (batch, n_in), dtype)
    W = (rng.uniform(-1, 1, (n_out, n_in)) * np.sqrt(3.0 / max(n_in, 1))).astype(dtype)
    b = random_array(rng, (n_out,), dtype) if bias else None
    return x, W, b


def forward_scale(x, W, b):
    """|x|·|W|ᵀ + |b|: the magnitude of the terms summed into each pre-activation."""
    x64, W64, b64 = f64(x, W, b)
    s = np.abs(x64) @ np.abs(W64).T
    return s + np.abs(b64) if b is not None else s


@pytest.mark.parametrize("batch,n_in,n_out", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward(batch, n_in, n_out, bias, activation, isa, dtype, rng):
    """y = f(x·Wᵀ + b) matches the reference."""
    x, W, b = layer(rng, batch, n_in, n_out, dtype, bias)
    y = blockprop.dense_forward(x, W, b, activation)
    assert y.dtype == dtype and y.shape == (batch, n_out)
    want = ref.dense_forward(*f64(x, W, b), activation=activation)
    # f' ≤ 1 for every activation, so the pre-activation's error bound carries over.
    assert_close(y, want, dtype=dtype, k=n_in, scale=forward_scale(x, W, b), isa=isa,
                 name=f"dense_forward({activation}, bias={bias})", shape=(batch, n_in, n_out))


# The forward's GEMM (batch × n_out, depth n_in, W read transposed) on 2 and 3 threads: row strips
# and column groups of them over a shared Wᵀ, k slices of a W too large to share whole, in column
# blocks on AVX-512 (60×1024→4130), and column strips packing their own columns of Wᵀ (128×784→128
# on AVX-512); test_forward_threads_take_their_branches asserts it.
FORWARD_THREAD_SHAPES = [(128, 784, 128), (47, 200, 300), (60, 2100, 2050), (60, 1024, 4130)]


def test_forward_threads_take_their_branches(isa, dtype):
    """FORWARD_THREAD_SHAPES cover the ways of cutting the forward's GEMM they claim to."""
    plans = [blockprop._core.gemm_plan(batch, n_out, n_in, False, True, np.dtype(dtype).name,
                                       threads)
             for batch, n_in, n_out in FORWARD_THREAD_SHAPES for threads in (2, 3)]
    shared = [p for p in plans if p["strategy"] in ("shared_b", "shared_b_k_slices")]
    assert any(p["strips"] > 1 for p in shared), f"{isa} {dtype}: no row strips"
    assert any(p["groups"] > 1 for p in shared), f"{isa} {dtype}: no column groups"
    assert any(p["strategy"] == "shared_b_k_slices" for p in plans), f"{isa} {dtype}: no k slices"
    if isa == "avx512":
        assert any(p["blocks"] > 1 for p in plans), f"{isa} {dtype}: no column blocks"
        assert any(p["strategy"] == "own_b_columns" for p in plans), f"{isa} {dtype}: no own-B strips"


@pytest.mark.parametrize("batch,n_in,n_out", FORWARD_THREAD_SHAPES)
def test_forward_threads_bit_identical(batch, n_in, n_out, isa, dtype, rng):
    """Bias and activation are applied per chunk of C with the chunk's own columns of b: 1, 2 and
    3 threads (row strips, column groups of them, and k slices and column blocks of a W too large
    to share whole) give the same bits, matching the reference."""
    x, W, b = layer(rng, batch, n_in, n_out, dtype)
    before = blockprop.get_num_threads()
    try:
        ys = []
        for threads in (1, 2, 3):
            blockprop.set_num_threads(threads)
            ys.append(blockprop.dense_forward(x, W, b, "sigmoid"))
    finally:
        blockprop.set_num_threads(before)
    want = ref.dense_forward(*f64(x, W, b), activation="sigmoid")
    assert_close(ys[1], want, dtype=dtype, k=n_in, scale=forward_scale(x, W, b), isa=isa,
                 name="dense_forward(sigmoid) on 2 threads", shape=(batch, n_in, n_out))
    for threads, y in zip((2, 3), ys[1:]):
        assert np.array_equal(y, ys[0]), (f"dense_forward {batch}x{n_in}→{n_out} {np.dtype(dtype).name} "
                                          f"on {isa}: {threads} threads differ from 1")


@pytest.mark.parametrize("batch,n_in,n_out", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward(batch, n_in, n_out, activation, isa, dtype, rng):
    """dx, dW, db match the reference, with y taken from the kernel's own forward."""
    x, W, b = layer(rng, batch, n_in, n_out, dtype)
    y = blockprop.dense_forward(x, W, b, activation)
    dy = random_array(rng, (batch, n_out), dtype)
    dx, dW, db = blockprop.dense_backward(x, W, dy, y, activation)
    assert dx.dtype == dW.dtype == db.dtype == dtype
    assert (dx.shape, dW.shape, db.shape) == ((batch, n_in), (n_out, n_in), (n_out,))
    dx_w, dW_w, db_w = ref.dense_backward(*f64(x, W, dy, y), activation=activation)
    delta_abs = np.abs(ref._activation_grad(f64(dy), f64(y), activation))  # |δ|
    where = dict(isa=isa, shape=(batch, n_in, n_out))
    assert_close(dx, dx_w, dtype=dtype, k=n_out + 2, scale=delta_abs @ np.abs(f64(W)),
                 name=f"dense_backward dx ({activation})", **where)
    assert_close(dW, dW_w, dtype=dtype, k=batch + 2, scale=delta_abs.T @ np.abs(f64(x)),
                 name=f"dense_backward dW ({activation})", **where)
    assert_close(db, db_w, dtype=dtype, k=batch + 2, scale=delta_abs.sum(axis=0),
                 name=f"dense_backward db ({activation})", **where)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_need_dx_false(activation, isa, dtype, rng):
    """need_dx=False returns dx None and the same dW, db as with dx."""
    x, W, b = layer(rng, 19, 41, 23, dtype)
    y = blockprop.dense_forward(x, W, b, activation)
    dy = random_array(rng, y.shape, dtype)
    dx, dW, db = blockprop.dense_backward(x, W, dy, y, activation, need_dx=False)
    assert dx is None
    _, dW2, db2 = blockprop.dense_backward(x, W, dy, y, activation, need_dx=True)
    np.testing.assert_array_equal(dW, dW2)
    np.testing.assert_array_equal(db, db2)
    _, dW_w, db_w = ref.dense_backward(*f64(x, W, dy, y), activation=activation)
    assert_close(dW, dW_w, dtype=dtype, k=19, scale=np.abs(f64(dy)).T @ np.abs(f64(x)),
                 name="dW (need_dx=False)", isa=isa)
    assert_close(db, db_w, dtype=dtype, k=19, scale=np.abs(f64(dy)).sum(0), name="db", isa=isa)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_backward_requires_y_for_nonlinear(activation, dtype, rng):
    """A non-linear activation without y is a ValueError naming y."""
    x, W, _ = layer(rng, 4, 5, 3, dtype)
    dy = random_array(rng, (4, 3), dtype)
    with pytest.raises(ValueError, match=r"\by\b"):
        blockprop.dense_backward(x, W, dy, None, activation)


def test_backward_linear_ignores_y(isa, dtype, rng):
    """A linear layer needs no y: dx = dy·W, dW = dyᵀ·x, db = Σ dy."""
    x, W, _ = layer(rng, 6, 5, 4, dtype)
    dy = random_array(rng, (6, 4), dtype)
    dx, dW, db = blockprop.dense_backward(x, W, dy)
    dx_w, dW_w, db_w = ref.dense_backward(*f64(x, W, dy))
    assert_close(dx, dx_w, dtype=dtype, k=4, name="dx", isa=isa)
    assert_close(dW, dW_w, dtype=dtype, k=6, name="dW", isa=isa)
    assert_close(db, db_w, dtype=dtype, k=6, name="db", isa=isa)


def test_relu_layer_zeroes_negative_preactivations(isa, dtype, rng):
    """relu in the fused write-back: no negative outputs, and exactly the positive part of z."""
    x, W, b = layer(rng, 40, 30, 50, dtype)
    y = blockprop.dense_forward(x, W, b, "relu")
    z = blockprop.dense_forward(x, W, b, "linear")
    assert (y >= 0).all()
    np.testing.assert_array_equal(y, np.maximum(z, 0))
    assert (y == 0).mean() > 0.2  # the test saw negative pre-activations


def test_bias_added_to_every_row(isa, dtype, rng):
    """With W = 0 the output is the bias (through f) in every row."""
    x, W, b = layer(rng, 37, 20, 45, dtype)
    W[...] = 0
    for act in ACTIVATIONS:
        y = blockprop.dense_forward(x, W, b, act)
        want = ref.dense_forward(*f64(x, W, b), activation=act)
        assert_close(y, want, dtype=dtype, k=1, name=f"bias only ({act})", isa=isa)


def test_noncontiguous_inputs(isa, dtype, rng):
    """Fortran-ordered x, reversed W, strided b and transposed dy give the same results."""
    x, W, b = layer(rng, 27, 33, 21, dtype)
    xf = np.asfortranarray(x)
    Wr = W[::-1].copy()[::-1]
    bs = np.repeat(b, 2)[::2]
    for act in ACTIVATIONS:
        y = blockprop.dense_forward(x, W, b, act)
        np.testing.assert_array_equal(blockprop.dense_forward(xf, Wr, bs, act), y)
        dy = random_array(rng, y.shape, dtype)
        dyt = np.ascontiguousarray(dy.T).T
        got = blockprop.dense_backward(xf, Wr, dyt, np.asfortranarray(y), act)
        for g, w in zip(got, blockprop.dense_backward(x, W, dy, y, act)):
            np.testing.assert_array_equal(g, w)


def test_empty_batch(isa, dtype, rng):
    """batch 0: y is (0, out); dx is (0, in), dW and db are zeros."""
    x, W, b = layer(rng, 0, 7, 5, dtype)
    y = blockprop.dense_forward(x, W, b, "sigmoid")
    assert y.shape == (0, 5) and y.dtype == dtype
    dx, dW, db = blockprop.dense_backward(x, W, np.zeros((0, 5), dtype), y, "sigmoid")
    assert dx.shape == (0, 7) and dW.shape == (5, 7) and db.shape == (5,)
    np.testing.assert_array_equal(dW, 0)
    np.testing.assert_array_equal(db, 0)


def test_zero_in_features(isa, dtype, rng):
    """in_features 0: the pre-activation is the bias alone; dW is (out, 0)."""
    x, W, b = layer(rng, 4, 0, 3, dtype)
    y = blockprop.dense_forward(x, W, b, "tanh")
    assert_close(y, np.tanh(np.broadcast_to(f64(b), (4, 3))), dtype=dtype, k=1, name="y", isa=isa)
    dx, dW, db = blockprop.dense_backward(x, W, np.ones((4, 3), dtype), y, "tanh")
    assert dx.shape == (4, 0) and dW.shape == (3, 0)
    assert_close(db, (1 - f64(y) ** 2).sum(0), dtype=dtype, k=4, name="db", isa=isa)


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(0, 40), n_in=st.integers(0, 80), n_out=st.integers(1, 40),
       activation=st.sampled_from(ACTIVATIONS), bias=st.booleans(),
       dtype=st.sampled_from([np.dtype(t) for t in DTYPES]), isa_name=st.sampled_from(ISAS),
       seed=st.integers(0, 2**32 - 1))
def test_hypothesis(batch, n_in, n_out, activation, bias, dtype, isa_name, seed):
    """Random layer shapes, activation, bias, dtype and ISA: forward and backward agree with the
    reference."""
    rng = np.random.default_rng(seed)
    before = blockprop.isa()
    blockprop.set_isa(isa_name)
    try:
        x, W, b = layer(rng, batch, n_in, n_out, dtype, bias)
        y = blockprop.dense_forward(x, W, b, activation)
        assert_close(y, ref.dense_forward(*f64(x, W, b), activation=activation), dtype=dtype,
                     k=n_in, scale=forward_scale(x, W, b), name="y", isa=isa_name)
        dy = random_array(rng, y.shape, dtype)
        got = blockprop.dense_backward(x, W, dy, y, activation)
        want = ref.dense_backward(*f64(x, W, dy, y), activation=activation)
        for name, g, w, k in zip(("dx", "dW", "db"), got, want, (n_out, batch, batch)):
            assert_close(g, w, dtype=dtype, k=k + 2, name=name, isa=isa_name)
    finally:
        blockprop.set_isa(before)


@pytest.mark.parametrize("batch,n_in,n_out", [(1, 1, 1), (47, 37, 20), (128, 784, 128), (600, 30, 10)])
@pytest.mark.parametrize("threads", (1, 2))
def test_forward_counted_counts_nonfinite_before_the_activation(batch, n_in, n_out, threads, isa,
                                                                  dtype, rng):
    """_dense_forward_counted returns dense_forward's y, bit for bit, and the number of non-finite
    values of x·Wᵀ + b, before the activation (ReLU turns -inf into 0): NaN and ±inf in x, a zero
    column of W (inf·0), and an overflow from finite values all counted."""
    from blockprop import kernels as K
    x, W, b = layer(rng, batch, n_in, n_out, dtype)
    W[:, 0] = 0
    x[batch // 2, 0] = np.inf  # inf · 0 = NaN in every column
    x[batch - 1, n_in - 1] = -np.inf
    x[0, n_in // 2] = np.nan
    big = np.finfo(dtype).max
    x2, _, _ = layer(rng, batch, n_in, n_out, dtype)
    x2[batch // 3, :] = big  # finite, but its row of x·Wᵀ overflows
    before = blockprop.get_num_threads()
    try:
        blockprop.set_num_threads(threads)
        for xi in (x, x2, np.abs(x2)):
            y, bad = K._dense_forward_counted(xi, W, b, "relu")
            assert np.array_equal(y, blockprop.dense_forward(xi, W, b, "relu"), equal_nan=True)
            want = np.count_nonzero(~np.isfinite(blockprop.dense_forward(xi, W, b, "linear")))
            assert bad == want, (f"_dense_forward_counted {batch}x{n_in}→{n_out} "
                                 f"{np.dtype(dtype).name} on {isa}, {threads} threads: "
                                 f"counted {bad} non-finite, want {want}")
    finally:
        blockprop.set_num_threads(before)
