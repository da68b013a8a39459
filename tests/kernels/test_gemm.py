"""blockprop.gemm against the float64 reference: transposes, alpha/beta, out=, strides, aliasing,
and shapes on both sides of every blocking constant (MR, NR, KC, MC, NC of each ISA and dtype)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import blockprop
from blockprop import reference as ref

from conftest import DTYPES, ISAS, assert_close, random_array

TRANSPOSES = list(itertools.product((False, True), repeat=2))


def operands(rng, m, n, k, trans_a, trans_b, dtype):
    """a, b shaped so that op(a) is m×k and op(b) is k×n."""
    a = random_array(rng, (k, m) if trans_a else (m, k), dtype)
    b = random_array(rng, (n, k) if trans_b else (k, n), dtype)
    return a, b


def check_gemm(got, a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c0=None, *,
               dtype, isa, name="gemm"):
    """Compare got with alpha·op(a)·op(b) + beta·c0 evaluated in float64 from the same inputs."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    opa = a64.T if trans_a else a64
    opb = b64.T if trans_b else b64
    want = alpha * (opa @ opb)
    scale = abs(alpha) * (np.abs(opa) @ np.abs(opb))
    if c0 is not None and beta != 0:
        c64 = np.asarray(c0, np.float64)
        want = want + beta * c64
        scale = scale + np.abs(beta * c64)
    m, k = opa.shape
    n = opb.shape[1]
    assert_close(got, want, dtype=dtype, k=k, scale=scale, isa=isa,
                 name=f"{name}(trans_a={trans_a}, trans_b={trans_b}, alpha={alpha}, beta={beta})",
                 shape=(m, n, k))


# Each dimension on both sides of the register tile (MR 6/14, NR 4/8/16/32), of KC (256/512/1024),
# of NC (96/128/192) and of MC (960/1008), plus 1, primes and one long dimension at a time.
SHAPES = [
    (1, 1, 1), (1, 7, 1), (7, 1, 1), (1, 1, 7), (2, 3, 5), (5, 7, 11),
    (5, 3, 4), (6, 8, 16), (7, 9, 17), (13, 15, 14), (14, 16, 31), (15, 17, 33),
    (29, 31, 32), (6, 33, 191), (13, 4, 193), (7, 5, 255), (15, 9, 257), (14, 32, 383),
    (3, 17, 385), (7, 9, 511), (5, 6, 513), (9, 33, 1023), (2, 31, 1025),
    (12, 95, 20), (6, 97, 10), (8, 127, 9), (6, 129, 11), (10, 191, 9), (5, 193, 12),
    (3, 511, 8), (4, 513, 7), (959, 5, 6), (961, 9, 13), (1007, 3, 5), (1009, 17, 2),
    (3001, 7, 9), (7, 3001, 9), (5, 7, 3001),
]


@pytest.mark.parametrize("m,n,k", SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in SHAPES])
def test_shapes_all_transposes(m, n, k, isa, dtype, rng):
    """Every shape, in all four transpose combinations, matches the reference."""
    for ta, tb in TRANSPOSES:
        a, b = operands(rng, m, n, k, ta, tb, dtype)
        got = blockprop.gemm(a, b, trans_a=ta, trans_b=tb)
        assert got.dtype == dtype and got.shape == (m, n)
        check_gemm(got, a, b, ta, tb, dtype=dtype, isa=isa)


@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_large_crossing_every_block(trans_a, trans_b, isa, dtype, rng):
    """m > MC, n > NC, k > KC at once (several panels of each loop, ragged edges everywhere)."""
    m, n, k = 1009, 521, 1031
    a, b = operands(rng, m, n, k, trans_a, trans_b, dtype)
    c0 = random_array(rng, (m, n), dtype)
    out = c0.copy()
    got = blockprop.gemm(a, b, trans_a, trans_b, alpha=-0.5, beta=1.5, out=out)
    assert got is out
    check_gemm(got, a, b, trans_a, trans_b, -0.5, 1.5, c0, dtype=dtype, isa=isa)


