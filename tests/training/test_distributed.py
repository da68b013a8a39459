"""blockprop.distributed: data-parallel training over MPI ranks, run for real with ``mpiexec``.

Each test launches tests/mpi_worker.py on 1, 2 or 3 ranks (oversubscribing this machine's cores,
which MPICH allows, also as root) and compares what every rank wrote with a single-process run:
N ranks with per-rank batch B must give the weights of one process with batch N·B. Every launch
has a timeout, so a rank stuck in a collective fails the test instead of hanging it.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import blockprop as bp
from blockprop import distributed  # imports no mpi4py (see the test below)
from blockprop.training import EpochOrders

HERE = Path(__file__).resolve().parent
WORKER = HERE / "mpi_worker.py"
TIMEOUT = 180  # seconds per launch: generous for a loaded 2-core machine; a hang hits it


def _load_worker():
    spec = importlib.util.spec_from_file_location("mpi_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


W = _load_worker()


def _mpiexec() -> str:
    """The mpiexec next to this Python (the mpich wheel installs it in the venv's bin/), else PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else (shutil.which("mpiexec") or "")


def _missing() -> str:
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'blockprop[mpi]')"
    if not _mpiexec():
        return "no mpiexec next to this Python or on PATH (pip install mpich)"
    return ""


@pytest.fixture(scope="module", autouse=True)
def _needs_mpi():
    reason = _missing()
    if reason:
        if os.environ.get("CI"):  # CI's test venv installs the mpi extra: never skip there
            pytest.fail(f"distributed tests cannot run in CI: {reason}")
        pytest.skip(reason)


