"""mse_loss, softmax_cross_entropy, binary_cross_entropy and weighted_loss against the float64
reference: value and gradient, extreme logits, and refusal of bad input."""
from __future__ import annotations

import numpy as np
import pytest

import blockprop
from blockprop import reference as ref

from conftest import assert_close, f64, random_array

SHAPES = [(1,), (7,), (4, 5), (33, 17), (128, 10), (2, 3, 4)]


def check_loss(got, want, *, dtype, k, name, isa):
    """(L, grad) pairs: L a Python float within tolerance, grad of the input's shape and dtype."""
    L, g = got
    L_w, g_w = want
    assert isinstance(L, float), f"{name}: loss is {type(L).__name__}, not float"
    assert g.dtype == dtype and g.shape == np.shape(g_w)
    assert_close(np.array(L), np.array(L_w), dtype=dtype, k=k, name=name + " loss", isa=isa)
    assert_close(g, g_w, dtype=dtype, k=k, name=name + " grad", isa=isa)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_mse(shape, isa, dtype, rng):
    """L = mean((p − t)²), ∂L/∂p = 2(p − t)/n, for any shape."""
    p, t = random_array(rng, shape, dtype, -3, 3), random_array(rng, shape, dtype, -3, 3)
    check_loss(blockprop.mse_loss(p, t), ref.mse_loss(*f64(p, t)), dtype=dtype,
               k=p.size, name="mse_loss", isa=isa)


def test_mse_exact_values(isa, dtype):
    """A hand-computed case: diffs (1, −2, 0, 3) → L = 14/4, grad = (0.5, −1, 0, 1.5)."""
    L, g = blockprop.mse_loss(np.array([[2.0, 0.0], [5.0, 4.0]], dtype),
                              np.array([[1.0, 2.0], [5.0, 1.0]], dtype))
    assert L == 3.5
    np.testing.assert_array_equal(g, [[0.5, -1.0], [0.0, 1.5]])


@pytest.mark.parametrize("batch,classes", [(1, 1), (1, 10), (7, 3), (32, 10), (128, 10),
                                           (5, 1000), (0, 4)])
def test_softmax_cross_entropy(batch, classes, isa, dtype, rng):
    """L = mean(logsumexp(z) − z[label]); grad = (softmax(z) − onehot)/batch."""
    z = random_array(rng, (batch, classes), dtype, -5, 5)
    labels = rng.integers(0, classes, batch)
    check_loss(blockprop.softmax_cross_entropy(z, labels), ref.softmax_cross_entropy(f64(z), labels),
               dtype=dtype, k=classes + batch, name="softmax_cross_entropy", isa=isa)


@pytest.mark.parametrize("label_dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
def test_softmax_cross_entropy_label_dtypes(label_dtype, isa, dtype, rng):
    """Any integer label dtype (signed or unsigned) is accepted and gives the same result."""
    z = random_array(rng, (6, 4), dtype)
    labels = np.array([0, 3, 1, 2, 3, 0])
    want = blockprop.softmax_cross_entropy(z, labels)
    got = blockprop.softmax_cross_entropy(z, labels.astype(label_dtype))
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    got = blockprop.softmax_cross_entropy(z, list(labels))
    assert got[0] == want[0]


def test_softmax_cross_entropy_extreme_logits(isa, dtype):
    """Logits of ±1000 give a finite loss (1000 for a confidently wrong row) and gradient."""
    z = np.array([[1000.0, -1000.0, 0.0], [1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]],
                 dtype)
    labels = np.array([0, 1, 2])
    L, g = blockprop.softmax_cross_entropy(z, labels)
    assert np.isfinite(L) and np.isfinite(g).all()
    want_L, want_g = ref.softmax_cross_entropy(f64(z), labels)
    assert_close(np.array(L), np.array(want_L), dtype=dtype, k=3, name="loss", isa=isa)
    assert_close(g, want_g, dtype=dtype, k=3, name="grad", isa=isa)
    assert abs(L - (0 + 2000 + np.log(3)) / 3) < 1e-3


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_binary_cross_entropy(shape, isa, dtype, rng):
    """L = mean(max(z,0) − z·t + log1p(e^−|z|)), grad = (σ(z) − t)/n, soft targets too."""
    z = random_array(rng, shape, dtype, -6, 6)
    t = rng.uniform(0, 1, shape).astype(dtype)
    t.flat[::2] = np.round(t.flat[::2])
    check_loss(blockprop.binary_cross_entropy(z, t), ref.binary_cross_entropy(*f64(z, t)),
               dtype=dtype, k=z.size, name="binary_cross_entropy", isa=isa)


def test_binary_cross_entropy_extreme_logits(isa, dtype):
    """±1000 logits: right → loss ≈ 0, wrong → loss ≈ 1000; all finite."""
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0], dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype)
    L, g = blockprop.binary_cross_entropy(z, t)
    assert np.isfinite(L) and np.isfinite(g).all()
    assert abs(L - 500.0) < 1e-3
    np.testing.assert_allclose(g, [0.0, 0.0, 0.25, -0.25], atol=1e-7)