@pytest.mark.parametrize("alpha", [1.0, -0.5, 2.5, 0.0])
@pytest.mark.parametrize("beta", [0.0, 1.0, -1.5])
def test_alpha_beta(alpha, beta, isa, dtype, rng):
    """alpha scales the product and beta the old contents of out (k > KC, so beta meets the
    first k slice only)."""
    m, n, k = 17, 19, 1100
    for ta, tb in TRANSPOSES:
        a, b = operands(rng, m, n, k, ta, tb, dtype)
        c0 = random_array(rng, (m, n), dtype)
        out = c0.copy()
        got = blockprop.gemm(a, b, ta, tb, alpha=alpha, beta=beta, out=out)
        assert got is out
        check_gemm(got, a, b, ta, tb, alpha, beta, c0, dtype=dtype, isa=isa)


def test_beta_ignored_without_out(isa, dtype, rng):
    """Without out, beta has nothing to scale: the result is alpha·a·b."""
    a, b = operands(rng, 9, 10, 11, False, False, dtype)
    got = blockprop.gemm(a, b, alpha=2.0, beta=3.0)
    check_gemm(got, a, b, alpha=2.0, dtype=dtype, isa=isa)


def test_beta_zero_overwrites_nan(isa, dtype, rng):
    """beta = 0 overwrites out, whatever it held (NaN and inf included), as BLAS does."""
    a, b = operands(rng, 20, 21, 22, False, False, dtype)
    out = np.full((20, 21), np.nan, dtype)
    out[::3] = np.inf
    blockprop.gemm(a, b, beta=0.0, out=out)
    check_gemm(out, a, b, dtype=dtype, isa=isa)


@pytest.mark.parametrize("m,n,k", [(0, 5, 7), (5, 0, 7), (5, 7, 0), (0, 0, 0), (0, 3, 0)])
def test_zero_size(m, n, k, isa, dtype, rng):
    """Empty m or n gives an empty result; k = 0 gives zeros, or beta·out with out given."""
    for ta, tb in TRANSPOSES:
        a, b = operands(rng, m, n, k, ta, tb, dtype)
        got = blockprop.gemm(a, b, ta, tb)
        assert got.shape == (m, n) and got.dtype == dtype
        np.testing.assert_array_equal(got, np.zeros((m, n)))
        c0 = random_array(rng, (m, n), dtype)
        out = c0.copy()
        got = blockprop.gemm(a, b, ta, tb, alpha=2.0, beta=-1.5, out=out)
        assert got is out
        check_gemm(got, a, b, ta, tb, 2.0, -1.5, c0, dtype=dtype, isa=isa)


def _views(rng, shape, dtype):
    """The same values as differently laid out arrays: (label, view)."""
    r, c = shape
    base = random_array(rng, (r, c), dtype)
    big = random_array(rng, (2 * r + 1, 3 * c + 2), dtype)
    yield "C", base
    yield "fortran", np.asfortranarray(base)
    yield "transposed", random_array(rng, (c, r), dtype).T
    yield "rows reversed", random_array(rng, (r, c), dtype)[::-1]
    yield "both reversed", random_array(rng, (r, c), dtype)[::-1, ::-1]
    yield "every 2nd column", random_array(rng, (r, 2 * c), dtype)[:, ::2]
    yield "strided window", big[1::2, 2::3]
    yield "broadcast row", np.broadcast_to(random_array(rng, (1, c), dtype), (r, c))
    # Byte strides that are not whole elements: a row stride of c·itemsize + 1 bytes.
    item = np.dtype(dtype).itemsize
    raw = np.zeros(r * (c * item + 1) + item, np.uint8)
    odd = np.ndarray((r, c), dtype=dtype, buffer=raw, offset=0, strides=(c * item + 1, item))
    odd[...] = random_array(rng, (r, c), dtype)
    yield "odd byte strides", odd


@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_strided_inputs(trans_a, trans_b, isa, dtype, rng):
    """Fortran-ordered, transposed, negatively strided, every-other-column, broadcast and
    odd-byte-strided inputs read the right elements."""
    m, n, k = 19, 23, 37
    shape_a = (k, m) if trans_a else (m, k)
    shape_b = (n, k) if trans_b else (k, n)
    for (la, a), (lb, b) in itertools.product(_views(rng, shape_a, dtype),
                                              _views(rng, shape_b, dtype)):
        got = blockprop.gemm(a, b, trans_a, trans_b)
        check_gemm(got, a, b, trans_a, trans_b, dtype=dtype, isa=isa,
                   name=f"gemm[a {la}, b {lb}]")


@pytest.mark.parametrize("layout", ["C", "fortran", "rows reversed", "both reversed",
                                    "strided window", "transposed"])
