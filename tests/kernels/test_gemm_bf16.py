"""gemm(precision="bfloat16") against the bfloat16 reference on every bf16 path this machine has
(and the portable one always): all transposes, alpha/beta/out, odd and prime shapes on both sides
of each path's tile (MR 6/14/32, NR 8/16/32), of its k step (pairs for AVX512-BF16, 32 for AMX),
of KC and MC, column blocks, the rounding itself (ties to even), NaN/inf, and bad arguments.

Tolerance: the reference rounds the operands to bfloat16 exactly as the kernels must, then sums
the products in float64. A product of two bfloat16 values (8-bit significands) is exact in float32,
so the only error left to a correct kernel is the float32 accumulation: the float32 band of
conftest.assert_close (16·eps32·sqrt(k) of the summed magnitude |bf16(A)|·|bf16(B)|). An operand
not rounded to bfloat16 would be off by up to 2⁻⁹ of that magnitude, ~30× that band at k = 1 and
still outside it for every k tested here (test_rounding_is_applied checks that it is caught)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import blockprop
from blockprop import reference as ref

from bf16_paths import BF16_PATHS, PATH_IDS, running_on
from conftest import assert_close, random_array

TRANSPOSES = list(itertools.product((False, True), repeat=2))

SHAPES = [
    (1, 1, 1), (1, 1, 2), (1, 1, 3), (2, 3, 5), (7, 1, 1), (1, 7, 1), (5, 7, 11), (13, 17, 31),
    (14, 32, 32), (15, 33, 33), (16, 16, 16), (31, 31, 63), (32, 32, 64), (33, 34, 65),
    (6, 97, 129), (29, 127, 257), (3, 7, 1023), (11, 5, 2047), (4, 9, 2049), (2, 3, 4099),
    (100, 10, 784), (256, 128, 784), (129, 257, 100), (1009, 3, 17), (5, 1031, 13),
    (1100, 40, 70),  # more rows than one thread's strip holds (MC 960–1024)
    (5, 4200, 2100),  # a k slice of B over 16 MiB: C in column blocks
]
SHAPE_IDS = [f"{m}x{n}x{k}" for m, n, k in SHAPES]


@pytest.fixture(params=BF16_PATHS, ids=PATH_IDS)
def path(request):
    with running_on(*request.param) as label:
        yield label


def check(got, a, b, trans_a, trans_b, alpha=1.0, beta=0.0, c0=None, *, label, name="gemm"):
    """got against alpha·bf16(op(a))·bf16(op(b)) + beta·c0, summed in float64."""
    A = ref.round_bfloat16(a.T if trans_a else a).astype(np.float64)
    B = ref.round_bfloat16(b.T if trans_b else b).astype(np.float64)
    want = alpha * (A @ B)
    scale = abs(alpha) * (np.abs(A) @ np.abs(B))
    if c0 is not None and beta != 0:
        want = want + beta * c0.astype(np.float64)
        scale = scale + np.abs(beta * c0.astype(np.float64))
    assert_close(got, want, dtype=np.float32, k=A.shape[1], scale=scale, isa=label,
                 name=f"{name}(bfloat16, trans_a={trans_a}, trans_b={trans_b}, alpha={alpha}, "
                      f"beta={beta})", shape=(A.shape[0], B.shape[1], A.shape[1]))


@pytest.mark.parametrize("m,n,k", SHAPES, ids=SHAPE_IDS)
def test_shapes_all_transposes(m, n, k, path, rng):
    for trans_a, trans_b in TRANSPOSES:
        a = random_array(rng, (k, m) if trans_a else (m, k), np.float32)
        b = random_array(rng, (n, k) if trans_b else (k, n), np.float32)
        got = blockprop.gemm(a, b, trans_a, trans_b, precision="bfloat16")
        assert got.dtype == np.float32
        check(got, a, b, trans_a, trans_b, label=path)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (15, 33, 67), (64, 64, 64), (37, 70, 300)])
def test_alpha_beta_out_strides(m, n, k, path, rng):
    for trans_a, trans_b in TRANSPOSES:
        a = random_array(rng, (k, m) if trans_a else (m, k), np.float32)
        b = random_array(rng, (n, k) if trans_b else (k, n), np.float32)
        big = random_array(rng, (2 * m + 1, 3 * n + 2), np.float32)
        out = big[1::2, :3 * n:3]  # strided output view
        c0 = out.copy()
        got = blockprop.gemm(a, b, trans_a, trans_b, alpha=-1.5, beta=0.5, out=out,
                             precision="bfloat16")
        assert got is out
        check(out, a, b, trans_a, trans_b, -1.5, 0.5, c0, label=path)
        # strided operands (every other column) are read as they are
        a2 = np.repeat(a, 2, axis=1)[:, ::2]
        check(blockprop.gemm(a2, b, trans_a, trans_b, precision="bfloat16"), a2, b, trans_a,
              trans_b, label=path, name="gemm[strided a]")


def test_rounding_is_applied(path):
    """Ties to even and the dropped bits, exactly: 1 + 2⁻⁸ is half way between 1 and the next
    bfloat16 (1 + 2⁻⁷) and rounds to 1; 1 + 3·2⁻⁸ rounds up to 1 + 2⁻⁶; 1 + 2⁻⁹ rounds to 1."""
    for k in (1, 2, 3, 33, 64):
        a = np.full((3, k), 1 + 2.0**-8, np.float32)
        a[1] = 1 + 3 * 2.0**-8
        a[2] = 1 + 2.0**-9
        b = np.ones((k, 5), np.float32)
        got = blockprop.gemm(a, b, precision="bfloat16")
        want = np.array([[k * 1.0] * 5, [k * (1 + 2.0**-6)] * 5, [k * 1.0] * 5], np.float32)
        assert np.array_equal(got, want), f"{path}, k={k}: got {got[:, 0]}, want {want[:, 0]}"
        assert np.array_equal(ref.gemm(a, b, precision="bfloat16"), want)
        # the float32 GEMM keeps those bits: the test could not pass if bf16 did not round
        assert not np.array_equal(blockprop.gemm(a, b), want)


def test_nan_inf_propagate(path):
    a = np.ones((20, 40), np.float32)
    b = np.ones((40, 35), np.float32)
    a[3, 7] = np.nan
    a[5, 1] = np.inf
    got = blockprop.gemm(a, b, precision="bfloat16")
    assert np.isnan(got[3]).all() and np.isposinf(got[5]).all()
    others = np.delete(got, [3, 5], axis=0)
    assert np.array_equal(others, np.full_like(others, 40.0)), path


def test_thread_count_does_not_change_bits(path, rng):
    a = random_array(rng, (300, 500), np.float32)
    b = random_array(rng, (500, 260), np.float32)
    before = blockprop.get_num_threads()
    try:
        results = []
        for nt in (1, 2, 3):
            blockprop.set_num_threads(nt)
            results.append(blockprop.gemm(a, b, precision="bfloat16"))
    finally:
        blockprop.set_num_threads(before)
    for r in results[1:]:
        assert np.array_equal(r, results[0]), path


def test_k_zero_and_empty(path):
    out = np.full((3, 4), 7.0, np.float32)
    blockprop.gemm(np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32), beta=0.5, out=out,
                   precision="bfloat16")
    assert np.array_equal(out, np.full((3, 4), 3.5, np.float32))
    assert blockprop.gemm(np.zeros((0, 5), np.float32), np.zeros((5, 2), np.float32),
                          precision="bfloat16").shape == (0, 2)


def test_float32_default_unchanged(rng):
    """precision="float32" is the float32 GEMM itself, bit for bit."""
    a = random_array(rng, (70, 90), np.float32)
    b = random_array(rng, (90, 33), np.float32)
    assert np.array_equal(blockprop.gemm(a, b), blockprop.gemm(a, b, precision="float32"))


def test_bad_precision():
    a = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'bfloat16', got 'bf16'"):
        blockprop.gemm(a, a, precision="bf16")
    with pytest.raises(TypeError, match="precision must be a str"):
        blockprop.gemm(a, a, precision=None)
    with pytest.raises(TypeError, match="precision='bfloat16' takes float32 arrays.*float64"):
        blockprop.gemm(a.astype(np.float64), a.astype(np.float64), precision="bfloat16")
    with pytest.raises(TypeError, match="precision='bfloat16' takes float32 arrays.*float64"):
        ref.gemm(a.astype(np.float64), a.astype(np.float64), precision="bfloat16")
    with pytest.raises(ValueError, match="precision must be one of"):
        ref.gemm(a, a, precision="float16")


def test_reference_rounding_matches_definition(rng):
    """round_bfloat16 against the definition: the nearest of the two bfloat16 neighbours, the even
    one on a tie; NaN stays NaN, inf stays inf, overflow past the largest bfloat16 gives inf."""
    x = np.concatenate([rng.standard_normal(2000).astype(np.float32) * 10.0**rng.integers(-30, 30, 2000),
                        np.float32([0.0, -0.0, 1 + 2**-8, 1 + 3 * 2**-8, 3.3895314e38, 3.4e38,
                                    np.inf, -np.inf])]).astype(np.float32)
    r = ref.round_bfloat16(x)
    u = x.view(np.uint32)
    lo = (u & 0xFFFF0000).view(np.float32)
    hi = ((u & 0xFFFF0000) + 0x10000).astype(np.uint32).view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        d_lo = np.abs(x.astype(np.float64) - lo)
        # past the largest bfloat16 the upper neighbour is 2¹²⁸ (IEEE rounding), stored as inf
        d_hi = np.abs(np.where(np.isinf(hi), 2.0**128, hi.astype(np.float64)) - x)
    exact = (u & 0xFFFF) == 0
    tie = (u & 0xFFFF) == 0x8000
    even_lo = ((u >> 16) & 1) == 0
    want = np.where(exact, x, np.where(tie, np.where(even_lo, lo, hi), np.where(d_lo < d_hi, lo, hi)))
    fin = np.isfinite(x)
    assert np.array_equal(r[fin], want[fin])
    assert np.isposinf(r[-2]) and np.isneginf(r[-1]) and np.isposinf(r[-3])
    assert np.isnan(ref.round_bfloat16(np.float32([np.nan]))).all()
    assert (r.view(np.uint32) & 0xFFFF == 0).all()