def test_binary_cross_entropy_empty(isa, dtype):
    """No elements: loss 0 and an empty gradient."""
    L, g = blockprop.binary_cross_entropy(np.zeros((0, 3), dtype), np.zeros((0, 3), dtype))
    assert L == 0.0 and g.shape == (0, 3) and g.dtype == dtype


def test_noncontiguous_inputs(isa, dtype, rng):
    """Strided and transposed inputs give the same loss and gradient as contiguous copies."""
    p = random_array(rng, (10, 12), dtype)[:, ::2].T
    t = random_array(rng, (6, 20), dtype)[:, ::2]
    for fn in (blockprop.mse_loss, blockprop.binary_cross_entropy):
        L, g = fn(p, t)
        L2, g2 = fn(np.ascontiguousarray(p), np.ascontiguousarray(t))
        assert L == L2
        np.testing.assert_array_equal(g, g2)
    z = random_array(rng, (5, 16), dtype)[::-1, ::2]
    labels = np.array([7, 0, 3, 3, 1, 6])[::-1][:5]
    L, g = blockprop.softmax_cross_entropy(z, labels)
    L2, g2 = blockprop.softmax_cross_entropy(np.ascontiguousarray(z), np.ascontiguousarray(labels))
    assert L == L2
    np.testing.assert_array_equal(g, g2)


# ---- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [[0, 4, 1], [-1, 0, 1], [0, 1, 100]])
def test_labels_out_of_range(bad, dtype):
    """A label outside [0, classes) is a ValueError naming labels."""
    z = np.zeros((3, 4), dtype)
    with pytest.raises(ValueError, match=r"\blabels\b.*out of range"):
        blockprop.softmax_cross_entropy(z, np.array(bad))


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0, 2.0]), np.array([True, False, True]),
                                    np.array(["0", "1", "2"]), np.array([0, 1, 2], complex)],
                         ids=["float", "bool", "str", "complex"])
def test_labels_not_integer(labels, dtype):
    """Float, bool, string or complex labels are a TypeError naming labels."""
    with pytest.raises(TypeError, match=r"\blabels\b"):
        blockprop.softmax_cross_entropy(np.zeros((3, 4), dtype), labels)


def test_labels_wrong_shape(dtype):
    """labels must be (batch,): a wrong length or a 2-D array is a ValueError naming labels."""
    z = np.zeros((3, 4), dtype)
    for labels in (np.array([0, 1]), np.array([[0], [1], [2]]), np.array(1)):
        with pytest.raises(ValueError, match=r"\blabels\b"):
            blockprop.softmax_cross_entropy(z, labels)


def test_logits_wrong_ndim(dtype):
    """softmax_cross_entropy needs 2-D logits: ValueError naming logits."""
    for z in (np.zeros(4, dtype), np.zeros((2, 3, 4), dtype)):
        with pytest.raises(ValueError, match=r"\blogits\b"):
            blockprop.softmax_cross_entropy(z, np.zeros(z.shape[0], int))


@pytest.mark.parametrize("fn,a,b", [("mse_loss", "pred", "target"),
                                    ("binary_cross_entropy", "logits", "targets")])
def test_elementwise_loss_mismatches(fn, a, b, dtype):
    """Shape mismatch → ValueError naming the second argument; dtype mismatch or non-float →
    TypeError naming the argument; None → TypeError."""
    f = getattr(blockprop, fn)
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(ValueError, match=rf"\b{b}\b"):
        f(np.zeros((3, 4), dtype), np.zeros((4, 3), dtype))
    with pytest.raises(ValueError, match=rf"\b{b}\b"):
        f(np.zeros((3, 4), dtype), np.zeros((3, 4, 1), dtype))
    with pytest.raises(TypeError, match=rf"\b{a}\b.*\b{b}\b"):
        f(np.zeros((3, 4), dtype), np.zeros((3, 4), other))
    with pytest.raises(TypeError, match=rf"\b{a}\b"):
        f(np.zeros((3, 4), np.int64), np.zeros((3, 4), dtype))
    with pytest.raises(TypeError, match=rf"\b{b}\b"):
        f(np.zeros((3, 4), dtype), np.zeros((3, 4), bool))
    with pytest.raises(TypeError, match=rf"\b{a}\b"):
        f(None, np.zeros((3, 4), dtype))
    with pytest.raises(TypeError, match=rf"\b{b}\b"):
        f(np.zeros((3, 4), dtype), None)


