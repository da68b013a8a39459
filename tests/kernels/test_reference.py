"""The reference itself, proved against central finite differences in float64: dense layer
gradients, activation and softmax backwards (those with parameters too), and loss gradients. (The
kernels are tested against the reference; this is what makes the reference worth testing against.)
And the twin: blockprop.reference keeps the public names and the signatures (parameter names,
kinds, defaults) of blockprop.kernels, apart from the exceptions listed with their reasons."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import blockprop.kernels
from blockprop import reference as ref

from conftest import PARAM_ACTIVATIONS, THROUGH_INPUT

H = 1e-6
RTOL = 1e-6


def numeric_grad(f, x, h=H):
    """∂f/∂x by central differences; f returns a scalar, x is perturbed in place and restored."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def assert_grad(analytic, numeric, name):
    scale = max(1.0, np.abs(numeric).max())
    err = np.abs(analytic - numeric).max()
    assert err <= RTOL * scale * 10, f"{name}: max |analytic − numeric| = {err:.3g} (scale {scale:.3g})"


def away_from_kinks(rng, x, W, b):
    """Nudges the bias so that no pre-activation lies within 1e-3 of 0 (relu's kink)."""
    z = x @ W.T + b
    near = np.abs(z) < 1e-3
    while near.any():
        b += rng.uniform(0.01, 0.02, b.shape)
        z = x @ W.T + b
        near = np.abs(z) < 1e-3


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh"])
def test_dense_backward_matches_finite_differences(activation):
    """For L = Σ dy ⊙ dense_forward(x, W, b): dense_backward gives ∂L/∂x, ∂L/∂W and ∂L/∂b."""
    rng = np.random.default_rng(1)
    x, W, b = rng.normal(size=(5, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
    dy = rng.normal(size=(5, 3))
    away_from_kinks(rng, x, W, b)

    def loss():
        return float((dy * ref.dense_forward(x, W, b, activation)).sum())

    y = ref.dense_forward(x, W, b, activation)
    dx, dW, db = ref.dense_backward(x, W, dy, y, activation)
    assert_grad(dx, numeric_grad(loss, x), f"dx ({activation})")
    assert_grad(dW, numeric_grad(loss, W), f"dW ({activation})")
    assert_grad(db, numeric_grad(loss, b), f"db ({activation})")
    assert ref.dense_backward(x, W, dy, y, activation, need_dx=False)[0] is None


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_backward_matches_finite_differences(name):
    """f_backward(dy, f(x)) = dy ⊙ f'(x), f' taken numerically (elementwise)."""
    rng = np.random.default_rng(2)
    x = rng.uniform(-3, 3, 40)
    x[np.abs(x) < 1e-3] = 0.5
    dy = rng.normal(size=40)
    f = getattr(ref, name)
    numeric = dy * (f(x + H) - f(x - H)) / (2 * H)
    assert_grad(getattr(ref, name + "_backward")(dy, f(x)), numeric, name)


def test_sigmoid_and_tanh_values():
    """The reference's stable sigmoid equals 1/(1+e^−x) where that is safe, and tanh is np.tanh."""
    x = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(ref.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    assert ref.sigmoid(np.array([-1000.0]))[0] == 0 and ref.sigmoid(np.array([1000.0]))[0] == 1


def test_softmax_backward_is_jvp_of_finite_difference_jacobian():
    """softmax_backward(dy, softmax(x)) = Jᵀ·dy with J the numerical Jacobian of softmax, per row."""
    rng = np.random.default_rng(3)
    x, dy = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    y = ref.softmax(x)
    dx = ref.softmax_backward(dy, y)
    for r in range(3):
        J = np.empty((6, 6))
        for j in range(6):
            e = np.zeros(6)
            e[j] = H
            J[:, j] = (ref.softmax(x[r] + e) - ref.softmax(x[r] - e)) / (2 * H)
        assert_grad(dx[r], J.T @ dy[r], f"softmax row {r}")
        assert_grad(J, J.T, "softmax Jacobian symmetry")


def test_softmax_over_last_axis():
    """softmax rows are positive, sum to 1, and a 3-D input is normalised along its last axis."""
    x = np.random.default_rng(4).normal(size=(2, 3, 4))
    y = ref.softmax(x)
    assert (y > 0).all()
    np.testing.assert_allclose(y.sum(-1), 1, rtol=1e-15)
    np.testing.assert_allclose(y[1, 2], np.exp(x[1, 2]) / np.exp(x[1, 2]).sum(), rtol=1e-14)


def test_mse_gradient():
    """∂mse/∂pred matches finite differences, and L = mean((p − t)²)."""
    rng = np.random.default_rng(5)
    p, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    L, g = ref.mse_loss(p, t)
    assert abs(L - np.mean((p - t) ** 2)) < 1e-15
    assert_grad(g, numeric_grad(lambda: ref.mse_loss(p, t)[0], p), "mse")


def test_softmax_cross_entropy_gradient():
    """∂CE/∂z matches finite differences; L equals −mean log softmax(z)[label]."""
    rng = np.random.default_rng(6)
    z, labels = rng.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])
    L, g = ref.softmax_cross_entropy(z, labels)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert abs(L + np.log(p[np.arange(5), labels]).mean()) < 1e-14
    assert_grad(g, numeric_grad(lambda: ref.softmax_cross_entropy(z, labels)[0], z), "ce")


def test_binary_cross_entropy_gradient():
    """∂BCE/∂z matches finite differences; L equals −mean(t·log σ + (1−t)·log(1−σ))."""
    rng = np.random.default_rng(7)
    z, t = rng.normal(size=(3, 5)) * 3, rng.uniform(0, 1, (3, 5))
    L, g = ref.binary_cross_entropy(z, t)
    s = 1 / (1 + np.exp(-z))
    assert abs(L + np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))) < 1e-12
    assert_grad(g, numeric_grad(lambda: ref.binary_cross_entropy(z, t)[0], z), "bce")