def launch(ranks: int, scenario: str, out: Path, mpi: bool = True) -> subprocess.CompletedProcess:
    """Run the worker on ``ranks`` processes (``mpi=False``: one plain process, no mpiexec)."""
    cmd = [sys.executable, str(WORKER), scenario, str(out)]
    if mpi:
        cmd = [_mpiexec(), "-n", str(ranks)] + cmd
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("OMP_NUM_THREADS", None)  # let each rank take cores // ranks
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} hung for {TIMEOUT} s\nstdout:\n{stdout}\nstderr:\n{stderr[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _results(out: Path, name: str, ranks: int):
    records = [json.loads((out / f"{name}.rank{r}.json").read_text()) for r in range(ranks)]
    weights = [dict(np.load(out / f"{name}.rank{r}.npz")) for r in range(ranks)]
    return records, weights


def _reference(name: str, ranks: int):
    """One process, batch ranks·B, same seed: the weights and history distributed training must give."""
    dtype, make_opt, sharded, shuffle = W.CONFIGS[name]
    X, y = W.dataset()
    model = W.build(dtype)
    if not sharded:
        history = model.fit(X, y, epochs=W.EPOCHS, batch_size=ranks * W.BATCH, optimizer=make_opt(),
                            seed=W.SEED, shuffle=shuffle, validation_data=(X[:50], y[:50]), verbose=0)
        return model, X, y, history.history
    # Sharded, unshuffled: step s trains on rows [sB, (s+1)B) of every rank's block at once.
    blocks = [(r * len(X) // ranks, (r + 1) * len(X) // ranks) for r in range(ranks)]
    steps = max(-(-(b - a) // W.BATCH) for a, b in blocks)
    model.optimizer = make_opt()
    for _ in range(W.EPOCHS):
        for s in range(steps):
            rows = np.concatenate([np.arange(a, b)[s * W.BATCH:(s + 1) * W.BATCH] for a, b in blocks])
            model.train_step(X[rows], y[rows])
    return model, X, y, None


def _max_error(got, want) -> float:
    return float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))))


@pytest.fixture(scope="module", params=[1, 2, 3], ids=lambda k: f"{k}ranks")
def trained(request, tmp_path_factory):
    """Every CONFIGS run on ``ranks`` MPI processes (one launch per rank count)."""
    ranks = request.param
    out = tmp_path_factory.mktemp(f"mpi{ranks}")
    proc = launch(ranks, "train", out)
    assert proc.returncode == 0, f"mpiexec -n {ranks} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return ranks, out, proc


@pytest.mark.parametrize("name", list(W.CONFIGS))
def test_n_ranks_match_one_process_with_n_times_the_batch(trained, name):
    ranks, out, _ = trained
    records, weights = _results(out, name, ranks)
    model, X, y, history = _reference(name, ranks)
    dtype = W.CONFIGS[name][0]
    # float64 sums the batch in a different order only; float32 also rounds the shares.
    tol = 1e-11 if dtype == "float64" else 2e-5
    want = model.state_dict()
    for r in range(ranks):
        for key in want:
            err = _max_error(weights[r][key], want[key])
            where = (f"{name} {key}: rank {r} of {ranks}, shape={want[key].shape}, dtype={dtype}, "
                     f"isa={bp.isa()}, max abs error {err:.3g}")
            if ranks == 1 and history is not None:
                # One rank runs the very steps of the single-process loop: bit-identical.
                assert np.array_equal(weights[r][key], want[key]), where
            assert err <= tol * max(1.0, float(np.max(np.abs(want[key])))), where
            # The replicas never drift apart: every rank holds rank 0's weights exactly.
            assert np.array_equal(weights[r][key], weights[0][key]), f"{where}: replicas differ"
    blocks = [(r + 1) * W.N // ranks - r * W.N // ranks for r in range(ranks)]
    steps = (max(-(-b // W.BATCH) for b in blocks) if W.CONFIGS[name][2]
             else -(-W.N // (ranks * W.BATCH)))
    for record in records:
        assert record["size"] == ranks
        assert record["updates"] == W.EPOCHS * steps, record
        same = {key: v for key, v in record["history"].items() if key != "time"}
        assert same == {key: v for key, v in records[0]["history"].items() if key != "time"}, (
            "ranks report different histories")
    if history is not None:  # the per-epoch metrics are those of the whole data set
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
            np.testing.assert_allclose(records[0]["history"][key], history[key], rtol=1e-4,
                                       err_msg=f"{name}: history {key}")


@pytest.mark.parametrize("name", ["sgd64", "sharded64"])
def test_evaluate_reduces_over_ranks(trained, name):
    ranks, out, _ = trained
    records, weights = _results(out, name, ranks)
    dtype = W.CONFIGS[name][0]
    model = W.build(dtype)
    model.load_state_dict(weights[0])
    X, y = W.dataset()
    want = model.evaluate(X, y)
    for r, record in enumerate(records):
        assert record["evaluate"].keys() == want.keys()
        assert record["evaluate"]["accuracy"] == want["accuracy"], (r, record["evaluate"], want)
        assert abs(record["evaluate"]["loss"] - want["loss"]) <= 1e-12 * max(1.0, want["loss"]), (
            r, record["evaluate"], want)


def test_only_rank_0_prints_and_writes_checkpoints(trained):
    ranks, out, proc = trained
    # verbose=2 prints one line per epoch: once per epoch in all, not once per rank.
    lines = [line for line in proc.stdout.splitlines() if line.startswith("Epoch ")]
    assert len(lines) == W.EPOCHS, proc.stdout
    written = sorted(p.name for p in out.glob("sgd64.ckpt*.bp"))
    assert written == ["sgd64.ckpt0.bp"], written
    saved = bp.load(str(out / "sgd64.ckpt0.bp"))
    _, weights = _results(out, "sgd64", ranks)
    for key, value in saved.state_dict().items():
        assert np.array_equal(value, weights[0][key]), key


def test_threads_split_cores_over_ranks(trained):
    ranks, out, _ = trained
    records, _ = _results(out, "sgd64", ranks)
    if ranks > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        assert [r["threads"] for r in records] == [max(1, cores // ranks)] * ranks


def test_buffers_callbacks_and_per_rank_dropout_seeds(tmp_path):
    """BatchNorm running statistics end equal on every rank (averaged), a stop requested by one
    rank's callback stops all after the same epoch, and only rank 0 runs ModelCheckpoint."""
    ranks = 2
    proc = launch(ranks, "layers", tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    records, weights = _results(tmp_path, "layers", ranks)
    assert [r["epochs"] for r in records] == [2, 2], records
    assert [r["training"] for r in records] == [W.build("float64").training] * 2  # mode restored
    assert "1.running_mean" in weights[0]
    for key in weights[0]:
        assert np.array_equal(weights[1][key], weights[0][key]), f"{key} differs between ranks"
    assert not np.allclose(weights[0]["1.running_var"], 1.0), "running statistics never updated"
    assert sorted(p.name for p in tmp_path.glob("layers.ckpt*.bp")) == ["layers.ckpt0.bp"]


def test_runs_without_mpiexec_as_one_rank(tmp_path):
    proc = launch(1, "train", tmp_path, mpi=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    model, *_ = _reference("adam64", 1)
    _, weights = _results(tmp_path, "adam64", 1)
    for key, value in model.state_dict().items():
        assert np.array_equal(weights[0][key], value), key


@pytest.mark.parametrize("kind, expect", [
    ("labels", ("rank 1 raised ValueError: ", "labels must lie in [0, 3)")),
    ("step", ("rank 1 raised MemoryError: simulated: cannot allocate the activations",)),
])
def test_a_failing_rank_stops_every_rank(tmp_path, kind, expect):
    ranks = 3
    proc = launch(ranks, f"fault-{kind}", tmp_path)
    assert proc.returncode != 0, "the job must fail"
    records = [json.loads((tmp_path / f"fault.rank{r}.json").read_text()) for r in range(ranks)]
    for r, record in enumerate(records):
        assert record["type"] == "DistributedError", (r, record)
        assert all(part in record["message"] for part in expect), (r, record["message"])
        assert "stopped on all 3 ranks" in record["message"], record["message"]
    # Every rank stopped at the same step: the failing one (its 3rd forward) was not applied.
    assert {r["updates"] for r in records} == {0 if kind == "labels" else 2}, records


def test_ctrl_c_on_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    proc = launch(2, "fault-interrupt", tmp_path)
    assert proc.returncode != 0
    records = [json.loads((tmp_path / f"fault.rank{r}.json").read_text()) for r in range(2)]
    # Rank 1 is interrupted during its 3rd step: that step completes everywhere, then all stop.
    assert [(r["type"], r["updates"]) for r in records] == [("KeyboardInterrupt", 3)] * 2, records


def test_ranks_called_with_different_settings_all_raise(tmp_path):
    proc = launch(2, "fault-settings", tmp_path)
    assert proc.returncode != 0
    for r in range(2):
        record = json.loads((tmp_path / f"fault.rank{r}.json").read_text())
        assert record["type"] == "ValueError", record
        assert "every rank must pass the same epochs" in record["message"], record


def test_importing_blockprop_does_not_import_mpi4py():
    code = ("import sys, blockprop, blockprop.distributed; "
            "assert 'mpi4py' not in sys.modules, sorted(m for m in sys.modules if 'mpi' in m)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_shard_splits_rows_evenly():
    pytest.importorskip("mpi4py")
    code = ("from blockprop import distributed as d; import numpy as np; "
            "x = np.arange(10); s = d.shard(x); assert s.base is x and len(s) == 10; "
            "assert d.shard(7) == slice(0, 7) and d.size() == 1 and d.is_root()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_every_option_of_the_training_step_trains_alike_on_n_ranks(ranks, tmp_path):
    """The option matrix of tests/training/step_cases.py (every activation and layer kind, L1/L2,
    Dropout, BatchNorm1d, LayerNorm, each optimizer and schedule): one rank gives model.fit's
    weights bit for bit; 2 and 3 ranks × batch B give those of one process × N·B within 1e-9 for
    every case whose gradients do not depend on the split (no dropout, no batch statistics)."""
    import step_cases as C
    proc = launch(ranks, "matrix", tmp_path)
    assert proc.returncode == 0, f"mpiexec -n {ranks} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    got = [dict(np.load(tmp_path / f"matrix.rank{r}.npz")) for r in range(ranks)]
    checked = 0
    for name, case in C.CASES.items():
        if ranks > 1 and not case.splits:
            continue
        want = C.fit(case).state_dict()
        for key, w in want.items():
            for r in range(ranks):
                g = got[r][f"{name}|{key}"]
                err = _max_error(g, w)
                where = (f"{name} {key}: rank {r} of {ranks}, shape={w.shape}, dtype={w.dtype}, "
                         f"isa={bp.isa()}, max abs error {err:.3g}")
                if ranks == 1:
                    assert np.array_equal(g, w), where
                assert err <= 1e-9 * max(1.0, float(np.max(np.abs(w)))), where
                assert np.array_equal(g, got[0][f"{name}|{key}"]), f"{where}: replicas differ"
        checked += 1
    assert checked == (len(C.CASES) if ranks == 1 else sum(c.splits for c in C.CASES.values()))


class _OneRank:
    """The collectives distributed.fit calls before training, for one rank, in this process (no
    MPI): enough for the checks that refuse a call up front."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def allgather(self, value):
        return [value]


def test_given_epoch_orders_are_refused_up_front():
    """The ranks draw their rows of each global batch themselves: EpochOrders (fit's given
    orders) would be silently ignored, so it is refused before anything trains."""
    X, y = np.zeros((8, 3), np.float32), np.zeros(8, np.int64)
    model = bp.Sequential(bp.Dense(3, 2, seed=0))
    before = model.state_dict()
    with pytest.raises(distributed.DistributedError, match="shuffle must be True or False"):
        distributed.fit(model, X, y, shuffle=EpochOrders([np.arange(8)]), comm=_OneRank(), verbose=0)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
