"""sgd_step and adam_step against the float64 reference over several steps (parameters and
optimizer state), and refusal of bad hyper-parameters and arrays."""
from __future__ import annotations

import numpy as np
import pytest

import blockprop
from blockprop import reference as ref

from conftest import assert_close, f64, random_array

SHAPES = [(1,), (37,), (16, 33), (3, 4, 5)]


def state(rng, shape, dtype, n=1):
    """n independent random arrays of the given shape and dtype."""
    return [random_array(rng, shape, dtype) for _ in range(n)]


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1),
    dict(lr=0.0, momentum=0.9, weight_decay=0.5),
]


@pytest.mark.parametrize("hp", SGD_CASES, ids=lambda hp: ",".join(f"{k}={v}" for k, v in hp.items()))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_sgd_several_steps(hp, shape, isa, dtype, rng):
    """Five SGD steps with fresh gradients: param and velocity track the reference."""
    p, = state(rng, shape, dtype)
    use_v = hp.get("momentum", 0) != 0
    v = np.zeros(shape, dtype) if use_v else None
    p_w, v_w = f64(p, v)
    p_w, v_w = p_w.copy(), (v_w.copy() if use_v else None)
    for step in range(1, 6):
        g, = state(rng, shape, dtype)
        assert blockprop.sgd_step(p, g, v, **hp) is None
        ref.sgd_step(p_w, f64(g), v_w, **hp)
        where = dict(dtype=dtype, k=4 * step, isa=isa, shape=shape)
        assert_close(p, p_w, name=f"sgd param after step {step}", **where)
        if use_v:
            assert_close(v, v_w, name=f"sgd velocity after step {step}", **where)
    assert p.dtype == dtype


def test_sgd_hand_computed(isa, dtype):
    """One plain, one momentum and one Nesterov step worked by hand."""
    p = np.array([1.0, -2.0], dtype)
    blockprop.sgd_step(p, np.array([0.5, 1.0], dtype), lr=0.5, weight_decay=0.5)
    # g = (0.5 + 0.5, 1 − 1) = (1, 0); p = (1 − 0.5, −2)
    np.testing.assert_array_equal(p, [0.5, -2.0])
    p, v = np.array([1.0, 1.0], dtype), np.array([2.0, -2.0], dtype)
    blockprop.sgd_step(p, np.array([1.0, 1.0], dtype), v, lr=0.25, momentum=0.5)
    # v = (0.5·2 + 1, 0.5·(−2) + 1) = (2, 0); p = 1 − 0.25·v
    np.testing.assert_array_equal(v, [2.0, 0.0])
    np.testing.assert_array_equal(p, [0.5, 1.0])
    p, v = np.array([1.0, 1.0], dtype), np.array([2.0, -2.0], dtype)
    blockprop.sgd_step(p, np.array([1.0, 1.0], dtype), v, lr=0.25, momentum=0.5, nesterov=True)
    # v = (2, 0); step = g + μ·v = (2, 1); p = 1 − 0.25·step
    np.testing.assert_array_equal(v, [2.0, 0.0])
    np.testing.assert_array_equal(p, [0.5, 0.75])


def test_sgd_without_momentum_leaves_velocity_alone(isa, dtype, rng):
    """momentum 0 with a velocity array given: p −= lr·g and the velocity is not touched."""
    p, g, v = state(rng, (9,), dtype, 3)
    v0, p_w = v.copy(), f64(p).copy()
    blockprop.sgd_step(p, g, v, lr=0.1)
    ref.sgd_step(p_w, f64(g), None, lr=0.1)
    np.testing.assert_array_equal(v, v0)
    assert_close(p, p_w, dtype=dtype, k=2, name="sgd param", isa=isa)


ADAM_CASES = [
    dict(),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    dict(lr=0.003, beta1=0.5, beta2=0.9, eps=1e-6),
]


@pytest.mark.parametrize("hp", ADAM_CASES, ids=lambda hp: ",".join(f"{k}={v}" for k, v in hp.items()) or "default")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_adam_steps_1_to_5(hp, shape, isa, dtype, rng):
    """Adam steps 1..5 (bias correction changing each step): param, m and v track the reference."""
    p, = state(rng, shape, dtype)
    m, v = np.zeros(shape, dtype), np.zeros(shape, dtype)
    p_w, m_w, v_w = (a.copy() for a in f64(p, m, v))
    for step in range(1, 6):
        g, = state(rng, shape, dtype)
        assert blockprop.adam_step(p, g, m, v, step, **hp) is None
        ref.adam_step(p_w, f64(g), m_w, v_w, step, **hp)
        where = dict(dtype=dtype, k=8 * step, isa=isa, shape=shape)
        assert_close(m, m_w, name=f"adam m after step {step}", **where)
        assert_close(v, v_w, name=f"adam v after step {step}", **where)
        assert_close(p, p_w, name=f"adam param after step {step}", **where)


