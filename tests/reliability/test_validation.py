"""Bad input at the boundary of every kernel: wrong ndim, mismatched shapes, non-float dtypes,
mixed float32/float64 and None each raise TypeError/ValueError naming the argument; empty batches
give correctly shaped results."""
from __future__ import annotations

import numpy as np
import pytest

import blockprop

F = np.float32


def arr(*shape, dtype=F):
    return np.ones(shape, dtype)


# kernel name → (callable taking the array arguments in order, names, good arguments)
KERNELS = {
    "gemm": (lambda a, b: blockprop.gemm(a, b), ("a", "b"), (arr(3, 4), arr(4, 5))),
    "dense_forward": (lambda x, W, b: blockprop.dense_forward(x, W, b, "relu"), ("x", "W", "b"),
                      (arr(2, 4), arr(3, 4), arr(3))),
    "dense_backward": (lambda x, W, dy, y: blockprop.dense_backward(x, W, dy, y, "tanh"),
                       ("x", "W", "dy", "y"), (arr(2, 4), arr(3, 4), arr(2, 3), arr(2, 3))),
    "relu": (blockprop.relu, ("x",), (arr(2, 3),)),
    "sigmoid": (blockprop.sigmoid, ("x",), (arr(2, 3),)),
    "tanh": (blockprop.tanh, ("x",), (arr(2, 3),)),
    "relu_backward": (blockprop.relu_backward, ("dy", "y"), (arr(2, 3), arr(2, 3))),
    "sigmoid_backward": (blockprop.sigmoid_backward, ("dy", "y"), (arr(2, 3), arr(2, 3))),
    "tanh_backward": (blockprop.tanh_backward, ("dy", "y"), (arr(2, 3), arr(2, 3))),
    "softmax": (blockprop.softmax, ("x",), (arr(2, 3),)),
    "softmax_backward": (blockprop.softmax_backward, ("dy", "y"), (arr(2, 3), arr(2, 3))),
    "mse_loss": (blockprop.mse_loss, ("pred", "target"), (arr(2, 3), arr(2, 3))),
    "binary_cross_entropy": (blockprop.binary_cross_entropy, ("logits", "targets"),
                             (arr(2, 3), arr(2, 3))),
    "softmax_cross_entropy": (blockprop.softmax_cross_entropy, ("logits",), (arr(2, 3),),
                              ),
    "sgd_step": (lambda p, g, v: blockprop.sgd_step(p, g, v, lr=0.1, momentum=0.9),
                 ("param", "grad", "velocity"), (arr(2, 3), arr(2, 3), arr(2, 3))),
    "adam_step": (lambda p, g, m, v: blockprop.adam_step(p, g, m, v, 1),
                  ("param", "grad", "m", "v"), (arr(2, 3), arr(2, 3), arr(2, 3), arr(2, 3))),
}
# softmax_cross_entropy's labels are not a float array: appended separately.
_SCE_LABELS = np.array([0, 2])


def call(kernel, args):
    fn, _, _ = KERNELS[kernel]
    if kernel == "softmax_cross_entropy":
        return fn(*args, _SCE_LABELS)
    return fn(*args)


def fresh_good(kernel):
    return [a.copy() for a in KERNELS[kernel][2]]


CASES = [(k, i) for k, (_, names, _) in KERNELS.items() for i in range(len(names))]
CASE_IDS = [f"{k}-{KERNELS[k][1][i]}" for k, i in CASES]

BAD_DTYPES = [np.int32, np.int64, np.bool_, np.complex128, np.float16, object, "U3"]


def pattern(name):
    """The argument's name as a whole word."""
    return rf"(?<![\w]){name}(?![\w])"


@pytest.mark.parametrize("bad_dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kernel,i", CASES, ids=CASE_IDS)
def test_non_float_dtype(kernel, i, bad_dtype):
    """An int/bool/complex/float16/object/string array is a TypeError naming the argument."""
    args = fresh_good(kernel)
    args[i] = args[i].astype(bad_dtype)
    with pytest.raises(TypeError, match=pattern(KERNELS[kernel][1][i])):
        call(kernel, args)


# b=None means "no bias" (tested in test_dense), so it is not a bad input.
NONE_CASES = [(c, cid) for c, cid in zip(CASES, CASE_IDS) if c != ("dense_forward", 2)]


@pytest.mark.parametrize("kernel,i", [c for c, _ in NONE_CASES], ids=[cid for _, cid in NONE_CASES])
def test_none(kernel, i):
    """None in place of an array is a TypeError (or, where None has a meaning, a ValueError)
    naming the argument."""
    args = fresh_good(kernel)
    args[i] = None
    name = KERNELS[kernel][1][i]
    # None is meaningful for dense_backward's y (linear only) and sgd's velocity (no momentum):
    # then "required" is a ValueError.
    exc = ValueError if (kernel, name) in {("dense_backward", "y"), ("sgd_step", "velocity")} \
        else TypeError
    with pytest.raises(exc, match=pattern(name)):
        call(kernel, args)


