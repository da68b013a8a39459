"""Losses against blockprop.reference, and their target checks."""
import numpy as np
import pytest

from blockprop import reference as R
from blockprop.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, get_loss


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_losses_match_reference(dtype, tol):
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(13, 4)) * 3).astype(dtype)
    cases = [
        (MSELoss(), rng.normal(size=(13, 4)).astype(dtype), R.mse_loss),
        (CrossEntropyLoss(), rng.integers(0, 4, 13), R.softmax_cross_entropy),
        (BCEWithLogitsLoss(), rng.integers(0, 2, (13, 4)).astype(dtype), R.binary_cross_entropy),
    ]
    for loss, target, ref in cases:
        t = loss.prepare_target(target, 4, np.dtype(dtype))
        value, grad = loss(z, t)
        rvalue, rgrad = ref(z, t)
        assert isinstance(value, float) and abs(value - rvalue) <= tol * max(1, abs(rvalue))
        assert grad.dtype == dtype and grad.shape == z.shape
        np.testing.assert_allclose(grad, rgrad, rtol=0, atol=tol)


def test_aliases_and_instances():
    assert isinstance(get_loss("mse"), MSELoss)
    assert isinstance(get_loss("cross_entropy"), CrossEntropyLoss)
    assert isinstance(get_loss("bce"), BCEWithLogitsLoss)
    ce = CrossEntropyLoss()
    assert get_loss(ce) is ce and get_loss(None) is None
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("hinge")


def test_cross_entropy_target_checks():
    ce, f32 = CrossEntropyLoss(), np.dtype(np.float32)
    assert ce.prepare_target([0, 2, 1], 3, f32).dtype == np.int64
    assert ce.prepare_target(np.array([[0.0], [2.0]]), 3, f32).tolist() == [0, 2]  # integral floats are fine
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        ce.prepare_target([0, 3], 3, f32)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        ce.prepare_target([-1, 0], 3, f32)
    with pytest.raises(ValueError, match="integer"):
        ce.prepare_target([0.5, 1], 3, f32)
    with pytest.raises(ValueError, match="argmax"):
        ce.prepare_target(np.eye(3), 3, f32)
    with pytest.raises(ValueError, match="at least 2 outputs"):
        ce.prepare_target([0, 1], 1, f32)
    with pytest.raises(TypeError, match="numeric"):
        ce.prepare_target(["a", "b"], 3, f32)


def test_regression_and_binary_target_checks():
    f64 = np.dtype(np.float64)
    assert MSELoss().prepare_target([1.0, 2.0], 1, f64).shape == (2, 1)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        MSELoss().prepare_target([1.0, 2.0], 2, f64)
    with pytest.raises(ValueError, match="NaN"):
        MSELoss().prepare_target([[np.nan]], 1, f64)
    assert BCEWithLogitsLoss().prepare_target([0, 1, 1], 1, f64).shape == (3, 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BCEWithLogitsLoss().prepare_target([0, 2], 1, f64)


def test_accuracy_counts():
    z = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert CrossEntropyLoss().correct(z, np.array([0, 1, 1])) == 2
    assert BCEWithLogitsLoss().correct(np.array([[1.0], [-1.0], [2.0]]), np.array([[1.0], [0.0], [0.0]])) == 2