def test_out_strided(layout, isa, dtype, rng):
    """out with any element strides is written in place, and only its own elements."""
    m, n, k = 21, 35, 50
    big = random_array(rng, (3 * m, 3 * n), dtype)
    big_before = big.copy()
    views = {
        "C": lambda: np.zeros((m, n), dtype),
        "fortran": lambda: np.asfortranarray(random_array(rng, (m, n), dtype)),
        "rows reversed": lambda: random_array(rng, (m, n), dtype)[::-1],
        "both reversed": lambda: random_array(rng, (m, n), dtype)[::-1, ::-1],
        "strided window": lambda: big[1::3, 2::3],
        "transposed": lambda: random_array(rng, (n, m), dtype).T,
    }
    out = views[layout]()
    c0 = out.copy()
    a, b = operands(rng, m, n, k, False, False, dtype)
    got = blockprop.gemm(a, b, alpha=1.0, beta=0.5, out=out)
    assert got is out
    check_gemm(out, a, b, beta=0.5, c0=c0, dtype=dtype, isa=isa, name=f"gemm[out {layout}]")
    if layout == "strided window":
        untouched = np.ones(big.shape, bool)
        untouched[1::3, 2::3] = False
        np.testing.assert_array_equal(big[untouched], big_before[untouched])


def test_out_errors(dtype, rng):
    """out of the wrong shape, dtype or kind, read-only, a broadcast view or with odd byte strides
    is refused with an error naming out."""
    a, b = operands(rng, 4, 5, 6, False, False, dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(ValueError, match=r"\bout\b.*\(4, 5\)"):
        blockprop.gemm(a, b, out=np.zeros((5, 4), dtype))
    with pytest.raises(ValueError, match=r"\bout\b"):
        blockprop.gemm(a, b, out=np.zeros((4, 5, 1), dtype))
    with pytest.raises(ValueError, match=r"\bout\b"):
        blockprop.gemm(a, b, out=np.zeros(20, dtype))
    with pytest.raises(TypeError, match=r"\bout\b"):
        blockprop.gemm(a, b, out=np.zeros((4, 5), other))
    with pytest.raises(TypeError, match=r"\bout\b"):
        blockprop.gemm(a, b, out=np.zeros((4, 5), np.int32))
    with pytest.raises(TypeError, match=r"\bout\b"):
        blockprop.gemm(a, b, out=[[0.0] * 5] * 4)
    ro = np.zeros((4, 5), dtype)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"\bout\b"):
        blockprop.gemm(a, b, out=ro)
    with pytest.raises(ValueError, match=r"\bout\b"):
        blockprop.gemm(a, b, out=np.broadcast_to(np.zeros((1, 5), dtype), (4, 5)))
    item = np.dtype(dtype).itemsize
    raw = np.zeros(4 * (5 * item + 1), np.uint8)
    odd = np.ndarray((4, 5), dtype=dtype, buffer=raw, strides=(5 * item + 1, item))
    with pytest.raises(ValueError, match=r"\bout\b"):
        blockprop.gemm(a, b, out=odd)


def test_out_aliases_input(isa, dtype, rng):
    """out sharing memory with a or b gives the result computed from the inputs' old values."""
    n = 45  # square, so out can be a, b, a view of either, or a transposed view
    for ta, tb, beta in itertools.product((False, True), (False, True), (0.0, 1.0)):
        a0 = random_array(rng, (n, n), dtype)
        b0 = random_array(rng, (n, n), dtype)
        for target in ("a", "b", "a.T", "b[::-1]"):
            a, b = a0.copy(), b0.copy()
            out = {"a": a, "b": b, "a.T": a.T, "b[::-1]": b[::-1]}[target]
            c0 = out.copy()
            blockprop.gemm(a, b, ta, tb, beta=beta, out=out)
            check_gemm(out, a0, b0, ta, tb, 1.0, beta, c0, dtype=dtype, isa=isa,
                       name=f"gemm[out={target}]")


def test_out_partially_overlaps_input(isa, dtype, rng):
    """out shifted by one column against a within one buffer (partial overlap)."""
    m, k = 30, 30
    buf = random_array(rng, (m, k + 1), dtype)
    a = buf[:, :-1]
    out = buf[:, 1:]
    a0 = a.copy()
    b = random_array(rng, (k, k), dtype)
    blockprop.gemm(a, b, out=out)
    check_gemm(out, a0, b, dtype=dtype, isa=isa, name="gemm[out overlaps a]")