@pytest.mark.parametrize("kernel,i", [c for c in CASES if c[1] > 0 or c[0] in
                                      ("dense_forward", "dense_backward")],
                         ids=[cid for c, cid in zip(CASES, CASE_IDS) if c[1] > 0 or c[0] in
                              ("dense_forward", "dense_backward")])
def test_mixed_precision(kernel, i):
    """One argument float64 among float32 ones is a TypeError naming it (no silent cast)."""
    args = fresh_good(kernel)
    args[i] = args[i].astype(np.float64)
    with pytest.raises(TypeError, match=pattern(KERNELS[kernel][1][i])):
        call(kernel, args)
    if len(args) > 1:  # and the other way round: all float64 but one float32
        args = [a.astype(np.float64) for a in fresh_good(kernel)]
        args[i] = args[i].astype(np.float32)
        with pytest.raises(TypeError, match=pattern(KERNELS[kernel][1][i])):
            call(kernel, args)


# Arguments whose ndim is fixed by the API (the rest are any-shape, matched to a partner).
FIXED_NDIM = {("gemm", 0): 2, ("gemm", 1): 2, ("dense_forward", 0): 2, ("dense_forward", 1): 2,
              ("dense_forward", 2): 1, ("dense_backward", 0): 2, ("dense_backward", 1): 2,
              ("dense_backward", 2): 2, ("dense_backward", 3): 2,
              ("softmax_cross_entropy", 0): 2}


@pytest.mark.parametrize("kernel,i", list(FIXED_NDIM),
                         ids=[f"{k}-{KERNELS[k][1][i]}" for k, i in FIXED_NDIM])
def test_wrong_ndim(kernel, i):
    """One dimension too many or too few is a ValueError naming the argument."""
    name = KERNELS[kernel][1][i]
    good = KERNELS[kernel][2][i]
    for bad in (good.reshape(good.shape + (1,)), good.reshape(-1)[:1].reshape(()) if good.ndim == 1
                else good.reshape(-1)):
        args = fresh_good(kernel)
        args[i] = bad.copy()
        with pytest.raises(ValueError, match=pattern(name)):
            call(kernel, args)


# Arguments whose shape must match another's: each gets a transposed / shortened shape.
PARTNERED = [c for c in CASES if c[1] > 0]


@pytest.mark.parametrize("kernel,i", PARTNERED, ids=[f"{k}-{KERNELS[k][1][i]}" for k, i in PARTNERED])
def test_mismatched_shape(kernel, i):
    """An argument whose shape does not fit the others is a ValueError naming it."""
    name = KERNELS[kernel][1][i]
    good = KERNELS[kernel][2][i]
    bad = np.ones(tuple(s + 1 for s in good.shape), F)
    args = fresh_good(kernel)
    args[i] = bad
    with pytest.raises(ValueError, match=pattern(name)):
        call(kernel, args)


def test_gemm_inner_dimension_message():
    """gemm's inner-dimension mismatch names a and b and the transposes."""
    with pytest.raises(ValueError, match=r"\ba\b.*\bb\b"):
        blockprop.gemm(arr(3, 4), arr(5, 6))
    with pytest.raises(ValueError, match=r"trans_a=True"):
        blockprop.gemm(arr(3, 4), arr(3, 6).T, trans_a=True, trans_b=False)


def test_dense_x_W_mismatch():
    """x's features must equal W's in_features: ValueError naming both."""
    with pytest.raises(ValueError, match=r"\bx\b.*\bW\b"):
        blockprop.dense_forward(arr(2, 4), arr(4, 3))
    with pytest.raises(ValueError, match=r"\bx\b.*\bW\b"):
        blockprop.dense_backward(arr(2, 4), arr(4, 3), arr(2, 4))


@pytest.mark.parametrize("bad,exc", [("softmax", ValueError), ("RELU ", ValueError),
                                     ("", ValueError), (3, TypeError), (b"relu", TypeError)])
def test_bad_activation(bad, exc):
    """An unknown activation name is a ValueError, a non-string a TypeError; both name it."""
    with pytest.raises(exc, match="activation"):
        blockprop.dense_forward(arr(2, 4), arr(3, 4), None, bad)
    with pytest.raises(exc, match="activation"):
        blockprop.dense_backward(arr(2, 4), arr(3, 4), arr(2, 3), arr(2, 3), bad)


def test_non_array_objects():
    """Strings and arbitrary objects are TypeErrors naming the argument; float lists are accepted."""
    with pytest.raises(TypeError, match=pattern("a")):
        blockprop.gemm("abc", arr(3, 4))
    with pytest.raises(TypeError, match=pattern("x")):
        blockprop.relu(object())
    with pytest.raises(TypeError, match=pattern("x")):
        blockprop.softmax({"a": 1})
    np.testing.assert_array_equal(blockprop.relu([[-1.0, 2.0]]), [[0.0, 2.0]])