@pytest.mark.parametrize("kind", ["mse", "cross_entropy", "bce"])
def test_weighted_loss_gradient(kind):
    """∂(Σ w·ℓ_r / Σ w)/∂pred matches finite differences; equal weights give the plain loss, and
    integer weights the loss of the rows repeated that often."""
    rng = np.random.default_rng(8)
    z, w = rng.normal(size=(5, 3)) * 2, np.array([0.5, 0.0, 2.0, 1.0, 3.0])
    t = np.array([0, 2, 1, 1, 0]) if kind == "cross_entropy" else rng.uniform(0, 1, (5, 3))
    L, g = ref.weighted_loss(kind, z, t, w)
    assert_grad(g, numeric_grad(lambda: ref.weighted_loss(kind, z, t, w)[0], z), kind)
    plain = {"mse": ref.mse_loss, "cross_entropy": ref.softmax_cross_entropy,
             "bce": ref.binary_cross_entropy}[kind]
    assert abs(ref.weighted_loss(kind, z, t, np.full(5, 3.0))[0] - plain(z, t)[0]) < 1e-14
    reps = np.array([1, 0, 2, 1, 3])
    assert abs(ref.weighted_loss(kind, z, t, reps.astype(float))[0]
               - plain(np.repeat(z, reps, axis=0), np.repeat(t, reps, axis=0))[0]) < 1e-14


def test_sgd_reference_closed_form():
    """With a constant gradient g and momentum μ, after n steps v = g·(1 − μⁿ)/(1 − μ) and p has
    moved by lr·Σ v_i; Nesterov moves by lr·Σ (g + μ·v_i)."""
    g, mu, lr, n = np.array([1.0, -2.0]), 0.5, 0.1, 4
    for nesterov in (False, True):
        p, v = np.zeros(2), np.zeros(2)
        for _ in range(n):
            ref.sgd_step(p, g, v, lr=lr, momentum=mu, nesterov=nesterov)
        vs = [g * (1 - mu ** i) / (1 - mu) for i in range(1, n + 1)]
        np.testing.assert_allclose(v, vs[-1], rtol=1e-15)
        moved = sum(g + mu * vi for vi in vs) if nesterov else sum(vs)
        np.testing.assert_allclose(p, -lr * moved, rtol=1e-14)


def test_adam_reference_first_steps():
    """Adam with a constant gradient moves every step by lr·g/(|g| + eps) (m̂ = g, v̂ = g² exactly)."""
    g = np.array([0.3, -2.0, 1e-3])
    p, m, v = np.zeros(3), np.zeros(3), np.zeros(3)
    for step in range(1, 6):
        before = p.copy()
        ref.adam_step(p, g, m, v, step, lr=0.01)
        np.testing.assert_allclose(before - p, 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-10)


@pytest.mark.parametrize("name,kw", PARAM_ACTIVATIONS)
def test_reference_derivatives_match_finite_differences(name, kw):
    x = np.linspace(-6, 6, 241) + 0.013  # avoid the kink at 0
    h = 1e-6
    numeric = (getattr(ref, name)(x + h, **kw) - getattr(ref, name)(x - h, **kw)) / (2 * h)
    v = x if name in THROUGH_INPUT else getattr(ref, name)(x, **kw)
    analytic = getattr(ref, name + "_backward")(np.ones_like(x), v, **kw)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# --- The twin: blockprop.reference has the names and signatures of blockprop.kernels ----------------

# Deliberate exceptions, each with its reason. A name listed here that no longer differs fails
# test_same_public_names, so the list cannot go stale.
REFERENCE_ONLY = {
    "dropout_mask": "the counter-based keep-mask that dropout and dropout_backward apply, public so "
                    "that NumPy code can reproduce a kernel's mask (docs/features.md); the kernels "
                    "apply it inside dropout and have no function that returns it",
    "round_bfloat16": "the rounding to bfloat16 that precision='bfloat16' applies to the operands of "
                      "every product, public so that NumPy code can reproduce it; the kernels round "
                      "while they pack and have no function that returns it",
}
KERNELS_ONLY: dict = {}
SIGNATURE_EXCEPTIONS: dict = {}  # name -> reason; none so far