def test_accepts_lists_and_returns_new_array(isa):
    """Nested lists are converted (float64) and a fresh C-contiguous array is returned."""
    got = blockprop.gemm([[1.0, 2.0], [3.0, 4.0]], [[5.0], [6.0]])
    assert got.dtype == np.float64 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, [[17.0], [39.0]])


def test_exact_small_integers(isa, dtype):
    """Integer-valued inputs small enough to be exact give exactly the integer product."""
    rng = np.random.default_rng(7)
    for m, n, k in [(33, 65, 513), (1009, 17, 20)]:
        a = rng.integers(-4, 5, (m, k)).astype(dtype)
        b = rng.integers(-4, 5, (k, n)).astype(dtype)
        np.testing.assert_array_equal(blockprop.gemm(a, b), a.astype(np.int64) @ b.astype(np.int64))


def test_matches_reference_module(isa, dtype, rng):
    """blockprop.gemm and blockprop.reference.gemm agree, out= and beta included."""
    a, b = operands(rng, 12, 13, 14, True, False, dtype)
    c0 = random_array(rng, (12, 13), dtype)
    want = ref.gemm(a.astype(np.float64), b.astype(np.float64), True, False, 0.5, 2.0,
                    c0.astype(np.float64))
    got = blockprop.gemm(a, b, True, False, 0.5, 2.0, c0.copy())
    assert_close(got, want, dtype=dtype, k=14, scale=2.0, name="gemm vs reference", isa=isa)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 70), n=st.integers(0, 70), k=st.integers(0, 300),
       trans_a=st.booleans(), trans_b=st.booleans(),
       dtype=st.sampled_from([np.dtype(t) for t in DTYPES]), isa_name=st.sampled_from(ISAS),
       alpha=st.sampled_from([1.0, -1.0, 0.5, 3.0]), beta=st.sampled_from([0.0, 1.0, -0.25]),
       with_out=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_hypothesis(m, n, k, trans_a, trans_b, dtype, isa_name, alpha, beta, with_out, seed):
    """Random shapes, transposes, dtype, ISA, alpha and beta agree with the reference."""
    rng = np.random.default_rng(seed)
    before = blockprop.isa()
    blockprop.set_isa(isa_name)
    try:
        a, b = operands(rng, m, n, k, trans_a, trans_b, dtype)
        if with_out:
            c0 = random_array(rng, (m, n), dtype)
            got = blockprop.gemm(a, b, trans_a, trans_b, alpha, beta, out=c0.copy())
            check_gemm(got, a, b, trans_a, trans_b, alpha, beta, c0, dtype=dtype, isa=isa_name)
        else:
            got = blockprop.gemm(a, b, trans_a, trans_b, alpha, beta)
            check_gemm(got, a, b, trans_a, trans_b, alpha, dtype=dtype, isa=isa_name)
    finally:
        blockprop.set_isa(before)


STRATEGIES = {"serial", "private_chunks", "own_b_columns", "shared_b", "shared_b_k_slices"}


def gemm_plan(m, n, k, trans_a=False, trans_b=False, dtype=np.float32, threads=2, **strides):
    """The plan blockprop.gemm would run on the active ISA (blockprop._core.gemm_plan)."""
    return blockprop._core.gemm_plan(m, n, k, trans_a, trans_b, np.dtype(dtype).name, threads,
                                     **strides)


def _layout(label):
    return label[0] == "T", label[1] == "T"


