"""The L1/L2 weight penalty kernel (weight_penalty) against the reference and finite differences, and
its argument checks. (The penalties of Dense layers in the loss and in training: nn/test_nn_layers.py.)"""
import numpy as np
import pytest

from blockprop import kernels as K
from blockprop import reference as R
from conftest import assert_close, random_array


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_kernel_matches_reference(n, isa, dtype, rng):
    w = random_array(rng, (n,), dtype)
    w[0] = 0  # sign(0) = 0
    g, g_ref = random_array(rng, (n,), dtype), None
    g_ref = g.astype(np.float64)
    value = K.weight_penalty(w, 0.01, 0.1, g)
    want = R.weight_penalty(w.astype(np.float64), 0.01, 0.1, g_ref)
    assert value == pytest.approx(want, rel=1e-12)
    assert_close(g, g_ref, dtype=dtype, k=2, name="weight_penalty grad", isa=isa)
    assert K.weight_penalty(w, 0.0, 0.0) == 0.0


def test_penalty_gradient_matches_finite_differences():
    w = np.random.default_rng(0).standard_normal(20)
    g = np.zeros_like(w)
    K.weight_penalty(w, 0.3, 0.7, g)
    for i in range(w.size):
        up, down = w.copy(), w.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        numeric = (K.weight_penalty(up, 0.3, 0.7) - K.weight_penalty(down, 0.3, 0.7)) / 2e-6
        assert g[i] == pytest.approx(numeric, rel=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="l1 and l2"):
        K.weight_penalty(np.ones(3), -1.0, 0.0)
    with pytest.raises(ValueError, match="grad"):
        K.weight_penalty(np.ones(3), 1.0, 0.0, np.ones(4))