# --- weighted_loss -------------------------------------------------------------------------------
def _weighted_case(kind, rows, cols, dtype, rng):
    z = random_array(rng, (rows, cols), dtype, -4, 4)
    if kind == "cross_entropy":
        return z, rng.integers(0, cols, rows)
    lo = -3 if kind == "mse" else 0
    return z, random_array(rng, (rows, cols), dtype, lo, 1)


@pytest.mark.parametrize("kind", ["mse", "cross_entropy", "bce"])
@pytest.mark.parametrize("rows,cols", [(1, 1), (7, 3), (64, 10), (33, 1)])
def test_weighted_loss(kind, rows, cols, isa, dtype, rng):
    """L = Σ w·ℓ_r / Σ w and its gradient, weights with zeros among them."""
    z, t = _weighted_case(kind, rows, cols, dtype, rng)
    w = rng.uniform(0, 3, rows)
    w[::3] = 0.0
    w[-1] = 1.5  # never all zero
    want = ref.weighted_loss(kind, f64(z), t if kind == "cross_entropy" else f64(t), w)
    check_loss(blockprop.weighted_loss(kind, z, t, w), want, dtype=dtype, k=cols + rows,
               name=f"weighted_loss[{kind}]", isa=isa)


@pytest.mark.parametrize("kind", ["mse", "cross_entropy", "bce"])
def test_weighted_loss_zero_weight_is_the_row_left_out(kind, isa, dtype, rng):
    """Rows of weight 0 get a zero gradient, and the rest equal the batch without those rows."""
    z, t = _weighted_case(kind, 9, 4, dtype, rng)
    w = np.array([1.0, 0, 1, 1, 0, 0, 1, 1, 1])
    keep = w > 0
    L, g = blockprop.weighted_loss(kind, z, t, w)
    L_kept, g_kept = blockprop.weighted_loss(kind, z[keep], t[keep], np.ones(keep.sum()))
    assert L == L_kept
    np.testing.assert_array_equal(g[keep], g_kept)
    assert not g[~keep].any()
    plain = {"mse": blockprop.mse_loss, "cross_entropy": blockprop.softmax_cross_entropy,
             "bce": blockprop.binary_cross_entropy}[kind]
    L_plain, g_plain = plain(z[keep], t[keep])
    assert_close(np.array(L), np.array(L_plain), dtype=dtype, k=10, name="weighted vs plain loss", isa=isa)
    assert_close(g_kept, g_plain, dtype=dtype, k=10, name="weighted vs plain grad", isa=isa)


@pytest.mark.parametrize("weights,match", [
    (np.ones(3), r"weights.*shape"),
    (np.array([1.0, -1.0, 1.0, 1.0]), "finite and >= 0"),
    (np.array([1.0, np.nan, 1.0, 1.0]), "finite and >= 0"),
    (np.array([1.0, np.inf, 1.0, 1.0]), "finite and >= 0"),
])
def test_weighted_loss_refuses_bad_weights(weights, match):
    z = np.zeros((4, 2))
    with pytest.raises(ValueError, match=match):
        blockprop.weighted_loss("mse", z, z, weights)


@pytest.mark.parametrize("kind", ["mse", "cross_entropy", "bce"])
def test_weighted_loss_all_zero_weights_give_nothing(kind, isa, dtype, rng):
    """A batch whose rows are all left out (weights all 0, as a mini-batch may be): 0 and a zero
    gradient, in the kernel and the reference."""
    z, t = _weighted_case(kind, 5, 3, dtype, rng)
    for L, g in (blockprop.weighted_loss(kind, z, t, np.zeros(5)), ref.weighted_loss(kind, z, t, np.zeros(5))):
        assert L == 0.0 and g.shape == z.shape and not g.any()


def test_weighted_loss_refuses_bad_kind_and_targets():
    z = np.zeros((4, 2))
    with pytest.raises(ValueError, match="kind must be"):
        blockprop.weighted_loss("hinge", z, z, np.ones(4))
    with pytest.raises(ValueError, match="target"):
        blockprop.weighted_loss("bce", z, np.zeros((4, 3)), np.ones(4))
    with pytest.raises(ValueError, match="labels|target"):
        blockprop.weighted_loss("cross_entropy", z, np.array([0, 1, 2, 0]), np.ones(4))
    with pytest.raises(ValueError, match="2-D"):
        blockprop.weighted_loss("mse", np.zeros(4), np.zeros(4), np.ones(4))
