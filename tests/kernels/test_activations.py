"""The activation kernels against the float64 reference on every ISA and dtype: relu, sigmoid, tanh,
softmax and their backwards, including extreme inputs, softmax over the last axis of 1-D/2-D/3-D
input, and NaN propagation; leaky_relu, elu, gelu, softplus with their parameters, known values,
fused into dense layers, and their argument checks. (The reference's own derivatives are checked
in test_reference.py, the activation layers in nn/test_nn_layers.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import blockprop
from blockprop import kernels as K
from blockprop import reference as ref

from conftest import PARAM_ACTIVATIONS, THROUGH_INPUT, assert_close, f64, random_array

ELEMENTWISE = ["relu", "sigmoid", "tanh"]
SHAPES = [(1,), (7,), (33,), (5, 17), (0, 4), (3, 0), (2, 3, 5), (4, 1, 129), ()]


def fwd(name):
    return getattr(blockprop, name)


def bwd(name):
    return getattr(blockprop, name + "_backward")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_forward_backward(name, shape, isa, dtype, rng):
    """y = f(x) and dx = dy ⊙ f'(y) match the reference for any shape, keeping shape and dtype."""
    x = random_array(rng, shape, dtype, -4, 4)
    y = fwd(name)(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert_close(y, getattr(ref, name)(f64(x)), dtype=dtype, k=1, name=name, isa=isa)
    dy = random_array(rng, shape, dtype)
    dx = bwd(name)(dy, y)
    assert dx.shape == x.shape and dx.dtype == dtype
    assert_close(dx, getattr(ref, name + "_backward")(*f64(dy, y)), dtype=dtype, k=2,
                 name=name + "_backward", isa=isa)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_extreme_inputs(name, isa, dtype):
    """±1000, ±max and ±inf give finite saturated outputs and gradients (no NaN, no overflow)."""
    big = np.finfo(dtype).max
    x = np.array([-np.inf, -big, -1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0, big, np.inf],
                 dtype)
    with np.errstate(all="raise"):
        y = fwd(name)(x)
    assert np.isfinite(y[1:-1]).all(), y
    want = getattr(ref, name)(f64(x))
    if name == "relu":  # relu passes ±inf through; the others saturate
        np.testing.assert_array_equal(y, want)
    else:
        assert not np.isnan(y).any() and np.isfinite(y).all(), y
        assert_close(y, want, dtype=dtype, k=1, name=name, isa=isa)
    dx = bwd(name)(np.ones_like(x), y)
    assert np.isfinite(dx[1:-1]).all() and not np.isnan(dx).any(), dx
    assert_close(dx, getattr(ref, name + "_backward")(np.ones(x.shape), f64(y)), dtype=dtype,
                 k=2, name=name + "_backward", isa=isa)


def test_sigmoid_saturation_values(isa, dtype):
    """sigmoid(−1000) = 0, sigmoid(1000) = 1, sigmoid(0) = 1/2 exactly; tanh(±1000) = ±1."""
    x = np.array([-1000.0, 0.0, 1000.0], dtype)
    np.testing.assert_array_equal(blockprop.sigmoid(x), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(blockprop.tanh(x), [-1.0, 0.0, 1.0])


def test_relu_propagates_nan(isa, dtype):
    """relu keeps NaN (as np.maximum does) and zeroes only negatives; -0.0 and 0 give 0."""
    x = np.array([np.nan, -1.0, 0.0, -0.0, 2.0, np.nan], dtype)
    y = blockprop.relu(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    np.testing.assert_array_equal(y[1:5], [0.0, 0.0, 0.0, 2.0])


def test_relu_backward_masks_by_output(isa, dtype):
    """relu_backward passes dy where y > 0 and gives 0 where y ≤ 0 (y = 0 included)."""
    y = np.array([0.0, 1.0, 0.0, 3.0, 0.5], dtype)
    dy = np.array([5.0, -2.0, np.nan, 4.0, 7.0], dtype)
    dx = blockprop.relu_backward(dy, y)
    np.testing.assert_array_equal(dx, [0.0, -2.0, 0.0, 4.0, 7.0])


@pytest.mark.parametrize("name", ELEMENTWISE + ["softmax"])
def test_noncontiguous_inputs(name, isa, dtype, rng):
    """Transposed and strided inputs give the same values as their contiguous copies."""
    x = random_array(rng, (13, 22), dtype, -3, 3)[:, ::2].T  # (11, 13), non-contiguous
    y = fwd(name)(x)
    np.testing.assert_array_equal(y, fwd(name)(np.ascontiguousarray(x)))
    dy = random_array(rng, (22, 13), dtype)[::-2]
    yy = np.asfortranarray(y)
    np.testing.assert_array_equal(bwd(name)(dy, yy),
                                  bwd(name)(np.ascontiguousarray(dy), np.ascontiguousarray(y)))


@pytest.mark.parametrize("shape", [(1,), (10,), (4, 7), (1, 1000), (3, 1), (2, 3, 17),
                                   (2, 2, 2, 33), (0, 5)], ids=str)
def test_softmax_last_axis(shape, isa, dtype, rng):
    """softmax normalises over the last axis of any-rank input; its backward is the JVP."""
    x = random_array(rng, shape, dtype, -5, 5)
    y = blockprop.softmax(x)
    assert y.shape == x.shape and y.dtype == dtype
    cols = shape[-1]
    assert_close(y, ref.softmax(f64(x)), dtype=dtype, k=cols, name="softmax", isa=isa)
    if y.size:
        assert_close(y.sum(axis=-1), np.ones(shape[:-1]), dtype=dtype, k=cols,
                     name="softmax row sums", isa=isa)
    dy = random_array(rng, shape, dtype)
    dx = blockprop.softmax_backward(dy, y)
    assert dx.shape == x.shape and dx.dtype == dtype
    assert_close(dx, ref.softmax_backward(*f64(dy, y)), dtype=dtype, k=cols,
                 name="softmax_backward", isa=isa)


def test_softmax_is_over_last_axis_not_flattened(isa, dtype, rng):
    """A 3-D softmax equals the 1-D softmax of each last-axis slice separately."""
    x = random_array(rng, (3, 4, 6), dtype, -3, 3)
    y = blockprop.softmax(x)
    for i in range(3):
        for j in range(4):
            np.testing.assert_allclose(y[i, j], blockprop.softmax(x[i, j]), rtol=0, atol=0)


def test_softmax_extreme_inputs(isa, dtype):
    """Logits of ±1000 (and the dtype's max) are stable: no NaN, no overflow, rows sum to 1."""
    big = np.finfo(dtype).max
    x = np.array([[1000.0, 0.0, -1000.0],
                  [1000.0, 1000.0, -1000.0],
                  [-1000.0, -1000.0, -1000.0],
                  [big, 0.0, -big],
                  [1e4, 1e4 - 1, 0.0]], dtype)
    y = blockprop.softmax(x)
    assert np.isfinite(y).all(), y
    with np.errstate(over="ignore"):  # max − (−max) overflows to −inf in float64: exp gives 0
        want = ref.softmax(f64(x))
    assert_close(y, want, dtype=dtype, k=3, name="softmax extreme", isa=isa)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=4 * np.finfo(dtype).eps)
    dx = blockprop.softmax_backward(np.ones_like(y), y)
    assert np.isfinite(dx).all()


def test_softmax_shift_invariant(isa, dtype, rng):
    """softmax(x + c) = softmax(x) for a per-row constant c."""
    x = random_array(rng, (6, 9), dtype, -2, 2)
    shifted = (x + np.array([[0], [50], [-50], [300], [-300], [7]], dtype)).astype(dtype)
    assert_close(blockprop.softmax(shifted), ref.softmax(f64(x)), dtype=dtype, k=9 * 64,
                 name="softmax(x + c)", isa=isa)


def test_softmax_backward_orthogonal_to_ones(isa, dtype, rng):
    """Each row of softmax_backward sums to 0 (softmax output is on the simplex)."""
    y = blockprop.softmax(random_array(rng, (8, 31), dtype, -3, 3))
    dx = blockprop.softmax_backward(random_array(rng, (8, 31), dtype), y)
    assert np.abs(dx.sum(axis=1)).max() < 64 * np.finfo(dtype).eps


def test_zero_dim_softmax_rejected(dtype):
    """A 0-D array has no last axis: ValueError naming x."""
    with pytest.raises(ValueError, match=r"\bx\b"):
        blockprop.softmax(np.array(1.0, dtype))


# leaky_relu, elu, gelu, softplus: activations with parameters

@pytest.mark.parametrize("name,kw", PARAM_ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1,), (7,), (33, 17)])
def test_kernels_match_reference(name, kw, shape, isa, dtype, rng):
    x = random_array(rng, shape, dtype, -8, 8)
    dy = random_array(rng, shape, dtype)
    y = getattr(K, name)(x, **kw)
    assert y.dtype == dtype
    assert_close(y, getattr(ref, name)(f64(x), **kw), dtype=dtype, k=4, name=f"{name} forward",
                 shape=shape, isa=isa)
    v = x if name in THROUGH_INPUT else y
    dx = getattr(K, name + "_backward")(dy, v, **kw)
    assert_close(dx, getattr(ref, name + "_backward")(f64(dy), f64(v), **kw), dtype=dtype, k=4,
                 name=f"{name} backward", shape=shape, isa=isa)


