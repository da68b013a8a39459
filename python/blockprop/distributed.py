"""Data-parallel training across processes and machines with MPI (through mpi4py).

Synchronous data parallelism: every rank (process) holds a full replica of the model, computes the
gradients of its shard of each global batch with the core (``forward`` / loss / ``backward``), and
one ``Allreduce`` over a single contiguous buffer holding every parameter's gradient averages them
(each rank weighted by its share of the batch, so uneven batches are exact) before the identical
optimizer update on every rank. The replicas therefore stay equal, and N ranks with ``batch_size``
B train like one process with batch N·B::

    # mpiexec -n 4 python -m mpi4py train.py
    from blockprop import distributed
    model = ...                                   # built the same way on every rank
    distributed.fit(model, X, y, epochs=5, batch_size=64, seed=0)   # 4 × 64 rows per update
    print(distributed.evaluate(model, X_test, y_test))              # the same on every rank

Data: by default every rank passes the whole data set (loaded or memory-mapped by each process,
never sent over MPI) and trains on its slice of every globally shuffled batch. With
``sharded=True`` each rank passes only its own rows (``distributed.shard`` picks a contiguous
block), shuffles them locally, and no process ever holds the whole set.

Faults: a rank whose step raises (bad data, ``MemoryError``) says so in the very ``Allreduce`` of
that step (a flag next to the gradients), so every rank stops at the same point with a
:class:`DistributedError` naming the failing ranks and their errors, instead of waiting forever
in a collective. Errors outside blockprop still need ``python -m mpi4py script.py``, which aborts
the whole job on an uncaught exception.

mpi4py is imported on first use, never by ``import blockprop``; install it with
``pip install mpi4py mpich`` (both from PyPI; ``pip install '.[mpi]'`` in a clone) or against a system MPI.
"""
from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _runtime, step, training
from . import callbacks as callbacks_module
from .model import SEED_LIMIT, History
from .training import _count, _Mode, as_inputs, as_targets, as_validation, resolve_settings

__all__ = ["DistributedError", "DataParallel", "fit", "evaluate", "save", "shard", "rank", "size",
           "is_root", "barrier", "broadcast_parameters", "set_threads_per_rank"]

_FLAGS = 2  # slots after the gradients in the step buffer: [error, stop requested]
_WHAT = "distributed fit"


class DistributedError(RuntimeError):
    """Raised on every rank when one or more ranks failed during a collective operation."""


# --- MPI basics --------------------------------------------------------------------------------
def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("blockprop.distributed needs mpi4py and an MPI library: "
                          "pip install mpi4py mpich (or mpi4py built against a system MPI)"
                          f" ({e})") from None
    return MPI


def _comm(comm: Any = None) -> Any:
    return _mpi().COMM_WORLD if comm is None else comm


def rank(comm: Any = None) -> int:
    """This process's rank in ``comm`` (default ``MPI.COMM_WORLD``)."""
    return _comm(comm).Get_rank()


def size(comm: Any = None) -> int:
    """How many processes ``comm`` (default ``MPI.COMM_WORLD``) holds."""
    return _comm(comm).Get_size()


def is_root(comm: Any = None) -> bool:
    """Whether this is rank 0, the one that prints and writes files."""
    return rank(comm) == 0


def barrier(comm: Any = None) -> None:
    """Wait until every rank of ``comm`` gets here."""
    _comm(comm).Barrier()


