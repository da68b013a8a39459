"""Property tests (hypothesis): every kernel against its float64 reference over random shapes
(empty ones included), memory layouts (row/column steps, transposes, reversed axes, Fortran order,
unaligned buffers), dtypes and instruction sets. tests/test_gemm.py and tests/test_dense.py hold
the contiguous GEMM/dense properties; here GEMM and dense get the non-contiguous layouts.

BLOCKPROP_PROPERTY_EXAMPLES sets the examples per property (default 150; the sanitizer run uses
fewer). Each failure names shape, dtype, ISA and the layout.
"""
from __future__ import annotations

import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import blockprop
from blockprop import reference as ref

from conftest import assert_close

EXAMPLES = int(os.environ.get("BLOCKPROP_PROPERTY_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
LAYOUTS = ("contiguous", "row-step", "col-step", "transposed", "reversed", "fortran", "unaligned")
dtypes = st.sampled_from([np.float32, np.float64])
isas = st.sampled_from(blockprop.supported_isas())
layouts = st.sampled_from(LAYOUTS)
rows, cols = st.integers(0, 37), st.integers(1, 41)
seeds = st.integers(0, 2 ** 32 - 1)


def laid_out(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``a`` in another memory layout (a view into a larger buffer)."""
    if layout == "row-step":
        big = np.zeros((2 * a.shape[0],) + a.shape[1:], a.dtype)
        big[::2] = a
        return big[::2]
    if layout == "col-step" and a.ndim == 2:
        big = np.zeros((a.shape[0], 3 * a.shape[1]), a.dtype)
        big[:, ::3] = a
        return big[:, ::3]
    if layout == "transposed" and a.ndim == 2:
        return np.ascontiguousarray(a.T).T
    if layout == "reversed":
        return np.ascontiguousarray(a[::-1])[::-1]
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "unaligned":
        buf = np.zeros(a.nbytes + a.itemsize, np.uint8)
        u = buf[1:1 + a.nbytes].view(a.dtype).reshape(a.shape)
        u[...] = a
        return u
    return np.ascontiguousarray(a)


def run_on(isa: str, fn, *args, **kwargs):
    before = blockprop.isa()
    blockprop.set_isa(isa)
    try:
        return fn(*args, **kwargs)
    finally:
        blockprop.set_isa(before)


def normal(rng, shape, dtype, scale=3.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def f64(*arrays):
    """float64 copies (never the same object: the reference updates in place)."""
    return [None if a is None else np.array(a, np.float64) for a in arrays]


# --- activations --------------------------------------------------------------------------------
@SETTINGS
@given(name=st.sampled_from(["relu", "sigmoid", "tanh"]), n=rows, m=cols, dtype=dtypes, isa=isas,
       layout=layouts, seed=seeds)
def test_activation_forward_backward(name, n, m, dtype, isa, layout, seed):
    rng = np.random.default_rng(seed)
    x = normal(rng, (n, m), dtype)
    dy = normal(rng, (n, m), dtype, 1.0)
    where = dict(shape=(n, m), isa=f"{isa} layout={layout}")
    y = run_on(isa, getattr(blockprop, name), laid_out(x, layout))
    assert y.dtype == dtype
    assert_close(y, getattr(ref, name)(*f64(x)), dtype=dtype, k=4, name=name, **where)
    dx = run_on(isa, getattr(blockprop, f"{name}_backward"), laid_out(dy, layout), laid_out(y, layout))
    assert_close(dx, getattr(ref, f"{name}_backward")(*f64(dy, y)), dtype=dtype, k=4,
                 name=f"{name}_backward", **where)


@SETTINGS
@given(n=rows, m=cols, dtype=dtypes, isa=isas, layout=layouts, seed=seeds, shift=st.sampled_from([0.0, 80.0, -300.0]))
def test_softmax_forward_backward(n, m, dtype, isa, layout, seed, shift):
    """Large shifts check the max-subtraction (no overflow) on every path."""
    rng = np.random.default_rng(seed)
    x = normal(rng, (n, m), dtype) + dtype(shift)
    where = dict(shape=(n, m), isa=f"{isa} layout={layout} shift={shift}")
    y = run_on(isa, blockprop.softmax, laid_out(x, layout))
    assert_close(y, ref.softmax(*f64(x)), dtype=dtype, k=m, name="softmax", **where)
    if n:
        assert np.allclose(y.sum(axis=1), 1.0, atol=m * np.finfo(dtype).eps * 4)
    dy = normal(rng, (n, m), dtype, 1.0)
    dx = run_on(isa, blockprop.softmax_backward, laid_out(dy, layout), laid_out(y, layout))
    assert_close(dx, ref.softmax_backward(*f64(dy, y)), dtype=dtype, k=m, name="softmax_backward", **where)


# --- losses -------------------------------------------------------------------------------------
@SETTINGS
@given(n=rows, m=cols, dtype=dtypes, isa=isas, layout=layouts, seed=seeds)
def test_losses(n, m, dtype, isa, layout, seed):
    rng = np.random.default_rng(seed)
    pred, target = normal(rng, (n, m), dtype), normal(rng, (n, m), dtype)
    labels = rng.integers(0, m, n)
    bits = (rng.random((n, m)) < 0.5).astype(dtype)
    where = dict(shape=(n, m), isa=f"{isa} layout={layout}")
    k = max(n * m, 1)
    for name, args, want in [
        ("mse_loss", (pred, target), ref.mse_loss(*f64(pred, target))),
        ("softmax_cross_entropy", (pred, labels), ref.softmax_cross_entropy(np.float64(pred), labels)),
        ("binary_cross_entropy", (pred, bits), ref.binary_cross_entropy(*f64(pred, bits))),
    ]:
        views = [laid_out(a, layout) if a.dtype.kind == "f" else a[::-1][::-1] for a in args]
        loss, grad = run_on(isa, getattr(blockprop, name), *views)
        # The loss is a sum over the batch of terms of size ~|pred|² (MSE) or ~|pred| (the others).
        assert_close(np.float64(loss), want[0], dtype=dtype, k=k, name=f"{name} loss", scale=10.0, **where)
        assert grad.dtype == dtype and grad.shape == (n, m)
        assert_close(grad, want[1], dtype=dtype, k=m, name=f"{name} grad", scale=1.0 / max(n * m, 1), **where)


# --- optimizers ---------------------------------------------------------------------------------
@SETTINGS
@given(size=st.integers(1, 300), dtype=dtypes, isa=isas, seed=seeds, steps=st.integers(1, 4),
       lr=st.floats(0.0, 0.5), momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans(),
       wd=st.sampled_from([0.0, 1e-3, 0.1]), grad_layout=st.sampled_from(["contiguous", "reversed", "row-step", "unaligned"]))
def test_sgd_steps(size, dtype, isa, seed, steps, lr, momentum, nesterov, wd, grad_layout):
    nesterov = nesterov and momentum > 0
    rng = np.random.default_rng(seed)
    p = normal(rng, size, dtype)
    v = np.zeros(size, dtype) if momentum else None
    pw, vw = f64(p, v)
    for _ in range(steps):
        g = normal(rng, size, dtype)
        run_on(isa, blockprop.sgd_step, p, laid_out(g, grad_layout), v, lr=lr, momentum=momentum,
               nesterov=nesterov, weight_decay=wd)
        ref.sgd_step(pw, np.float64(g), vw, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    assert_close(p, pw, dtype=dtype, k=4 * steps, name="sgd_step param", shape=(size,),
                 isa=f"{isa} grad={grad_layout}", scale=3.0)


@SETTINGS
@given(size=st.integers(1, 300), dtype=dtypes, isa=isas, seed=seeds, steps=st.integers(1, 4),
       lr=st.floats(0.0, 0.1), wd=st.sampled_from([0.0, 0.01]), decoupled=st.booleans(),
       grad_layout=st.sampled_from(["contiguous", "reversed", "row-step", "unaligned"]))
def test_adam_steps(size, dtype, isa, seed, steps, lr, wd, decoupled, grad_layout):
    rng = np.random.default_rng(seed)
    p = normal(rng, size, dtype)
    m, v = np.zeros(size, dtype), np.zeros(size, dtype)
    pw, mw, vw = (a.copy() for a in f64(p, m, v))
    for t in range(1, steps + 1):
        g = normal(rng, size, dtype)
        kw = dict(lr=lr, weight_decay=wd, decoupled_weight_decay=decoupled)
        run_on(isa, blockprop.adam_step, p, laid_out(g, grad_layout), m, v, t, **kw)
        ref.adam_step(pw, np.float64(g), mw, vw, t, **kw)
    where = dict(shape=(size,), isa=f"{isa} grad={grad_layout}")
    # m̂/sqrt(v̂) is O(1) per step, so the parameter moves by at most ~lr per step.
    assert_close(p, pw, dtype=dtype, k=16 * steps, name="adam_step param", scale=3.0, **where)
    assert_close(m, mw, dtype=dtype, k=4 * steps, name="adam_step m", scale=3.0, **where)
    assert_close(v, vw, dtype=dtype, k=4 * steps, name="adam_step v", scale=9.0, **where)


# --- GEMM and dense on non-contiguous operands ----------------------------------------------------
@SETTINGS
@given(m=rows, n=cols, k=st.integers(0, 70), dtype=dtypes, isa=isas, la=layouts, lb=layouts,
       trans_a=st.booleans(), trans_b=st.booleans(), seed=seeds)
def test_gemm_any_layout(m, n, k, dtype, isa, la, lb, trans_a, trans_b, seed):
    rng = np.random.default_rng(seed)
    a = normal(rng, (k, m) if trans_a else (m, k), dtype, 1.0)
    b = normal(rng, (n, k) if trans_b else (k, n), dtype, 1.0)
    got = run_on(isa, blockprop.gemm, laid_out(a, la), laid_out(b, lb), trans_a, trans_b)
    want = ref.gemm(*f64(a, b), trans_a, trans_b)
    assert_close(got, want, dtype=dtype, k=k, name="gemm", shape=(m, n, k), isa=f"{isa} a={la} b={lb}")


@SETTINGS
@given(batch=rows, fin=cols, fout=cols, dtype=dtypes, isa=isas, lx=layouts, lw=layouts,
       act=st.sampled_from(["linear", "relu", "sigmoid", "tanh"]), bias=st.booleans(), seed=seeds)
def test_dense_any_layout(batch, fin, fout, dtype, isa, lx, lw, act, bias, seed):
    rng = np.random.default_rng(seed)
    x, W = normal(rng, (batch, fin), dtype, 1.0), normal(rng, (fout, fin), dtype, 0.3)
    b = normal(rng, fout, dtype, 1.0) if bias else None
    where = dict(shape=(batch, fin, fout), isa=f"{isa} x={lx} W={lw} act={act}")
    y = run_on(isa, blockprop.dense_forward, laid_out(x, lx), laid_out(W, lw), b, act)
    assert_close(y, ref.dense_forward(*f64(x, W, b), act), dtype=dtype, k=fin, name="dense_forward",
                 scale=float(np.abs(x).max(initial=1) * np.abs(W).max(initial=1) * fin ** 0.5), **where)
    dy = normal(rng, (batch, fout), dtype, 1.0)
    dx, dW, db = run_on(isa, blockprop.dense_backward, laid_out(x, lx), laid_out(W, lw), laid_out(dy, lx),
                        y, act)
    want = ref.dense_backward(*f64(x, W, dy, y), act)
    assert_close(dx, want[0], dtype=dtype, k=fout, name="dense_backward dx", scale=3.0, **where)
    assert_close(dW, want[1], dtype=dtype, k=max(batch, 1), name="dense_backward dW", scale=3.0, **where)
    assert_close(db, want[2], dtype=dtype, k=max(batch, 1), name="dense_backward db", scale=3.0, **where)
