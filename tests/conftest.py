"""Shared fixtures and the tolerance helper for the kernel tests.

Run against a built package (``eval "$(tools/devbuild NAME)"``), from outside the source tree so
that ``import blockprop`` finds the package with the compiled ``_core``.

Tolerances: the reference is evaluated in float64 from the very inputs the kernel saw, so the only
error left is the kernel's own rounding. A sum of ``k`` products rounded at each step drifts like
``eps·sqrt(k)`` for random data (``eps·k`` is the worst case), relative to the size of the terms.
``assert_close`` therefore allows ``C·eps·sqrt(k)·(|want| + scale)``, with ``eps`` the machine
epsilon of the kernel's dtype and ``scale`` the magnitude of the summed terms (``|a|·|b|`` for a
product; 1 by default). A wrong kernel is off by O(1) of that scale, far outside the band.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import blockprop

DTYPES = (np.float32, np.float64)
ISAS = tuple(blockprop.supported_isas())

# The activations with parameters, (name, kwargs) as the kernels and the reference take them; their
# backward takes the output y, except GELU's (in THROUGH_INPUT), which takes the input x.
PARAM_ACTIVATIONS = [("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {}),
                     ("elu", {"alpha": 0.5}), ("gelu", {}), ("softplus", {})]
THROUGH_INPUT = {"gelu"}

# Multiples of eps·sqrt(k) allowed; loose enough for any summation order, far below a real bug.
TOL_FACTOR = {np.dtype(np.float32): 16.0, np.dtype(np.float64): 16.0}


@pytest.fixture(params=ISAS)
def isa(request):
    """Each instruction set this build runs on here; the previous one is restored afterwards."""
    before = blockprop.isa()
    blockprop.set_isa(request.param)
    assert blockprop.isa() == request.param
    yield request.param
    blockprop.set_isa(before)


@pytest.fixture(params=DTYPES, ids=lambda t: np.dtype(t).name)
def dtype(request):
    """float32 (the fast path) and float64."""
    return np.dtype(request.param)


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: reproducible, different per test."""
    seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)


def tolerance(dtype, k: int) -> float:
    """The relative tolerance ``C·eps·sqrt(k)`` for a reduction of length k in ``dtype``."""
    dtype = np.dtype(dtype)
    return TOL_FACTOR[dtype] * float(np.finfo(dtype).eps) * math.sqrt(max(int(k), 1))


def assert_close(got, want, *, dtype, k, name, shape=None, isa=None, scale=1.0):
    """Assert ``|got − want| ≤ tol·(|want| + scale)`` elementwise, ``tol = tolerance(dtype, k)``.

    ``want`` should be float64 computed from the same inputs. NaN must match NaN and ±inf the same
    infinity. On failure the message gives name, shape, dtype, isa, tolerance and the largest
    absolute and relative errors with where they occur.
    """
    dtype = np.dtype(dtype)
    got = np.asarray(got)
    want = np.asarray(want, dtype=np.float64)
    where = f"{name}: shape={shape if shape is not None else want.shape}, dtype={dtype.name}, isa={isa}"
    assert got.shape == want.shape, f"{where}: result shape {got.shape} != expected {want.shape}"
    g = got.astype(np.float64)
    nan_g, nan_w = np.isnan(g), np.isnan(want)
    assert np.array_equal(nan_g, nan_w), (
        f"{where}: NaN at {np.argwhere(nan_g != nan_w)[:5].tolist()} "
        f"(got NaN: {int(nan_g.sum())}, expected NaN: {int(nan_w.sum())})")
    inf_w = np.isinf(want)
    assert np.array_equal(np.isinf(g), inf_w) and np.array_equal(g[inf_w], want[inf_w]), (
        f"{where}: infinities differ")
    if want.size == 0:
        return
    finite = ~(nan_w | inf_w)
    tol = tolerance(dtype, k)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), want.shape)
    err = np.where(finite, np.abs(g - want), 0.0)
    allowed = tol * (np.abs(want) + scale)
    bad = err > allowed
    if bad.any():
        rel = err / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
        worst = np.unravel_index(int(np.argmax(err - allowed)), want.shape)
        raise AssertionError(
            f"{where}, k={k}: {int(bad.sum())} of {want.size} elements out of tolerance "
            f"(rtol=atol/scale={tol:.3g}); max abs err {err.max():.4g}, max rel err "
            f"{rel[finite].max():.4g}; worst at {tuple(int(i) for i in worst)}: "
            f"got {g[worst]!r}, want {want[worst]!r}")


def random_array(rng, shape, dtype, low=-1.0, high=1.0):
    """Uniform values in [low, high) of the given dtype."""
    return rng.uniform(low, high, size=shape).astype(dtype)


def f64(*arrays):
    """The arrays as float64 (the reference's working precision); None stays None."""
    out = tuple(None if a is None else np.asarray(a, dtype=np.float64) for a in arrays)
    return out[0] if len(out) == 1 else out