# How a multithreaded GEMM is cut (the strategy of gemm_plan), and the shapes that cover each way.
# Every claim below is asserted by test_thread_shapes_take_their_branch on the ISAs it names, so
# a moved threshold fails a test instead of silently leaving a branch uncovered.
# (shape, op layouts "NN"/"NT"/"TN"/"TT", threads, ISAs (None: all), dtypes (None: both), claim)
THREAD_CLAIMS = [
    # Row strips over one shared packing of B (a dense layer's batch). When the column groups
    # would each pack A again and the strips alone balance the threads, one group: 128×128×784
    # TN/TT on 2 threads (10 one-panel strips on AVX-512); on 3 threads, groups again.
    ((128, 128, 784), "TN", 2, None, None, "shared_b, one group",
     lambda p: p["strategy"] == "shared_b" and p["groups"] == 1),
    ((128, 128, 784), "TT", 2, None, None, "shared_b, one group",
     lambda p: p["strategy"] == "shared_b" and p["groups"] == 1),
    ((128, 128, 784), "TN", 2, ("avx512",), None, "10 one-panel strips",
     lambda p: p["strips"] == 10 and p["strip_rows"] == p["mr"]),
    ((128, 128, 784), "TN", 3, ("avx512",), None, "shared_b, column groups",
     lambda p: p["strategy"] == "shared_b" and p["groups"] > 1),
    # 30×130×784 on AVX-512: column strips packing for themselves (NN), or, with A read in place
    # and B packed, their own columns of B (NT, float32 only: 130 columns are more than float64's
    # 8 panels of 16, too wide to read A in place); elsewhere B is shared.
    ((30, 130, 784), "NN", 2, ("avx512",), None, "private column strips",
     lambda p: p["strategy"] == "private_chunks" and p["split_n"]),
    ((30, 130, 784), "NT", 2, ("avx512",), (np.float32,), "own_b_columns",
     lambda p: p["strategy"] == "own_b_columns" and p["a_in_place"]),
    ((30, 130, 784), "NN", 2, ("generic", "avx2"), None, "shared_b",
     lambda p: p["strategy"] == "shared_b"),
    # Chunks that pack for themselves when the rows are too few to share B (m under two
    # micro-panels per thread).
    ((16, 2050, 2100), "NN", 2, None, None, "private_chunks",
     lambda p: p["strategy"] == "private_chunks"),
    ((16, 2050, 2100), "TT", 3, None, None, "private_chunks",
     lambda p: p["strategy"] == "private_chunks"),
    # A B too large to share whole (over 16 MiB packed): shared a k slice at a time, one column
    # block a slice ...
    ((200, 2050, 2100), "NN", 2, None, None, "shared_b_k_slices, one block",
     lambda p: p["strategy"] == "shared_b_k_slices" and p["blocks"] == 1),
    # ... or several when a slice is too large too (AVX-512: float's slices of 1024, double's
    # two of 512, are each cut in two).
    ((60, 4130, 1024), "NN", 2, ("avx512",), None, "shared_b_k_slices, two blocks",
     lambda p: p["strategy"] == "shared_b_k_slices" and p["blocks"] == 2),
    # Fewer row strips than chunks wanted: the strips cut into column groups too (47×300×200: 4
    # one-panel strips × 3 groups of 128, 128 and 44 columns on AVX-512 on 2 threads; 2 groups
    # on 3 threads elsewhere).
    ((47, 300, 200), "NN", 2, ("avx512",), (np.float32,), "4 strips × 3 groups of 128",
     lambda p: (p["strategy"], p["strips"], p["groups"], p["group_cols"]) == ("shared_b", 4, 3, 128)),
    ((47, 300, 200), "NN", 3, ("generic", "avx2"), None, "shared_b, column groups",
     lambda p: p["strategy"] == "shared_b" and p["groups"] > 1),
    # A shared B too large for L2 (over 1 MiB): strips of at least 4 panels (75×700×600: 4 + 2
    # panels on AVX-512, 4 + 4 + 4 + 1 on AVX2) ...
    ((75, 700, 600), "NN", 2, None, None, "shared_b, 4-panel strips",
     lambda p: p["strategy"] == "shared_b" and p["strip_rows"] == 4 * p["mr"]),
    # ... and when the column groups of a strip would each pack its rows of A again, A packed
    # once for all of them (75×700×600 with A transposed, on AVX-512; 60×520×1024: rows 4 KiB
    # apart, never read in place).
    ((75, 700, 600), "TN", 2, ("avx512",), None, "shared A",
     lambda p: p["strategy"] == "shared_b" and p["share_a"]),
    ((60, 520, 1024), "NN", 2, None, None, "shared A, A never in place",
     lambda p: p["strategy"] == "shared_b" and p["share_a"] and p["a_in_place_cols"] == 0),
    # A narrow C of few rows, A read in place and B packed: column strips packing their own
    # columns of B (32×24×784: narrow enough for the NR of 4 of generic float64; AVX-512's
    # float32 case is 30×130×784 above).
    ((32, 24, 784), "NT", 2, ("generic", "avx2"), None, "own_b_columns",
     lambda p: p["strategy"] == "own_b_columns"),
]
THREAD_SHAPES = sorted({claim[0] for claim in THREAD_CLAIMS})