def test_no_partial_writes_on_error():
    """A refused gemm leaves out untouched."""
    out = np.full((3, 5), 7.0, F)
    with pytest.raises(TypeError):
        blockprop.gemm(arr(3, 4), arr(4, 5, dtype=np.float64), out=out)
    np.testing.assert_array_equal(out, 7.0)


# ---- empty batches ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batch_shapes(dtype):
    """Batch 0 through every kernel gives results of the right shape and dtype."""
    e = lambda *s: np.zeros(s, dtype)  # noqa: E731
    assert blockprop.gemm(e(0, 4), e(4, 5)).shape == (0, 5)
    assert blockprop.gemm(e(4, 0), e(4, 5), trans_a=True).shape == (0, 5)
    y = blockprop.dense_forward(e(0, 4), e(3, 4), e(3), "relu")
    assert y.shape == (0, 3) and y.dtype == dtype
    dx, dW, db = blockprop.dense_backward(e(0, 4), e(3, 4), e(0, 3), e(0, 3), "relu")
    assert (dx.shape, dW.shape, db.shape) == ((0, 4), (3, 4), (3,))
    assert dx.dtype == dW.dtype == db.dtype == dtype
    for f in (blockprop.relu, blockprop.sigmoid, blockprop.tanh, blockprop.softmax):
        assert f(e(0, 3)).shape == (0, 3) and f(e(0, 3)).dtype == dtype
    for f in (blockprop.relu_backward, blockprop.sigmoid_backward, blockprop.tanh_backward,
              blockprop.softmax_backward):
        assert f(e(0, 3), e(0, 3)).shape == (0, 3)
    L, g = blockprop.softmax_cross_entropy(e(0, 3), np.zeros(0, np.int64))
    assert L == 0.0 and g.shape == (0, 3) and g.dtype == dtype
    L, g = blockprop.binary_cross_entropy(e(0, 3), e(0, 3))
    assert L == 0.0 and g.shape == (0, 3)
    p = e(0, 3)
    blockprop.sgd_step(p, e(0, 3), e(0, 3), lr=0.1, momentum=0.9)
    blockprop.adam_step(p, e(0, 3), e(0, 3), e(0, 3), 1)
    assert p.shape == (0, 3)


@pytest.mark.parametrize("kind", [np.float32, np.float64, np.int64, np.int16])
@pytest.mark.parametrize("name", ["leaky_relu", "elu", "leaky_relu_backward", "elu_backward"])
def test_numpy_scalars_are_numbers(name, kind):
    """leaky_relu(x, np.float32(0.5)) raised TypeError: a NumPy scalar is taken wherever the
    Python number is (issue 20); NumPy's bool, complex and arrays are still refused."""
    x = np.linspace(-2, 2, 12, dtype=F).reshape(3, 4)
    fn = getattr(blockprop.kernels, name)
    args = (x, x) if name.endswith("backward") else (x,)
    assert np.array_equal(fn(*args, kind(1)), fn(*args, 1.0))
    for bad in (np.bool_(True), np.complex64(1), np.array([0.5])):
        with pytest.raises(TypeError, match="must be a number"):
            fn(*args, bad)


def test_a_conversion_that_cannot_be_allocated_is_a_memory_error():
    """softmax_cross_entropy on consistent zero-stride views of 2**40 rows: the labels' int64 copy
    cannot be allocated; pybind11's ensure() returned a null array that was read (SIGSEGV)."""
    logits = np.broadcast_to(np.float32(0), (2 ** 40, 2))
    labels = np.broadcast_to(np.int64(0), (2 ** 40,))
    for call in (lambda: blockprop.softmax_cross_entropy(logits, labels),
                 lambda: blockprop.kernels.count_correct(logits, labels)):
        with pytest.raises(MemoryError):
            call()


class _LyingCopy(np.ndarray):
    """copy()/astype() hand back an array of another dtype and shape."""

    def copy(self, *args, **kwargs):
        return np.zeros((1, 1), np.float16)

    def astype(self, *args, **kwargs):
        return np.zeros(1, np.int8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subclasses_are_read_as_their_memory_not_their_methods(dtype):
    """gemm with an ndarray subclass overlapping out: the binding copied it with the subclass's
    copy() and read that (heap corruption, abort). The result must be that of the plain arrays."""
    rng = np.random.default_rng(0)
    c = rng.standard_normal((64, 64)).astype(dtype)
    a, b = c.copy(), rng.standard_normal((64, 64)).astype(dtype)
    want = 0.5 * a @ b + 0.25 * c
    blockprop.gemm(c.view(_LyingCopy), b, alpha=0.5, beta=0.25, out=c)  # a is out, seen through a subclass
    np.testing.assert_allclose(c, want, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4)
    labels = np.array([0, 1, 1]).view(_LyingCopy)
    loss, _ = blockprop.softmax_cross_entropy(np.zeros((3, 2), dtype), labels)
    assert np.isclose(loss, np.log(2))