def shard(data: Union[int, Any], comm: Any = None) -> Any:
    """This rank's contiguous block of ``data`` (rows ``[r·n/k, (r+1)·n/k)``, sizes differing by at
    most one): a ``slice`` when ``data`` is a length ``n``, else ``data[slice]`` (a view for arrays
    and memory maps, so nothing is copied)."""
    c = _comm(comm)
    n = data if isinstance(data, (int, np.integer)) and not isinstance(data, bool) else len(data)
    r, k = c.Get_rank(), c.Get_size()
    rows = slice(r * int(n) // k, (r + 1) * int(n) // k)
    return rows if isinstance(data, (int, np.integer)) else data[rows]


def set_threads_per_rank(threads: Optional[int] = None, comm: Any = None) -> int:
    """Set this rank's kernel threads and return the count (collective: every rank calls it).

    ``None`` (what :func:`fit` does): keep ``OMP_NUM_THREADS`` when the environment sets it, else
    split this machine's cores evenly over the ranks running on it (at least one thread each), so
    2 ranks on 2 cores run 1 thread each instead of fighting over 4.
    """
    c = _comm(comm)
    local = c.Split_type(_mpi().COMM_TYPE_SHARED)  # the ranks on this machine
    try:
        per_machine = local.Get_size()
    finally:
        local.Free()
    if threads is None:
        if os.environ.get("OMP_NUM_THREADS", "").strip():
            return _runtime.get_num_threads()
        cores = os.cpu_count() or 1
        if hasattr(os, "sched_getaffinity"):  # a rank pinned to fewer cores keeps to those
            cores = min(cores, len(os.sched_getaffinity(0)) * per_machine)
        threads = max(1, cores // per_machine)
    _runtime.set_num_threads(_count("threads", threads, 1))
    return _runtime.get_num_threads()


# --- agreeing on errors ------------------------------------------------------------------------
def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _raise_everywhere(comm: Any, err: Optional[BaseException], what: str) -> None:
    """Called by every rank once a collective flag says some rank failed: gathers the failures'
    descriptions and raises the same DistributedError on every rank (chained to the local one)."""
    messages = comm.allgather(None if err is None else _describe(err))
    failed = [(r, m) for r, m in enumerate(messages) if m is not None]
    detail = "; ".join(f"rank {r} raised {m}" for r, m in failed)
    ranks = ", ".join(str(r) for r, _ in failed)
    raise DistributedError(f"{what} stopped on all {comm.Get_size()} ranks because rank"
                           f"{'s' if len(failed) > 1 else ''} {ranks} failed: {detail}") from err


def _check_all(comm: Any, err: Optional[BaseException], what: str) -> None:
    """A collective error check: raises everywhere if ``err`` is set on any rank."""
    if comm.allreduce(0 if err is None else 1) > 0:
        _raise_everywhere(comm, err, what)


def _agree(comm: Any, err: Optional[BaseException], signature: Dict[str, Any], what: str) -> None:
    """Every rank gets the same error when any rank failed to prepare, or when the ranks were
    called with different settings (which would otherwise hang or silently diverge)."""
    gathered = comm.allgather((None if err is None else _describe(err), signature))
    if any(m is not None for m, _ in gathered):
        _raise_everywhere(comm, err, what)
    for key, value in signature.items():
        differ = [r for r, (_, s) in enumerate(gathered) if s.get(key) != gathered[0][1].get(key)]
        if differ:
            raise ValueError(f"{what}: every rank must pass the same {key}; rank 0 has "
                             f"{gathered[0][1].get(key)!r} but rank {differ[0]} has "
                             f"{gathered[differ[0]][1].get(key)!r}")


# --- one replica ------------------------------------------------------------------------------
class DataParallel:
    """One rank's replica of ``model``: the single contiguous gradient buffer and the collectives.

    The buffer holds every parameter's gradient back to back, then two flag slots (an error and a
    stop request), all in the model's dtype: one ``Allreduce`` per step moves the gradients and the
    flags together. After it, each parameter's ``grad`` is a view into the buffer, so the
    optimizer reads the averaged gradients in place. (The core's backward returns fresh gradient
    arrays, so they are copied in once, scaled by the rank's share of the batch: one pass over
    the parameters, cheap next to the GEMMs of the backward.)
    """

    def __init__(self, model: Any, comm: Any = None):
        self.model, self.comm, self.mpi = model, _comm(comm), _mpi()
        self.params = list(model.parameters().items())
        sizes = [p.data.size for _, p in self.params]
        self.count = int(sum(sizes))
        self.buffer = np.zeros(self.count + _FLAGS, dtype=model.dtype)
        offsets = np.cumsum([0] + sizes)
        self.views = [self.buffer[a:b].reshape(p.data.shape)
                      for (_, p), a, b in zip(self.params, offsets[:-1], offsets[1:])]

    @property
    def nbytes(self) -> int:
        """Bytes of the gradient buffer each rank contributes to every step's Allreduce."""
        return self.buffer.nbytes

    def broadcast_parameters(self, root: int = 0) -> None:
        """Copy ``root``'s weights to every rank with one ``Bcast`` of the packed parameters."""
        weights = self.buffer[:self.count]
        for (_, p), view in zip(self.params, self.views):
            view[...] = p.data
        self.comm.Bcast(weights, root=root)
        for (_, p), view in zip(self.params, self.views):
            p.data[...] = view

    def gradients(self, X: np.ndarray, Y: np.ndarray, loss_fn: Any, share: float) -> Tuple[float, Any]:
        """The first half of the training step (:func:`blockprop.step.gradients`: forward, loss,
        backward, weight penalties, this update's dropout masks) on this rank's rows, packed into
        the buffer times ``share`` (this rank's rows / the global batch's rows); returns (loss
        with penalties, predictions). The penalties' gradients, scaled by every rank's share,
        add up to one whole penalty gradient."""
        value, pred = step.gradients(self.model, X, Y, loss_fn)
        for (_, p), view in zip(self.params, self.views):
            if share == 1.0:
                np.copyto(view, p.grad)  # one rank: bit-identical to the single-process step
            else:
                np.multiply(p.grad, share, out=view)
        return value, pred

    def no_gradients(self) -> None:
        """This rank has no rows in the current batch: it contributes zeros."""
        self.buffer[:self.count] = 0

    def allreduce(self, error: Optional[BaseException] = None, stop: bool = False,
                  what: str = "training") -> bool:
        """Sum the buffer over the ranks (gradients and flags in one message) and point every
        ``grad`` at its averaged slice. Raises :class:`DistributedError` on every rank when any
        rank passed an ``error``; returns whether any rank asked to stop."""
        self.buffer[self.count] = 0 if error is None else 1
        self.buffer[self.count + 1] = 1 if stop else 0
        self.comm.Allreduce(self.mpi.IN_PLACE, self.buffer, op=self.mpi.SUM)
        if self.buffer[self.count] > 0:
            _raise_everywhere(self.comm, error, what)
        for (_, p), view in zip(self.params, self.views):
            p.grad = view
        return bool(self.buffer[self.count + 1] > 0)


def broadcast_parameters(model: Any, root: int = 0, comm: Any = None) -> None:
    """Give every rank ``root``'s weights and buffers (collective)."""
    DataParallel(model, comm).broadcast_parameters(root)
    _sync_buffers(model, _comm(comm), average=False, root=root)


def _buffers(model: Any) -> List[np.ndarray]:
    return list(model.buffers().values()) if hasattr(model, "buffers") else []


def _sync_buffers(model: Any, comm: Any, average: bool, root: int = 0) -> None:
    """Make the layers' untrained state (BatchNorm running statistics) equal on every rank: the
    mean over the ranks, or ``root``'s; one message for all of them."""
    arrays = _buffers(model)
    if not arrays or comm.Get_size() == 1:
        return
    packed = np.concatenate([a.ravel().astype(np.float64) for a in arrays])
    if average:
        comm.Allreduce(_mpi().IN_PLACE, packed, op=_mpi().SUM)
        packed /= comm.Get_size()
    else:
        comm.Bcast(packed, root=root)
    offset = 0
    for a in arrays:
        a[...] = packed[offset:offset + a.size].reshape(a.shape)
        offset += a.size


# --- which rows each rank trains on -------------------------------------------------------------
class _Rows:
    """Per step: this rank's row indices and the global batch's row count.

    Replicated data: every rank draws the same permutation of all n rows (as ``Sequential.fit``
    does), cuts global batches of ``k·B`` rows and takes its contiguous part of each. Sharded data:
    each rank permutes its own rows and takes B per step; a rank that has run out contributes
    nothing while the others finish.
    """

    def __init__(self, sharded: bool, counts: Sequence[int], batch_size: int, r: int, k: int):
        self.sharded, self.counts, self.B, self.r, self.k = sharded, list(counts), batch_size, r, k
        self.global_batch = batch_size * (k if not sharded else 1)
        n = counts[r]
        self.steps = (max(math.ceil(c / batch_size) for c in counts) if sharded
                      else math.ceil(n / self.global_batch))
        self.order: Optional[np.ndarray] = None

    def shuffle(self, seed: int, epoch: int, shuffle: bool) -> None:
        n = self.counts[self.r]
        key = [seed, epoch, self.r] if self.sharded else [seed, epoch]
        self.order = np.random.default_rng(key).permutation(n) if shuffle else np.arange(n)

    def step(self, s: int) -> Tuple[np.ndarray, int]:
        if self.sharded:
            mine = self.order[s * self.B:(s + 1) * self.B]  # type: ignore[index]  # set by shuffle
            total = sum(min(self.B, max(0, c - s * self.B)) for c in self.counts)
            return mine, total
        batch = self.order[s * self.global_batch:(s + 1) * self.global_batch]  # type: ignore[index]
        m = len(batch)
        return batch[self.r * m // self.k:(self.r + 1) * m // self.k], m


# --- fit ---------------------------------------------------------------------------------------
def _metrics(comm: Any, mpi: Any, loss_sum: float, correct: int, seen: int,
             error: Optional[BaseException], what: str) -> Tuple[float, int, int]:
    """Sums of (loss × rows, rows right, rows) over the ranks, with an error flag (float64)."""
    buf = np.array([loss_sum, correct, seen, 0.0 if error is None else 1.0])
    comm.Allreduce(mpi.IN_PLACE, buf, op=mpi.SUM)
    if buf[3] > 0:
        _raise_everywhere(comm, error, what)
    return float(buf[0]), int(round(buf[1])), int(round(buf[2]))


def _signature(model: Any, **settings: Any) -> Dict[str, Any]:
    # Layer types and array shapes, not repr: layers may hold per-rank random seeds (Dropout).
    sig = {"model architecture": [type(layer).__name__ for layer in model.layers],
           "dtype": model.dtype.name,
           "parameter shapes": [tuple(p.data.shape) for p in model.parameters().values()],
           "buffer shapes": [tuple(b.shape) for b in _buffers(model)]}
    sig.update(settings)
    return sig


def _describe_schedule(sched: Any) -> Optional[str]:
    # Only a repr without a memory address can be compared across processes.
    return repr(sched) if type(sched).__repr__ is not object.__repr__ else None


def fit(model: Any, X: Any, y: Any, epochs: int = 1, batch_size: int = 32, loss: Any = None,
        optimizer: Any = None, schedule: Any = None, validation_data: Any = None,
        shuffle: bool = True, seed: Optional[int] = None, verbose: int = 1,
        callbacks: Optional[List[Any]] = None, sharded: bool = False,
        checkpoint: Optional[str] = None, threads: Optional[int] = None, comm: Any = None) -> History:
    """Train ``model`` data-parallel on every rank of ``comm`` (collective: every rank calls it with
    the same settings) and return the per-epoch :class:`~blockprop.training.History`, the same on
    every rank (but for the timings) and also kept as ``model.history``.

    ``batch_size`` is per rank: each update averages the gradients of ``size()·batch_size`` rows,
    so with the same seed this trains exactly like ``model.fit(X, y, batch_size=size()·batch_size)``
    in one process (up to float rounding of the sum). ``sharded``: ``X, y`` are this rank's own rows
    (see the module doc) instead of the whole data set. Rank 0's weights, optimizer state and
    shuffling seed are broadcast first. ``loss``, ``optimizer``, ``schedule``, ``seed``, ``shuffle``
    and ``validation_data`` (whole or, with ``sharded``, this rank's part) mean what they mean in
    :meth:`Sequential.fit`. Only rank 0 shows progress (``verbose`` 1: a bar, 2: a line per epoch)
    and, given ``checkpoint``, saves the model there after every epoch. ``callbacks`` run on every
    rank with the same reduced metrics (so EarlyStopping and ReduceLROnPlateau decide alike; a stop
    on any rank stops all), except ``ModelCheckpoint``, which only rank 0 runs. Every rank runs
    the training step of ``model.fit`` (:mod:`blockprop.step`: weight penalties, dropout masks),
    so one rank gives ``model.fit``'s weights bit for bit. Layers' buffers (BatchNorm running
    statistics) start as rank 0's and are averaged over the ranks after every epoch; batch
    statistics and dropout masks are per rank, as in PyTorch's DDP, so with more than one rank
    such models do not reproduce a single process exactly. ``threads``: kernel threads
    per rank, by default this machine's cores split over its ranks (:func:`set_threads_per_rank`).
    A failure on any rank raises :class:`DistributedError` on all of them.
    """
    c = _comm(comm)
    r, k = c.Get_rank(), c.Get_size()
    what = _WHAT
    err: Optional[BaseException] = None
    sig: Dict[str, Any] = {}
    try:  # every check that could fail on one rank only, before any rank commits to training
        epochs, batch_size, loss_fn, opt, sched = resolve_settings(model, epochs, batch_size, loss,
                                                                   optimizer, schedule)
        if seed is not None:
            seed = _count("seed", seed, 0, SEED_LIMIT)  # what a saved model holds
        cbs = callbacks_module.prepare(callbacks)
        X = as_inputs(model, X)
        Y = as_targets(model, loss_fn, y, len(X))
        val = as_validation(model, loss_fn, validation_data)
        callbacks_module.check_monitors(cbs, has_validation=val is not None,
                                        classifier=loss_fn.classifier)
        if not isinstance(shuffle, (bool, np.bool_)):  # no EpochOrders: the ranks draw their rows
            raise TypeError(f"distributed.fit: shuffle must be True or False, got {type(shuffle).__name__}")
        if r != 0:  # only rank 0 writes files
            cbs = [cb for cb in cbs if not isinstance(cb, callbacks_module.ModelCheckpoint)]
        sig = _signature(model, epochs=epochs, batch_size=batch_size, loss=type(loss_fn).__name__,
                         optimizer=(type(opt).__name__, opt.hyperparameters()),
                         schedule=_describe_schedule(sched), shuffle=bool(shuffle), seed=seed,
                         sharded=bool(sharded), validation=val is not None,
                         rows=None if sharded else len(X),
                         **{"validation rows": None if sharded or val is None else len(val[0])})
    except Exception as exc:  # noqa: BLE001 - every failure is shared, then re-raised on all ranks
        err = exc
    _agree(c, err, sig, what)
    counts = c.allgather(len(X)) if sharded else [len(X)] * k
    if threads is not None or k > 1:
        set_threads_per_rank(threads, c)

    # Same start everywhere: rank 0's weights, optimizer state, progress and seed.
    replica = DataParallel(model, c)
    replica.broadcast_parameters(0)
    _sync_buffers(model, c, average=False)
    opt_state = c.bcast(opt.state_dict() if r == 0 else None, root=0)
    if r != 0:
        opt.load_state_dict(opt_state)
    training.start(model, loss_fn, opt, sched, seed)  # as fit; then rank 0's seed for all
    progress = model.progress
    progress.seed, progress.epochs, progress.updates = c.bcast(
        (progress.seed, progress.epochs, progress.updates), root=0)

    trainer = _ReplicaTrainer(model, X, Y, batch_size, replica,
                              _Rows(bool(sharded), counts, batch_size, r, k), bool(sharded), checkpoint)
    return training.run_epochs(model, trainer, epochs, shuffle, verbose, cbs, val, stacklevel=5)


class _ReplicaTrainer(training.Trainer):
    """One rank's part of :func:`training.run_epochs`: its rows of every global batch, gradients
    averaged over the ranks between the two halves of the step, sums and BatchNorm statistics
    reduced each epoch, and every rank's errors, Ctrl-C and stop requests told to all of them at
    the next collective (an error after the last one is held in ``pending`` until then)."""

    def __init__(self, model: Any, X: np.ndarray, Y: np.ndarray, batch_size: int,
                 replica: DataParallel, rows: _Rows, sharded: bool, checkpoint: Optional[str]):
        super().__init__(model, X, Y, batch_size)
        self.replica, self.rows, self.sharded, self.checkpoint = replica, rows, sharded, checkpoint
        self.comm, self.steps = replica.comm, rows.steps
        self.is_root = self.comm.Get_rank() == 0
        self.pending: Optional[BaseException] = None

    def start_epoch(self, seed: int, epoch: int, shuffle: bool) -> None:
        self.total = 0.0
        self.rows.shuffle(seed, epoch, shuffle)

    def chunk(self) -> int:
        return 1

    def train(self, i: int, j: int, lrs: List[float],
              interrupt: Any) -> Tuple[float, int, int, bool]:
        model, error = self.model, self.pending
        correct, seen = 0, 0
        try:
            if error is None:
                mine, m = self.rows.step(i)
                if len(mine):
                    Xb, Yb = self.X[mine], self.Y[mine]
                    value, pred = self.replica.gradients(Xb, Yb, model.loss, len(mine) / m)
                    self.total, seen = self.total + value * len(mine), len(mine)
                    if model.loss.classifier:
                        correct = model.loss.correct(pred, Yb)
                else:
                    self.replica.no_gradients()
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - shared below
            error = exc
        stop = self.replica.allreduce(error, interrupt.requested, _WHAT)
        try:
            step.update(model, lrs[0])
        except Exception as exc:  # noqa: BLE001 - told at the next collective
            self.pending = exc
        return self.total, correct, seen, stop

    def reduce(self, total: float, correct: int, seen: int) -> Tuple[float, int, int]:
        return _metrics(self.comm, _mpi(), total, correct, seen, self.pending, _WHAT)

    def end_epoch(self) -> None:
        _sync_buffers(self.model, self.comm, average=True)

    def evaluate(self, X: np.ndarray, Y: np.ndarray, batch_size: int) -> Dict[str, float]:
        return _evaluate(self.model, self.comm, self.model.loss, X, Y, batch_size, self.sharded)

    def after_epoch(self) -> None:
        if self.checkpoint is not None and self.is_root:
            self.call(self.model.save, self.checkpoint)

    def call(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - told at the next collective
            self.pending = exc

    def stop(self, requested: bool) -> bool:
        # One rank's callback stopping training (or failing) stops every rank.
        return _any(self.comm, requested, self.pending, _WHAT)

    def finish(self) -> None:
        _check_all(self.comm, self.pending, _WHAT)


def _any(comm: Any, flag: bool, err: Optional[BaseException], what: str) -> bool:
    """Whether ``flag`` is set on any rank; raises everywhere when any rank has an ``err``."""
    buf = np.array([0 if err is None else 1, int(bool(flag))], dtype=np.int64)
    comm.Allreduce(_mpi().IN_PLACE, buf, op=_mpi().SUM)
    if buf[0]:
        _raise_everywhere(comm, err, what)
    return bool(buf[1])


# --- evaluate and save -------------------------------------------------------------------------
def _evaluate(model: Any, c: Any, loss_fn: Any, X: np.ndarray, Y: np.ndarray, batch_size: int,
              sharded: bool) -> Dict[str, float]:
    part = slice(0, len(X)) if sharded else shard(len(X), c)
    total, correct, seen, err = 0.0, 0, 0, None
    try:
        for start in range(part.start, part.stop, batch_size):
            rows = slice(start, min(start + batch_size, part.stop))
            pred = model.forward(X[rows].astype(model.dtype, copy=False))
            value, _ = loss_fn(pred, Y[rows])
            total += value * (rows.stop - rows.start)
            seen += rows.stop - rows.start
            if loss_fn.classifier:
                correct += loss_fn.correct(pred, Y[rows])
    except Exception as e:  # noqa: BLE001 - shared, then raised on every rank
        err = e
    total, correct, seen = _metrics(c, _mpi(), total, correct, seen, err, "distributed evaluate")
    scores = {"loss": total / max(seen, 1)}
    if loss_fn.classifier:
        scores["accuracy"] = correct / max(seen, 1)
    return scores


def evaluate(model: Any, X: Any, y: Any, batch_size: int = 1024, loss: Any = None,
             sharded: bool = False, comm: Any = None) -> Dict[str, float]:
    """Mean loss (and accuracy for classification losses) over the whole data set, each rank
    evaluating its part and the sums reduced over the ranks: the same dict on every rank, equal to
    ``model.evaluate`` in one process. ``X, y`` are the whole set on every rank, or with
    ``sharded`` this rank's rows (collective)."""
    c = _comm(comm)
    err, sig, Xc, Yc, loss_fn = None, {}, None, None, None
    try:
        batch_size = _count("batch_size", batch_size, 1)
        loss_fn = training.resolve_loss(model, loss)
        Xc = as_inputs(model, X)
        Yc = as_targets(model, loss_fn, y, len(Xc))
        sig = _signature(model, loss=type(loss_fn).__name__, sharded=bool(sharded),
                         rows=None if sharded else len(Xc))
    except Exception as e:  # noqa: BLE001 - shared, then raised on every rank
        err = e
    _agree(c, err, sig, "distributed evaluate")
    with _Mode(model, False):
        return _evaluate(model, c, loss_fn, Xc, Yc, batch_size, bool(sharded))  # type: ignore[arg-type]


def save(model: Any, path: str, comm: Any = None) -> None:
    """Rank 0 saves ``model`` to ``path``; every rank returns once it is written (or raises
    :class:`DistributedError` if it could not be)."""
    c = _comm(comm)
    err = None
    if c.Get_rank() == 0:
        try:
            model.save(path)
        except Exception as e:  # noqa: BLE001 - shared, then raised on every rank
            err = e
    _check_all(c, err, "distributed save")