# Each claim on each ISA (of this machine's) and dtype it is made for: no skipped cases.
CLAIM_CASES = [pytest.param(claim, isa, np.dtype(dt), id=f"{isa}-{np.dtype(dt).name}-{claim[0][0]}x"
                            f"{claim[0][1]}x{claim[0][2]}-{claim[1]}-{claim[2]}t-{claim[5]}")
               for claim in THREAD_CLAIMS for isa in ISAS for dt in DTYPES
               if (claim[3] is None or isa in claim[3]) and (claim[4] is None or dt in claim[4])]


@pytest.mark.parametrize("claim,isa_name,dtype", CLAIM_CASES)
def test_thread_shapes_take_their_branch(claim, isa_name, dtype):
    """Each shape the thread-split test relies on takes the branch its comment claims."""
    shape, layout, threads, _, _, what, holds = claim
    before = blockprop.isa()
    blockprop.set_isa(isa_name)
    try:
        plan = gemm_plan(*shape, *_layout(layout), dtype, threads)
    finally:
        blockprop.set_isa(before)
    isa = isa_name
    assert plan["isa"] == isa
    assert holds(plan), f"{shape} {layout} on {threads} threads, {isa} {dtype.name}: " \
                        f"claimed {what}, plan {plan}"


def test_every_strategy_is_covered(isa, dtype):
    """Every way gemm_plan cuts a GEMM is taken by some shape of the thread-split test (in the
    layouts and thread counts it runs), on every ISA and dtype."""
    taken = {gemm_plan(*shape, ta, tb, dtype, threads)["strategy"]
             for shape in THREAD_SHAPES for ta, tb in TRANSPOSES for threads in (1, 2, 3)}
    assert taken == STRATEGIES, f"{isa} {dtype.name}: no test shape takes {STRATEGIES - taken}"