def test_adam_first_step_is_sign_step(isa, dtype, rng):
    """At step 1 m̂ = g and v̂ = g², so each parameter moves by lr·g/(|g| + eps) ≈ lr·sign(g)."""
    p, g = state(rng, (50,), dtype, 2)
    g[np.abs(g) < 0.05] = 0.5
    p0 = p.copy()
    blockprop.adam_step(p, g, np.zeros_like(p), np.zeros_like(p), 1, lr=0.01)
    np.testing.assert_allclose(p0 - p, 0.01 * np.sign(g), rtol=1e-4)


def test_adam_weight_decay_modes_differ(isa, dtype, rng):
    """Coupled and decoupled weight decay are different updates (and differ from none)."""
    results = []
    for wd, dec in ((0.0, False), (0.5, False), (0.5, True)):
        # Non-zero moments and step 3: at step 1 from zero moments Adam only sees sign(g).
        p, g, m = state(np.random.default_rng(3), (20,), dtype, 3)
        v = np.abs(g) * 0.5
        blockprop.adam_step(p, g, m, v, 3, lr=0.1, weight_decay=wd, decoupled_weight_decay=dec)
        results.append(p)
    assert not np.allclose(results[0], results[1])
    assert not np.allclose(results[1], results[2])
    assert not np.allclose(results[0], results[2])


def test_adam_large_step_count(isa, dtype, rng):
    """A huge step count (bias corrections → 1) is accepted and matches the reference."""
    p, g, m = state(rng, (10,), dtype, 3)
    v = np.abs(state(rng, (10,), dtype)[0])
    p_w, m_w, v_w = (a.copy() for a in f64(p, m, v))
    blockprop.adam_step(p, g, m, v, 10**6)
    ref.adam_step(p_w, f64(g), m_w, v_w, 10**6)
    assert_close(p, p_w, dtype=dtype, k=8, name="adam param", isa=isa)


def test_grad_may_be_noncontiguous_or_alias_param(isa, dtype, rng):
    """A strided gradient is read correctly; grad aliasing param is read as it was on entry."""
    p, = state(rng, (12,), dtype)
    g = random_array(rng, (24,), dtype)[::-2]
    p_w = f64(p).copy()
    blockprop.sgd_step(p, g, lr=0.5)
    ref.sgd_step(p_w, f64(g), lr=0.5)
    assert_close(p, p_w, dtype=dtype, k=2, name="sgd strided grad", isa=isa)
    p_w = f64(p).copy()
    blockprop.sgd_step(p, p, lr=0.25)  # p −= 0.25·p
    assert_close(p, 0.75 * p_w, dtype=dtype, k=2, name="sgd grad=param", isa=isa)


# ---- bad input ------------------------------------------------------------------------------

def sgd_args(dtype, shape=(4, 3)):
    return np.zeros(shape, dtype), np.ones(shape, dtype), np.zeros(shape, dtype)


@pytest.mark.parametrize("bad,match", [
    (dict(lr=-0.1), r"\blr\b"),
    (dict(lr=float("nan")), r"\blr\b"),
    (dict(lr=0.1, momentum=-0.5), r"\bmomentum\b"),
    (dict(lr=0.1, weight_decay=-1.0), r"\bweight_decay\b"),
])
def test_sgd_bad_hyperparameters(bad, match, dtype):
    """Negative / NaN lr, negative momentum or weight decay: ValueError naming it; param unchanged."""
    p, g, v = sgd_args(dtype)
    with pytest.raises(ValueError, match=match):
        blockprop.sgd_step(p, g, v, **bad)
    np.testing.assert_array_equal(p, 0)


def test_sgd_velocity_none_with_momentum(dtype):
    """momentum > 0 without a velocity array is a ValueError naming velocity."""
    p, g, _ = sgd_args(dtype)
    with pytest.raises(ValueError, match=r"\bvelocity\b"):
        blockprop.sgd_step(p, g, None, lr=0.1, momentum=0.9)


