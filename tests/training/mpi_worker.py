"""One MPI rank of tests/training/test_distributed.py: ``mpiexec -n K python mpi_worker.py SCENARIO OUTDIR``.

Every rank writes what it saw to OUTDIR (``rank{r}.json``, weights as ``.npz``); the test compares
that with a single-process run. ``build`` and ``dataset`` are shared with the test, so both sides
train the same model on the same data. Importing this module does not import mpi4py.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any, Dict

import numpy as np

import blockprop as bp
from blockprop import nn

# (name, dtype, optimizer factory, sharded, shuffle): the runs of the "train" scenario.
CONFIGS = {
    "sgd64": ("float64", lambda: bp.optim.SGD(0.1, momentum=0.9), False, True),
    "adam64": ("float64", lambda: bp.optim.Adam(0.01), False, True),
    "sharded64": ("float64", lambda: bp.optim.SGD(0.1, momentum=0.9), True, False),
    "sgd32": ("float32", lambda: bp.optim.SGD(0.1, momentum=0.9), False, True),
}
N, BATCH, EPOCHS, SEED = 203, 8, 2, 7  # 203 rows: global batches that do not divide evenly


def build(dtype: str, seed: int = 1) -> Any:
    """A small classifier: 5 → 16 (relu) → 3."""
    return bp.Sequential(bp.Dense(5, 16, "relu", seed=seed, dtype=dtype),
                         bp.Dense(16, 3, seed=seed + 1, dtype=dtype))


def dataset(n: int = N):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    return X, y


def _write(out: str, r: int, name: str, payload: Dict[str, Any]) -> None:
    with open(os.path.join(out, f"{name}.rank{r}.json"), "w") as f:
        json.dump(payload, f)


def train(out: str) -> None:
    from blockprop import distributed as dist
    r, k = dist.rank(), dist.size()
    X, y = dataset()
    for name, (dtype, make_opt, sharded, shuffle) in CONFIGS.items():
        # Ranks other than 0 start from different weights: the broadcast must fix that.
        model = build(dtype, seed=1 if r == 0 else 100 + r)
        Xr, yr = (dist.shard(X), dist.shard(y)) if sharded else (X, y)
        history = dist.fit(model, Xr, yr, epochs=EPOCHS, batch_size=BATCH, optimizer=make_opt(),
                           seed=SEED, shuffle=shuffle, sharded=sharded, verbose=2 if name == "sgd64" else 0,
                           validation_data=(Xr[:50], yr[:50]) if not sharded else None,
                           checkpoint=os.path.join(out, f"{name}.ckpt{r}.bp"))
        scores = dist.evaluate(model, Xr, yr, sharded=sharded)
        np.savez(os.path.join(out, f"{name}.rank{r}.npz"), **model.state_dict())
        _write(out, r, name, {"history": history.history, "evaluate": scores, "size": k,
                              "updates": model.progress.updates, "threads": bp.get_num_threads()})


def layers(out: str) -> None:
    """BatchNorm, Dropout (a different random seed per rank) and callbacks: rank 1 alone asks to
    stop after the second epoch, and every rank gives ModelCheckpoint a path of its own."""
    from blockprop import callbacks as cb
    from blockprop import distributed as dist
    r = dist.rank()
    X, y = dataset()
    model = bp.Sequential(bp.Dense(5, 16, seed=1 + r, dtype="float64"), nn.BatchNorm1d(16, dtype="float64"),
                          nn.ReLU(), nn.Dropout(0.2), bp.Dense(16, 3, seed=2, dtype="float64"))

    def stop(epoch: int, logs: Dict[str, float]) -> None:
        if r == 1 and epoch == 1:
            model.stop_training = True
    history = dist.fit(model, X, y, epochs=5, batch_size=BATCH, seed=SEED, verbose=0,
                       callbacks=[cb.ModelCheckpoint(os.path.join(out, f"layers.ckpt{r}.bp")), stop])
    np.savez(os.path.join(out, f"layers.rank{r}.npz"), **model.state_dict())
    _write(out, r, "layers", {"epochs": len(history.epoch), "training": model.training})


def fault(out: str, kind: str) -> None:
    """Rank 1 fails (bad labels before training, MemoryError or Ctrl-C at its 3rd step, other
    settings); every rank records the exception it got and re-raises it, so the job exits
    non-zero without hanging."""
    from blockprop import distributed as dist
    r = dist.rank()
    X, y = dataset()
    model = build("float64")
    epochs = 2
    if kind == "labels" and r == 1:
        y = y.copy()
        y[17] = 9
    if kind == "step" and r == 1:
        model.layers[1].forward = _fail_at(model.layers[1].forward, call=3)
    if kind == "interrupt" and r == 1:  # Ctrl-C reaching one rank only
        model.layers[1].forward = _fail_at(model.layers[1].forward, call=3, interrupt=True)
    if kind == "settings" and r == 1:
        epochs = 3
    try:
        dist.fit(model, X, y, epochs=epochs, batch_size=BATCH, seed=SEED, verbose=0)
    except BaseException as e:
        _write(out, r, "fault", {"type": type(e).__name__, "message": str(e),
                                 "updates": model.progress.updates})
        raise
    _write(out, r, "fault", {"type": None, "message": "", "updates": model.progress.updates})


def _fail_at(forward: Any, call: int, interrupt: bool = False) -> Any:
    """``forward`` that runs out of memory (or gets a SIGINT) on its ``call``-th use (same layer,
    same architecture)."""
    calls = [0]

    def failing(x: np.ndarray) -> np.ndarray:
        calls[0] += 1
        if calls[0] == call:
            if interrupt:
                signal.raise_signal(signal.SIGINT)
            else:
                raise MemoryError("simulated: cannot allocate the activations")
        return forward(x)
    return failing


def matrix(out: str) -> None:
    """Every case of step_cases.py through distributed.fit: on one rank all of them, with the
    one-process batch; on K ranks those whose result does not depend on the split, with batch
    BATCH / K per rank (the same global batches)."""
    import step_cases as C
    from blockprop import distributed as dist
    r, k = dist.rank(), dist.size()
    weights = {}
    for name, case in C.CASES.items():
        if k == 1 or case.splits:
            model = C.distributed_fit(case, C.BATCH // k)
            weights.update({f"{name}|{key}": a for key, a in model.state_dict().items()})
    np.savez(os.path.join(out, f"matrix.rank{r}.npz"), **weights)


if __name__ == "__main__":
    scenario, outdir = sys.argv[1], sys.argv[2]
    if scenario == "train":
        train(outdir)
    elif scenario == "matrix":
        matrix(outdir)
    elif scenario == "layers":
        layers(outdir)
    else:
        fault(outdir, scenario.split("-", 1)[1])
