"""Determinism: the same seed and data give bit-identical weights, run after run, in one process
or in separate ones, and whatever the number of threads (the GEMM splits only M and N across
threads, so every dot product is summed in one fixed order). Checked on the C++ fit path (plain
dense stacks) and on the Python path (a model the fast path cannot run)."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import blockprop as bp
from blockprop import _fastpath
from blockprop.nn import Dense, ReLU, Sequential, Softmax, Tanh
from blockprop.optim import SGD, Adam

# Big enough that the GEMMs are split across threads (several row and column blocks).
N, FEATURES, HIDDEN, CLASSES = 1024, 96, 256, 10

TRAIN = textwrap.dedent("""
    import hashlib, numpy as np
    import blockprop as bp
    from blockprop.nn import Dense, ReLU, Sequential, Softmax, Tanh
    from blockprop.optim import SGD, Adam

    def data():
        rng = np.random.default_rng(7)
        X = rng.standard_normal((%(N)d, %(F)d)).astype(np.float32)
        return X, (np.abs(X[:, :%(C)d]).argmax(axis=1))

    def build(kind, dtype="float32"):
        if kind == "fast":
            return Sequential(Dense(%(F)d, %(H)d, "relu", seed=1, dtype=dtype), Dense(%(H)d, %(H)d, "tanh", seed=2, dtype=dtype),
                              Dense(%(H)d, %(C)d, seed=3, dtype=dtype))
        return Sequential(Dense(%(F)d, %(H)d, seed=1, dtype=dtype), Tanh(), ReLU(), Dense(%(H)d, %(C)d, seed=3, dtype=dtype),
                          Softmax())

    def train(kind, optimizer, threads=None, dtype="float32"):
        if threads is not None:
            bp.set_num_threads(threads)
        X, y = data()
        m = build(kind, dtype)
        opt = SGD(0.05, momentum=0.9) if optimizer == "sgd" else Adam(2e-3)
        m.fit(X, y, epochs=2, batch_size=64, optimizer=opt, seed=11, verbose=0)
        h = hashlib.sha256()
        for k, v in sorted(m.state_dict().items()):
            h.update(k.encode()); h.update(np.ascontiguousarray(v).tobytes())
        return h.hexdigest()
""") % {"N": N, "F": FEATURES, "H": HIDDEN, "C": CLASSES}

namespace: dict = {}
exec(TRAIN, namespace)
train, build = namespace["train"], namespace["build"]


@pytest.fixture(autouse=True)
def restore_threads():
    before = bp.get_num_threads()
    yield
    bp.set_num_threads(before)


def test_the_two_model_kinds_take_the_two_paths():
    assert _fastpath.plan(build("fast"), bp.nn.losses.CrossEntropyLoss(), SGD()) is not None
    assert _fastpath.plan(build("python"), bp.nn.losses.CrossEntropyLoss(), SGD()) is None


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["fast", "python"])
def test_same_seed_same_weights_run_after_run(kind, optimizer):
    assert train(kind, optimizer) == train(kind, optimizer)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["fast", "python"])
def test_one_and_two_threads_give_identical_weights(kind, optimizer, dtype):
    one = train(kind, optimizer, threads=1, dtype=dtype)
    two = train(kind, optimizer, threads=2, dtype=dtype)
    assert bp.get_num_threads() == 2
    assert one == two, f"{kind} path, {optimizer}, {dtype}: weights depend on the thread count"


def test_different_seeds_do_differ():
    """The hash is sensitive: another shuffling seed gives other weights."""
    X, y = namespace["data"]()
    a, b = build("fast"), build("fast")
    a.fit(X, y, epochs=1, batch_size=64, seed=1, verbose=0)
    b.fit(X, y, epochs=1, batch_size=64, seed=2, verbose=0)
    assert not np.array_equal(a.state_dict()["0.W"], b.state_dict()["0.W"])


def test_separate_processes_agree():
    """Fresh interpreters (and 1 vs 2 OpenMP threads from the environment) give the same bits."""
    code = TRAIN + "\nprint(train('fast', 'adam'), train('python', 'sgd'))\n"
    outs = []
    for threads in ("1", "2", "2"):
        env = {"OMP_NUM_THREADS": threads, "PATH": "/usr/bin:/bin"}
        import os
        env.update({k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME", "LD_LIBRARY_PATH")})
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(r.stdout.split())
    assert outs[0] == outs[1] == outs[2]
    assert outs[0] == [train("fast", "adam"), train("python", "sgd")]