def test_sgd_bad_arrays(dtype):
    """Mismatched shapes, dtypes, non-arrays and read-only params are refused, naming the argument."""
    p, g, v = sgd_args(dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(ValueError, match=r"\bgrad\b"):
        blockprop.sgd_step(p, np.ones((3, 4), dtype), lr=0.1)
    with pytest.raises(TypeError, match=r"\bgrad\b"):
        blockprop.sgd_step(p, g.astype(other), lr=0.1)
    with pytest.raises(TypeError, match=r"\bgrad\b"):
        blockprop.sgd_step(p, g.astype(np.int32), lr=0.1)
    with pytest.raises(TypeError, match=r"\bgrad\b"):
        blockprop.sgd_step(p, None, lr=0.1)
    with pytest.raises(ValueError, match=r"\bvelocity\b"):
        blockprop.sgd_step(p, g, np.zeros((12,), dtype), lr=0.1, momentum=0.9)
    with pytest.raises(TypeError, match=r"\bvelocity\b"):
        blockprop.sgd_step(p, g, v.astype(other), lr=0.1, momentum=0.9)
    with pytest.raises(TypeError, match=r"\bparam\b"):
        blockprop.sgd_step(p.tolist(), g, lr=0.1)
    with pytest.raises(TypeError, match=r"\bparam\b"):
        blockprop.sgd_step(p.astype(np.int64), g, lr=0.1)
    ro = p.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"\bparam\b"):
        blockprop.sgd_step(ro, g, lr=0.1)
    np.testing.assert_array_equal(p, 0)


@pytest.mark.parametrize("bad,match,exc", [
    (dict(step=0), r"\bstep\b", ValueError),
    (dict(step=-3), r"\bstep\b", ValueError),
    (dict(step=1.0), r"\bstep\b", TypeError),
    (dict(step=1, lr=-1e-3), r"\blr\b", ValueError),
    (dict(step=1, beta1=1.0), r"\bbeta1\b", ValueError),
    (dict(step=1, beta2=-0.1), r"\bbeta2\b", ValueError),
    (dict(step=1, eps=-1e-8), r"\beps\b", ValueError),
    (dict(step=1, weight_decay=-0.1), r"\bweight_decay\b", ValueError),
])
def test_adam_bad_hyperparameters(bad, match, exc, dtype):
    """Non-positive or float step, negative lr / eps / weight decay, betas outside [0, 1):
    an error naming the argument, and no update."""
    p, g, m = sgd_args(dtype)
    v = np.zeros_like(p)
    bad = dict(bad)
    step = bad.pop("step")
    with pytest.raises(exc, match=match):
        blockprop.adam_step(p, g, m, v, step, **bad)
    np.testing.assert_array_equal(p, 0)
    np.testing.assert_array_equal(m, 0)


def test_adam_bad_arrays(dtype):
    """m or v of the wrong shape or dtype, or None, is refused naming it."""
    p, g, m = sgd_args(dtype)
    v = np.zeros_like(p)
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(ValueError, match=r"\bm\b"):
        blockprop.adam_step(p, g, m.ravel(), v, 1)
    with pytest.raises(ValueError, match=r"\bv\b"):
        blockprop.adam_step(p, g, m, v[:2], 1)
    with pytest.raises(TypeError, match=r"\bv\b"):
        blockprop.adam_step(p, g, m, v.astype(other), 1)
    with pytest.raises(TypeError, match=r"\bm\b"):
        blockprop.adam_step(p, g, None, v, 1)
    with pytest.raises(ValueError, match=r"\bgrad\b"):
        blockprop.adam_step(p, g[:, :2], m, v, 1)