def test_plan_is_consistent(isa, dtype):
    """The plan's sizes cover C: chunks, strips, groups and blocks tile it in whole micro-panels,
    on no more threads than asked for, one thread below the work of two."""
    for (m, n, k), (ta, tb), threads in itertools.product(THREAD_SHAPES + SHAPES, TRANSPOSES,
                                                          (1, 2, 3)):
        p = gemm_plan(m, n, k, ta, tb, dtype, threads)
        assert p["strategy"] in STRATEGIES and 1 <= p["threads"] <= threads
        assert (p["strategy"] == "serial") == (p["threads"] == 1)
        assert p["kc"] <= k and p["mc"] % p["mr"] == 0 and p["nc"] % p["nr"] == 0
        if p["strategy"] in ("private_chunks", "own_b_columns"):
            extent, unit = (n, p["nr"]) if p["split_n"] else (m, p["mr"])
            assert p["chunk_size"] % unit == 0 and p["chunks"] == -(-extent // p["chunk_size"])
        if p["strategy"].startswith("shared_b"):
            assert p["strip_rows"] % p["mr"] == 0 and p["strips"] == -(-m // p["strip_rows"])
            assert p["group_cols"] % p["nr"] == 0
        if p["strategy"] == "shared_b_k_slices":
            assert p["blocks"] == -(-n // p["block_cols"])


@pytest.mark.parametrize("m,n,k", THREAD_SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in THREAD_SHAPES])
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES, ids=lambda t: "T" if t else "N")
def test_thread_splits_match_reference_and_each_other(m, n, k, trans_a, trans_b, isa, dtype, rng):
    """1, 2 and 3 threads give bit-identical C (each element summed in one fixed order), and C
    matches the reference, on every way the GEMM is cut across threads: C = A·B, and C = alpha·A·B
    + beta·C into a given C (beta scales C once, however the k dimension is cut)."""
    a, b = operands(rng, m, n, k, trans_a, trans_b, dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    before = blockprop.get_num_threads()
    try:
        results, scaled = [], []
        for threads in (1, 2, 3):
            blockprop.set_num_threads(threads)
            results.append(blockprop.gemm(a, b, trans_a=trans_a, trans_b=trans_b))
            scaled.append(blockprop.gemm(a, b, trans_a, trans_b, 0.5, -0.75, out=c0.copy()))
    finally:
        blockprop.set_num_threads(before)
    check_gemm(results[1], a, b, trans_a, trans_b, dtype=dtype, isa=isa)
    check_gemm(scaled[1], a, b, trans_a, trans_b, 0.5, -0.75, c0, dtype=dtype, isa=isa)
    for runs in (results, scaled):
        for threads, got in zip((2, 3), runs[1:]):
            assert np.array_equal(got, runs[0]), \
                f"gemm {m}x{n}x{k} {np.dtype(dtype).name} on {isa}: {threads} threads differ " \
                f"from 1 (max |Δ| {np.abs(got - runs[0]).max():.3g})"


# The last micro-panel of m rows holds m mod MR of them (MR 14 on AVX-512, 6 otherwise) and runs
# a kernel of fewer rows (2, 4, 7 or 10) that reads the zero-padded packed panel.
@pytest.mark.parametrize("m", range(1, 30))
def test_every_partial_last_panel(m, isa, dtype, rng):
    """Every row count of a partial last micro-panel, after 0, 1 and 2 full ones, with C read
    (beta ≠ 0) and a partial last column panel: matches the reference."""
    n, k = 37, 19
    for ta, tb in TRANSPOSES:
        a, b = operands(rng, m, n, k, ta, tb, dtype)
        c0 = random_array(rng, (m, n), dtype)
        got = blockprop.gemm(a, b, ta, tb, alpha=0.75, beta=-1.25, out=c0.copy())
        check_gemm(got, a, b, ta, tb, 0.75, -1.25, c0, dtype=dtype, isa=isa)


def strided_4k_and_contiguous(rng, rows, cols, dtype):
    """The same random rows×cols matrix twice: with a row stride that is a multiple of 4 KiB
    (which the GEMM always packs) and contiguous."""
    per_4k = 4096 // np.dtype(dtype).itemsize
    wide = random_array(rng, (rows, -(-cols // per_4k) * per_4k), dtype)
    strided = wide[:, :cols]
    assert strided.strides[0] % 4096 == 0
    return strided, np.ascontiguousarray(strided)


# A row-major A is read in place when C is narrow (at most 8 NR-wide panels) and packed
# otherwise, or when its row stride is a multiple of 4 KiB (rows would share L1 sets).
IN_PLACE_SHAPES = [(47, 10, 37), (47, 100, 700), (29, 600, 300), (3, 33, 1000)]


def _stride_4k(cols, dtype):
    """The row stride strided_4k_and_contiguous gives a matrix of `cols` columns."""
    per_4k = 4096 // np.dtype(dtype).itemsize
    return -(-cols // per_4k) * per_4k


def test_in_place_shapes_take_both_branches(isa, dtype):
    """Of IN_PLACE_SHAPES (on the threads test_a_in_place_and_packed_agree runs on), some read a
    contiguous A in place, one with a partial last micro-panel; 29×600×300 (C wide) packs it on
    one thread; A with a 4 KiB row stride is packed always."""
    threads = blockprop.get_num_threads()
    in_place = []
    for (m, n, k), trans_b in itertools.product(IN_PLACE_SHAPES, (False, True)):
        contiguous = gemm_plan(m, n, k, False, trans_b, dtype, threads)
        strided = gemm_plan(m, n, k, False, trans_b, dtype, threads, lda=_stride_4k(k, dtype))
        assert not strided["a_in_place"] and strided["a_in_place_cols"] == 0, (m, n, k, strided)
        if contiguous["a_in_place"]:
            in_place.append((m, contiguous["mr"]))
        if (m, n, k) == (29, 600, 300):  # whole, on one thread; 2 threads' strips are narrow
            serial = gemm_plan(m, n, k, False, trans_b, dtype, 1)
            assert not serial["a_in_place"], serial
    assert in_place, f"{isa} {dtype.name}: no shape reads A in place"
    assert any(m % mr for m, mr in in_place), f"{isa} {dtype.name}: no partial panel in place"


@pytest.mark.parametrize("m,n,k", IN_PLACE_SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in IN_PLACE_SHAPES])
@pytest.mark.parametrize("trans_b", (False, True), ids=("N", "T"))
def test_a_in_place_and_packed_agree(m, n, k, trans_b, isa, dtype, rng):
    """The same A with a 4 KiB row stride (packed) and contiguous (read in place when C is
    narrow) gives bit-identical C, matching the reference; a partial last micro-panel included."""
    a_strided, a_contig = strided_4k_and_contiguous(rng, m, k, dtype)
    _, b = operands(rng, m, n, k, False, trans_b, dtype)
    got_strided = blockprop.gemm(a_strided, b, trans_b=trans_b)
    got_contig = blockprop.gemm(a_contig, b, trans_b=trans_b)
    check_gemm(got_contig, a_contig, b, False, trans_b, dtype=dtype, isa=isa)
    assert np.array_equal(got_strided, got_contig), (
        f"gemm {m}x{n}x{k} trans_b={trans_b} {np.dtype(dtype).name} on {isa}: A in place and "
        f"packed differ (max |Δ| {np.abs(got_strided - got_contig).max():.3g})")


# On AVX-512 a row-major B is read in place when A has at most 40 micro-panels and a k slice of
# B spans at most 784 KiB, unless its row stride is a multiple of 4 KiB; otherwise it is packed.
# Shapes: the dW of a 784-wide layer, several k slices (k > KC), 40 and 41 micro-panels of A, a
# partial last panel of B, a slice just within the byte limit for float32.
B_IN_PLACE_SHAPES = [(128, 784, 128), (47, 100, 2101), (560, 33, 50), (561, 65, 20),
                     (29, 600, 300), (5, 40, 3)]
# Whether AVX-512 reads each contiguous B in place, (float32, float64): 41 panels of A are too
# many; 29×600×300's slice is 703 KiB in float32, 1.4 MiB in float64.
B_IN_PLACE_ON_AVX512 = {(128, 784, 128): (True, True), (47, 100, 2101): (True, True),
                        (560, 33, 50): (True, True), (561, 65, 20): (False, False),
                        (29, 600, 300): (True, False), (5, 40, 3): (True, True)}


@pytest.mark.parametrize("m,n,k", B_IN_PLACE_SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in B_IN_PLACE_SHAPES])
def test_b_in_place_shapes_take_their_branch(m, n, k, isa, dtype):
    """Each B_IN_PLACE_SHAPES shape reads a contiguous B in place or packs it as claimed above (on
    AVX-512; other ISAs pack every B), and packs a B with a 4 KiB row stride."""
    want = B_IN_PLACE_ON_AVX512[(m, n, k)][dtype == np.float64] and isa == "avx512"
    for trans_a, threads in itertools.product((False, True), (1, 2)):
        plan = gemm_plan(m, n, k, trans_a, False, dtype, threads)
        assert plan["b_in_place"] == want, (m, n, k, trans_a, threads, plan)
        strided = gemm_plan(m, n, k, trans_a, False, dtype, threads, ldb=_stride_4k(n, dtype))
        assert not strided["b_in_place"], strided


@pytest.mark.parametrize("m,n,k", B_IN_PLACE_SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in B_IN_PLACE_SHAPES])
@pytest.mark.parametrize("trans_a", (False, True), ids=("N", "T"))
@pytest.mark.parametrize("threads", (1, 2))
def test_b_in_place_and_packed_agree(m, n, k, trans_a, threads, isa, dtype, rng):
    """The same B with a 4 KiB row stride (packed) and contiguous (read in place when A is
    short) gives bit-identical C, matching the reference, on 1 and 2 threads; B with its rows
    reversed (a negative stride, read in place too) matches the reference."""
    b_strided, b_contig = strided_4k_and_contiguous(rng, k, n, dtype)
    a, _ = operands(rng, m, n, k, trans_a, False, dtype)
    before = blockprop.get_num_threads()
    try:
        blockprop.set_num_threads(threads)
        got_strided = blockprop.gemm(a, b_strided, trans_a=trans_a)
        got_contig = blockprop.gemm(a, b_contig, trans_a=trans_a)
        b_reversed = b_contig[::-1]
        got_reversed = blockprop.gemm(a, b_reversed, trans_a=trans_a)
    finally:
        blockprop.set_num_threads(before)
    check_gemm(got_contig, a, b_contig, trans_a, False, dtype=dtype, isa=isa)
    check_gemm(got_reversed, a, b_reversed, trans_a, False, dtype=dtype, isa=isa,
               name="gemm[b rows reversed]")
    assert np.array_equal(got_strided, got_contig), (
        f"gemm {m}x{n}x{k} trans_a={trans_a} {np.dtype(dtype).name} on {isa}, {threads} threads: "
        f"B in place and packed differ (max |Δ| {np.abs(got_strided - got_contig).max():.3g})")