def test_known_values():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(K.leaky_relu(x), [-0.01, 0, 2])
    np.testing.assert_allclose(K.elu(x), [np.expm1(-1), 0, 2])
    np.testing.assert_allclose(K.gelu(x), [-0.15865525393145707, 0, 1.9544997361036416], rtol=1e-14)
    np.testing.assert_allclose(K.softplus(np.array([-800.0, 0.0, 800.0])), [0, np.log(2), 800])
    assert np.all(np.isfinite(K.softplus(np.array([-1e30, 1e30], np.float32))))


@pytest.mark.parametrize("act", ["leaky_relu", "elu", "gelu", "softplus"])
def test_fused_dense_matches_reference(act, isa, dtype, rng):
    x, W, b = (random_array(rng, s, dtype) for s in [(9, 13), (6, 13), (6,)])
    dy = random_array(rng, (9, 6), dtype)
    y = K.dense_forward(x, W, b, act)
    assert_close(y, ref.dense_forward(*f64(x, W, b), act), dtype=dtype, k=13, name=f"dense {act}", isa=isa)
    # GELU's backward takes the pre-activation, the others the output
    v = K.dense_forward(x, W, b, "linear") if act == "gelu" else y
    got = K.dense_backward(x, W, dy, v, act)
    want = ref.dense_backward(*f64(x, W, dy, v), act)
    for g, w, what in zip(got, want, ("dx", "dW", "db")):
        assert_close(g, w, dtype=dtype, k=13, name=f"dense {act} {what}", isa=isa)


def test_parametrized_activation_kernels_reject_bad_arguments():
    with pytest.raises(ValueError, match="unknown activation"):
        K.dense_forward(np.ones((2, 2)), np.ones((2, 2)), None, "swish")
    with pytest.raises(ValueError, match="alpha"):
        K.elu(np.ones(3), alpha=-1.0)
    with pytest.raises(TypeError, match="negative_slope"):
        K.leaky_relu(np.ones(3), negative_slope="x")