@pytest.mark.parametrize("which", ["sgd", "adam"])
def test_subnormal_state_is_flushed_and_caller_fp_mode_kept(which, isa, dtype, rng):
    """Optimizer state decaying into the subnormal range is flushed to zero (x86 operations on
    subnormals cost ~100 cycles each: Adam ran 50× slower), the update still matches the
    reference, and the caller's floating-point mode is back afterwards: NumPy still makes
    subnormals."""
    tiny = np.finfo(dtype).tiny
    n = 70_000  # above the threshold at which the update runs on the thread pool
    p = random_array(rng, (n,), dtype)
    g = np.zeros(n, dtype)
    state_ = np.full(n, tiny * 1.05, dtype)  # decays below tiny in one step (β1 = μ = 0.9)
    p_w, s_w = (a.copy() for a in f64(p, state_))
    if which == "sgd":
        blockprop.sgd_step(p, g, state_, lr=0.1, momentum=0.9)
        ref.sgd_step(p_w, f64(g), s_w, lr=0.1, momentum=0.9)
    else:
        v = np.full(n, tiny * 1.0005, dtype)  # below tiny after one step of β2 = 0.999
        v_w = f64(v).copy()
        blockprop.adam_step(p, g, state_, v, 2)
        ref.adam_step(p_w, f64(g), s_w, v_w, 2)
        assert not np.any(v), "second moment below the normal range was not flushed to zero"
    assert not np.any(state_), f"{which} state below the normal range was not flushed to zero"
    assert_close(p, p_w, dtype=dtype, k=8, name=f"{which} param", isa=isa)
    half_tiny = np.asarray(tiny, dtype) * np.asarray(0.5, dtype)
    assert 0 < half_tiny < tiny, "the caller's thread was left flushing subnormals to zero"


# --- the optimizer owns its state: state_arrays, step_count, advance_steps ----------------------

class _Param:
    def __init__(self, data, grad):
        self.data, self.grad = data, grad


def test_state_arrays_are_the_ones_the_update_uses(dtype, rng):
    from blockprop.optim import SGD, Adam
    w = random_array(rng, (3, 4), dtype)
    g = random_array(rng, (3, 4), dtype)
    assert SGD(0.1).state_arrays("w", w) == () and SGD(0.1).state == {}
    sgd = SGD(0.1, momentum=0.9)
    (velocity,) = sgd.state_arrays("w", w)
    assert velocity.dtype == w.dtype and velocity.shape == w.shape and not velocity.any()
    assert sgd.state_arrays("w", w)[0] is velocity  # created once
    sgd.step({"w": _Param(w, g)})
    assert sgd.state["w"]["velocity"] is velocity and np.array_equal(velocity, g)
    adam = Adam(0.01)
    m, v = adam.state_arrays("w", w)
    assert adam.state["w"]["step"] == 0 and not m.any() and not v.any()
    adam.step({"w": _Param(w, g)})
    assert adam.state["w"]["m"] is m and adam.state["w"]["v"] is v and m.any() and v.any()
    assert adam.state["w"]["step"] == 1


def test_step_count_is_common_or_none_and_advance_steps_counts():
    from blockprop.optim import SGD, Adam
    w, g = np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32)
    adam = Adam(0.01)
    assert adam.step_count(["a", "b"]) == 0  # never updated
    adam.step({"a": _Param(w.copy(), g), "b": _Param(w.copy(), g)})
    assert adam.step_count(["a", "b"]) == 1
    adam.step({"a": _Param(w.copy(), g)})
    assert adam.step_count(["a", "b"]) is None and adam.step_count(["a"]) == 2
    assert adam.step_count(["a", "c"]) is None  # "c" has had no update
    adam.advance_steps(["b"], 1)
    assert adam.step_count(["a", "b"]) == 2
    adam.advance_steps(["a", "b"], 5)
    assert adam.step_count(["a", "b"]) == 7
    sgd = SGD(0.1, momentum=0.9)
    sgd.step({"a": _Param(w.copy(), g)})
    sgd.advance_steps(["a"], 3)  # SGD keeps no count: its update does not depend on one
    assert sgd.step_count(["a", "b"]) == 0 and set(sgd.state["a"]) == {"velocity"}


def test_state_dict_format_is_unchanged():
    from blockprop.optim import SGD, Adam
    w, g = np.zeros(3, np.float64), np.ones(3, np.float64)
    adam = Adam(0.01)
    adam.state_arrays("p", w)
    adam.step({"p": _Param(w, g)})
    adam.advance_steps(["p"], 2)
    sd = adam.state_dict()
    assert sd["type"] == "Adam" and set(sd["state"]["p"]) == {"m", "v", "step"} and sd["state"]["p"]["step"] == 3
    restored = Adam()
    restored.load_state_dict(sd)
    assert restored.step_count(["p"]) == 3 and np.array_equal(restored.state_arrays("p", w)[0], sd["state"]["p"]["m"])
    sgd = SGD(0.1, momentum=0.5)
    sgd.state_arrays("p", w)
    assert set(sgd.state_dict()["state"]["p"]) == {"velocity"}
