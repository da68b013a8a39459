"""Threads and interrupts: separate models trained at the same time from Python threads (the GIL
is released inside the kernels, so they really run together) end with exactly the weights they
get alone; a second thread calling into a model that is busy gets a clear RuntimeError; Ctrl-C
(a real SIGINT to a training process) stops fit at a batch boundary with a consistent, savable
model."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import blockprop as bp
from blockprop.nn import Dense, ReLU, Sequential, Tanh
from blockprop.optim import SGD, Adam


def data(seed=0, n=2048, features=32, classes=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features)).astype(np.float32)
    return X, np.abs(X[:, :classes]).argmax(axis=1)


def build(kind, seed):
    if kind == "fast":
        return Sequential(Dense(32, 128, "relu", seed=seed), Dense(128, 5, seed=seed + 1))
    return Sequential(Dense(32, 128, seed=seed), Tanh(), ReLU(), Dense(128, 5, seed=seed + 1))


def trained(kind, seed, epochs=3):
    m = build(kind, seed)
    X, y = data(seed)
    opt = SGD(0.05, momentum=0.9) if seed % 2 else Adam(1e-3)
    m.fit(X, y, epochs=epochs, batch_size=32, optimizer=opt, seed=seed, verbose=0)
    return m.state_dict()


@pytest.mark.parametrize("kind", ["fast", "python"])
def test_models_trained_in_parallel_threads_match_alone(kind):
    seeds = [1, 2, 3, 4]
    alone = {s: trained(kind, s) for s in seeds}
    together, errors = {}, []

    def work(s):
        try:
            together[s] = trained(kind, s)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    for s in seeds:
        for k in alone[s]:
            assert np.array_equal(alone[s][k], together[s][k]), f"{kind} model {s}: {k} differs in a thread"


def _wait_until_busy(model, thread, timeout=60.0):
    deadline = time.monotonic() + timeout
    while model._owner is None and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert model._owner is not None, "the training thread never entered fit"


@pytest.mark.parametrize("call", ["fit", "train_step", "predict", "predict_proba", "evaluate", "save"])
def test_a_busy_model_refuses_a_second_thread(call, tmp_path):
    X, y = data(0, n=4096)
    model = build("python", 0)
    done = threading.Event()
    trainer = threading.Thread(target=lambda: (model.fit(X, y, epochs=8, batch_size=16, verbose=0), done.set()))
    trainer.start()
    try:
        _wait_until_busy(model, trainer)
        args = {"fit": (X, y), "train_step": (X[:8], y[:8]), "predict": (X,), "predict_proba": (X,),
                "evaluate": (X, y), "save": (tmp_path / "m.npz",)}[call]
        kwargs = {"verbose": 0} if call == "fit" else {}
        with pytest.raises(RuntimeError, match="another thread"):
            getattr(model, call)(*args, **kwargs)
    finally:
        trainer.join(600)  # the refused call must not have disturbed the first thread
    assert done.is_set()
    # Free again: the same calls work once the first thread is done.
    assert model.predict(X[:4]).shape == (4, 5)
    model.fit(X[:64], y[:64], epochs=1, verbose=0)


def test_calls_from_one_thread_in_turn_are_fine():
    X, y = data(0, n=256)
    model = build("fast", 0)
    results = []
    for _ in range(3):
        t = threading.Thread(target=lambda: results.append(model.fit(X, y, epochs=1, verbose=0)))
        t.start()
        t.join()
    assert len(results) == 3 and model.progress.epochs == 3


INTERRUPTED = textwrap.dedent("""
    import sys, numpy as np
    from blockprop.nn import Dense, ReLU, Sequential, Tanh
    from blockprop.optim import SGD
    kind, path = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 64)).astype(np.float32)
    y = np.abs(X[:, :4]).argmax(axis=1)
    if kind == "fast":
        m = Sequential(Dense(64, 256, "relu", seed=0), Dense(256, 4, seed=1))
    else:
        m = Sequential(Dense(64, 256, seed=0), Tanh(), ReLU(), Dense(256, 4, seed=1))
    print("ready", flush=True)
    try:
        m.fit(X, y, epochs=1000, batch_size=32, optimizer=SGD(0.01, momentum=0.9), seed=0, verbose=2)
        print("finished", flush=True)
    except KeyboardInterrupt:
        m.save(path)
        print("interrupted", m.progress.epochs, m.progress.updates, flush=True)
""")


@pytest.mark.parametrize("kind", ["fast", "python"])
def test_sigint_stops_a_real_training_run_at_a_batch_boundary(kind, tmp_path):
    path = tmp_path / "interrupted.npz"
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED, kind, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        first = proc.stdout.readline()  # verbose=2 prints a line after each epoch
        assert first.startswith("Epoch 1/1000"), first
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    last = out.strip().splitlines()[-1].split()
    assert last[0] == "interrupted", out[-500:]
    epochs, updates = int(last[1]), int(last[2])
    steps = -(-20000 // 32)
    assert epochs >= 2 and updates >= steps  # past the first epoch, inside a later one
    model = bp.load(path)
    # Consistent: the saved progress is what the process reported, every weight finite, the
    # optimizer state present for every parameter, and training resumes from the file.
    assert (model.progress.epochs, model.progress.updates) == (epochs, updates)
    for k, v in model.state_dict().items():
        assert np.isfinite(v).all(), k
    assert set(model.optimizer.state) == set(model.parameters())
    X = np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32)
    model.fit(X, np.zeros(64, int), epochs=1, verbose=0)
    assert model.progress.updates == updates + 2