def public_functions(module):
    """The public functions of a module: its ``__all__`` if it has one, and every function it
    defines itself whose name has no leading underscore (so ``np`` or ``math`` imported into it are
    not its names, and a public function left out of ``__all__`` still counts)."""
    names = set(getattr(module, "__all__", ()))
    for name, value in vars(module).items():
        if (not name.startswith("_") and callable(value) and not inspect.isclass(value)
                and getattr(value, "__module__", None) == module.__name__):
            names.add(name)
    return names


def signature_differences(kernel, reference):
    """What differs between two functions' parameter lists: names, order, kinds (positional,
    keyword-only, ...) and defaults; annotations are ignored. [] when they agree."""
    try:
        a, b = inspect.signature(kernel).parameters, inspect.signature(reference).parameters
    except (TypeError, ValueError) as exc:
        return [f"no signature to compare: {exc}"]
    if list(a) != list(b):
        return [f"parameters {list(a)} in kernels, {list(b)} in reference"]
    diffs = []
    for name in a:
        p, q = a[name], b[name]
        if p.kind != q.kind:
            diffs.append(f"{name}: kind {p.kind.description} in kernels, {q.kind.description} in reference")
        no_p, no_q = p.default is inspect.Parameter.empty, q.default is inspect.Parameter.empty
        if no_p != no_q or not no_p and (type(p.default) is not type(q.default) or p.default != q.default):
            diffs.append(f"{name}: default {'none' if no_p else repr(p.default)} in kernels, "
                         f"{'none' if no_q else repr(q.default)} in reference")
    return diffs


KERNEL_NAMES = public_functions(blockprop.kernels)
REFERENCE_NAMES = public_functions(ref)


def test_same_public_names():
    only_kernels = KERNEL_NAMES - REFERENCE_NAMES
    only_reference = REFERENCE_NAMES - KERNEL_NAMES
    problems = [f"in kernels, not in reference: {name}" for name in sorted(only_kernels - set(KERNELS_ONLY))]
    problems += [f"in reference, not in kernels: {name}" for name in sorted(only_reference - set(REFERENCE_ONLY))]
    problems += [f"listed as kernels-only but no longer is: {name}" for name in sorted(set(KERNELS_ONLY) - only_kernels)]
    problems += [f"listed as reference-only but no longer is: {name}"
                 for name in sorted(set(REFERENCE_ONLY) - only_reference)]
    print("\n".join(problems))
    assert not problems, "blockprop.kernels and blockprop.reference differ:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", sorted(KERNEL_NAMES & REFERENCE_NAMES))
def test_same_signature(name):
    diffs = signature_differences(getattr(blockprop.kernels, name), getattr(ref, name))
    if name in SIGNATURE_EXCEPTIONS:
        assert diffs, f"{name} is listed in SIGNATURE_EXCEPTIONS but its signatures now agree"
        return
    print("\n".join(f"{name}: {d}" for d in diffs))
    assert not diffs, (f"blockprop.kernels.{name}{inspect.signature(getattr(blockprop.kernels, name))} vs "
                       f"blockprop.reference.{name}{inspect.signature(getattr(ref, name))}:\n  " + "\n  ".join(diffs))


def test_the_signature_comparison_sees_each_kind_of_difference():
    def k(x, y, *, lr=0.1, flag: bool = False) -> None: ...
    def same(x, y, *, lr=0.1, flag=False): ...
    def renamed(x, z, *, lr=0.1, flag=False): ...
    def reordered(y, x, *, lr=0.1, flag=False): ...
    def positional(x, y, lr=0.1, flag=False): ...
    def default(x, y, *, lr=0.01, flag=False): ...
    def default_type(x, y, *, lr=0.1, flag=0): ...
    def no_default(x, y, *, lr, flag=False): ...
    def extra(x, y, *, lr=0.1, flag=False, eps=1e-8): ...
    assert signature_differences(k, same) == []
    assert signature_differences(k, renamed) == ["parameters ['x', 'y', 'lr', 'flag'] in kernels, "
                                                 "['x', 'z', 'lr', 'flag'] in reference"]
    assert len(signature_differences(k, reordered)) == 1
    assert len(signature_differences(k, extra)) == 1
    assert signature_differences(k, positional) == [
        "lr: kind keyword-only in kernels, positional or keyword in reference",
        "flag: kind keyword-only in kernels, positional or keyword in reference"]
    assert signature_differences(k, default) == ["lr: default 0.1 in kernels, 0.01 in reference"]
    assert signature_differences(k, default_type) == ["flag: default False in kernels, 0 in reference"]
    assert signature_differences(k, no_default) == ["lr: default 0.1 in kernels, none in reference"]
    assert public_functions(ref) >= {"gemm", "dense_forward", "dropout_mask"}
    assert not {"np", "math", "annotations"} & public_functions(ref)
