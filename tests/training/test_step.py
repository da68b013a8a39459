"""One training step (blockprop.step): every way of training a model runs the same update.

For every case of tests/training/step_cases.py (each activation, layer kind, penalty, optimizer, schedule
and loss), ``fit`` on the C++ path, ``fit`` on the Python path and a ``train_step`` loop give the
same weights bit for bit (distributed.fit on 1, 2 and 3 ranks: tests/training/test_distributed.py).
"""
from __future__ import annotations

import numpy as np
import pytest

import blockprop as bp
from blockprop import _fastpath, step
from blockprop.nn.losses import get_loss

import step_cases as C


def assert_same_weights(got: bp.Sequential, want: bp.Sequential, what: str) -> None:
    g, w = got.state_dict(), want.state_dict()
    assert g.keys() == w.keys()
    for key in w:
        err = float(np.max(np.abs(g[key].astype(np.float64) - w[key]))) if w[key].size else 0.0
        assert np.array_equal(g[key], w[key]), (
            f"{what}: {key} shape={w[key].shape} dtype={w[key].dtype} isa={bp.isa()} max abs error {err:.3g}")


@pytest.mark.parametrize("name", list(C.CASES))
def test_fit_python_path_and_train_step_loop_give_the_same_weights(name, monkeypatch):
    case = C.CASES[name]
    monkeypatch.setattr(_fastpath, "enabled", False)
    python = C.fit(case)
    assert_same_weights(C.train_step_loop(case), python, f"{name}: train_step loop vs fit (Python path)")


@pytest.mark.parametrize("name", list(C.CASES))
def test_fit_cpp_path_gives_the_python_paths_weights(name, monkeypatch, isa):
    """Cases the C++ loop accepts take it (and equal the Python path); the others stay in Python."""
    case = C.CASES[name]
    model = case.model()
    accepted = _fastpath.plan(model, get_loss(case.loss), case.optimizer()) is not None
    assert accepted == case.cpp, f"{name}: the C++ loop {'takes' if accepted else 'refuses'} it"
    for dtype in ("float64", "float32"):
        fast = C.fit(case, dtype=dtype)
        monkeypatch.setattr(_fastpath, "enabled", False)
        python = C.fit(case, dtype=dtype)
        monkeypatch.setattr(_fastpath, "enabled", True)
        assert_same_weights(fast, python, f"{name} ({dtype}): fit C++ path vs Python path")


def test_the_loops_run_the_step_module(monkeypatch):
    """fit's Python path and train_step go through blockprop.step (spied), once per update."""
    monkeypatch.setattr(_fastpath, "enabled", False)
    calls = []
    real = step.gradients

    def spy(model, X, Y, loss_fn=None, weights=None):
        calls.append(len(X))
        return real(model, X, Y, loss_fn, weights)

    monkeypatch.setattr(step, "gradients", spy)
    case = C.CASES["l2+Dropout/SGD-momentum"]
    C.fit(case)
    assert calls == ([C.BATCH] * (C.N // C.BATCH) + [C.N % C.BATCH]) * C.EPOCHS
    calls.clear()
    C.train_step_loop(case)
    assert len(calls) == -(-C.N // C.BATCH) * C.EPOCHS


def test_penalties_and_dropout_change_the_weights():
    """The matrix would pass vacuously if penalties or masks were ignored everywhere alike."""
    base = C.fit(C.CASES["dense-relu/SGD-momentum"])
    for name in ("l1/SGD-momentum", "l2/SGD-momentum", "Dropout/SGD-momentum"):
        other = C.fit(C.CASES[name])
        differ = [k for k in base.state_dict() if k in other.state_dict()
                  and not np.array_equal(base.state_dict()[k], other.state_dict()[k])]
        assert differ, f"{name}: trained to the same weights as without the option"
