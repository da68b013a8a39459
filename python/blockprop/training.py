"""The training loop and batched inference behind ``Sequential.fit / evaluate / predict``.

Ctrl-C during ``fit`` is deferred to the end of the current batch: the update in flight finishes,
the model stays consistent, ``model.history`` keeps the completed epochs, and the
``KeyboardInterrupt`` is re-raised (a second Ctrl-C interrupts at once).
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from typing import Any, Callable, Dict, Generator, Iterator, List, Optional, Tuple, cast

import numpy as np
from tqdm.auto import tqdm

from . import _fastpath, _precision, optim, step
from . import callbacks as callbacks_module
from . import diagnostics as diagnostics_module
from . import kernels as K
from .model import SEED_LIMIT, History, Model, Progress
from .nn.layers import Dense, Sigmoid, Softmax
from .nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, get_loss
from .optim import SGD, get_optimizer
from .schedules import Constant

__all__ = ["Progress", "History", "Trainer", "EpochOrders", "run_epochs", "epoch_loop", "begin", "fit", "evaluate",
           "predict", "predict_proba", "predict_classes", "infer", "as_inputs", "as_targets",
           "as_validation", "as_sample_weight", "resolve_settings"]


# --- input checks -------------------------------------------------------------------------------
def _count(name: str, value: Any, minimum: int, limit: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    if limit is not None and value >= limit:
        raise ValueError(f"{name} must be < 2**{limit.bit_length() - 1}, got {value}")
    return int(value)


# float64 values from this magnitude up round to ±inf in float32 (FLT_MAX plus half an ulp).
_FLOAT32_OVERFLOW = 2.0 ** 128 - 2.0 ** 103


def _as_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a NumPy array, or a TypeError naming ``name`` (a string is no array of numbers)."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got a {type(x).__name__}")
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{name} must be a numeric array ({e})") from None


def _numeric_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a NumPy array of booleans, integers or floats, or a TypeError naming ``name``."""
    arr = _as_array(x, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
    return arr


def as_inputs(model: Any, X: Any, name: str = "X", keep_float64: bool = False,
              check_finite: bool = True) -> np.ndarray:
    """``X`` as a C-contiguous array of the model's dtype, checked: 2-D, numeric, finite (unless
    ``check_finite`` is off: the caller checks), the right number of features, not empty. With
    ``keep_float64``, float64 ``X`` for a float32 model stays float64 (fit rounds it a batch at a
    time rather than copying the data set), checked as if converted."""
    arr = _numeric_array(X, name)
    if arr.ndim != 2:
        hint = (" (use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample)"
                if arr.ndim == 1 else "")
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.shape[1] != model.in_features:
        raise ValueError(f"{name} has {arr.shape[1]} features per sample (shape {arr.shape}) but the "
                         f"model expects {model.in_features}")
    wide = (keep_float64 and arr.dtype == np.float64 and model.dtype == np.float32
            and arr.flags.c_contiguous)
    arr = np.ascontiguousarray(arr, dtype=None if wide else model.dtype)
    if not check_finite:
        return arr
    # One pass in C++ (two more for the range of wide X); NumPy finds the rows only on failure.
    if K.count_nonfinite(arr) or (wide and (arr.max() >= _FLOAT32_OVERFLOW
                                            or arr.min() <= -_FLOAT32_OVERFLOW)):
        with np.errstate(over="ignore"):  # the overflow is what is being reported
            bad = ~np.isfinite(arr.astype(model.dtype) if wide else arr).all(axis=1)
        rows = np.flatnonzero(bad)
        raise ValueError(f"{name} contains NaN or infinity (in {rows.size} rows, the first at row "
                         f"{rows[0]}){' after conversion to float32' if model.dtype == np.float32 else ''}")
    return arr


def as_targets(model: Any, loss: Loss, y: Any, n: int, name: str = "y") -> np.ndarray:
    """``y`` converted for ``loss`` and checked against ``n`` samples and the model's outputs."""
    y = _as_array(y, name)
    if y.ndim == 0 or len(y) != n:
        raise ValueError(f"X and {name} hold different numbers of samples: X has {n}, {name} has shape {y.shape}")
    try:
        return loss.prepare_target(y, model.out_features, model.dtype)
    except (TypeError, ValueError) as e:  # say which targets: y or y_val
        raise type(e)(f"{name}: {e}") from None


class EpochOrders:
    """The rows of each epoch in a given order, instead of drawn from the seed:
    ``fit(X, y, epochs=len(orders), shuffle=EpochOrders(orders))`` trains epoch ``e`` on the rows
    ``orders[e]`` of X, each order a permutation of ``range(len(X))``, cut into batches as usual.
    scikit-learn's estimators (:mod:`blockprop.sklearn`) draw their shuffles in scikit-learn's way
    and hand them over like this, several epochs to a call. Equal when their orders are."""

    def __init__(self, orders: Any):
        if isinstance(orders, np.ndarray) and orders.ndim == 2:
            orders = list(orders)
        if not isinstance(orders, (list, tuple)) or not orders:
            raise ValueError("EpochOrders: give a non-empty list of orders, one 1-D index array per epoch")
        self.orders: List[np.ndarray] = []
        for e, o in enumerate(orders):
            a = np.asarray(o)
            if a.ndim != 1 or a.dtype.kind not in "iu":
                raise ValueError(f"EpochOrders: order {e} must be a 1-D integer array, got "
                                 f"{a.dtype} of shape {a.shape}")
            self.orders.append(a.astype(np.int64, copy=False))

    def check(self, n: int, epochs: int, fn: str) -> None:
        """Refuse orders that are not one permutation of ``range(n)`` per epoch."""
        if len(self.orders) != epochs:
            raise ValueError(f"{fn}: shuffle gives the orders of {len(self.orders)} epochs, but "
                             f"epochs={epochs}")
        for e, o in enumerate(self.orders):
            if len(o) != n or (n and (o.min() < 0 or o.max() >= n)) or \
                    not np.array_equal(np.bincount(o, minlength=n), np.ones(n, np.int64)):
                raise ValueError(f"{fn}: shuffle's order {e} is not a permutation of the "
                                 f"{n} rows of X")

    def __len__(self) -> int:
        return len(self.orders)

    def __getitem__(self, e: Any) -> Any:
        if isinstance(e, slice):
            return EpochOrders(self.orders[e])
        return self.orders[e]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EpochOrders) and len(self) == len(other) and all(
            a is b or np.array_equal(a, b) for a, b in zip(self.orders, other.orders))

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside: not hashable

    def __repr__(self) -> str:
        return f"EpochOrders({len(self.orders)} epochs of {len(self.orders[0])} rows)"


def as_shuffle(shuffle: Any, n: int, epochs: int, fn: str) -> Any:
    """``shuffle`` as the epoch loop takes it: a bool, or checked :class:`EpochOrders`."""
    if isinstance(shuffle, EpochOrders):
        shuffle.check(n, epochs, fn)
        return shuffle
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"{fn}: shuffle must be True, False or an EpochOrders, got "
                        f"{type(shuffle).__name__}")
    return bool(shuffle)


def as_sample_weight(sample_weight: Any, n: int, loss: Optional[Loss] = None,
                     name: str = "sample_weight") -> np.ndarray:
    """``sample_weight`` as float64 ``(n,)``, checked: a number (every row) or one finite weight
    ≥ 0 per sample, not all 0; and, given ``loss``, a loss that takes weights. The one rule of
    sample weights: each batch's loss is their weighted mean, ``Σ w·ℓ / Σ w`` (a batch whose
    weights are all 0 adds 0 and moves nothing), so a weight of 0 is the row left out."""
    if loss is not None and type(loss).weighted is Loss.weighted:
        raise TypeError(f"{name}: the loss {loss!r} does not take sample weights (the built-in "
                        "'mse', 'cross_entropy' and 'bce' do)")
    w = _numeric_array(sample_weight, name)
    if w.ndim == 0:
        w = np.full(n, w, dtype=np.float64)
    if w.ndim != 1 or len(w) != n:
        raise ValueError(f"{name} must have shape ({n},), one weight per sample, got shape {w.shape}")
    w = np.ascontiguousarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise ValueError(f"{name} contains NaN or infinity (first at index {np.flatnonzero(~np.isfinite(w))[0]})")
    if n and w.min() < 0:
        raise ValueError(f"{name} must be ≥ 0, got {w.min()} at index {int(w.argmin())}")
    if n and not w.any():
        raise ValueError(f"{name} is zero for every sample: nothing to learn from")
    return w


def resolve_loss(model: Any, loss: Any) -> Loss:
    """The loss given, else the model's from its previous fit, else cross-entropy."""
    return get_loss(loss) or model.loss or CrossEntropyLoss()


def resolve_optimizer(model: Any, optimizer: Any) -> Any:
    """The optimizer given, else the model's (state included), else ``SGD(0.01)``; a fresh one
    with the same settings when it already trains another model (:func:`blockprop.optim.for_model`)."""
    opt = get_optimizer(optimizer) if optimizer is not None else (model.optimizer or SGD(0.01))
    return optim.for_model(opt, model)  # not another model's state (docs/features.md)


def resolve_settings(model: Any, epochs: Any, batch_size: Any, loss: Any, optimizer: Any,
                     schedule: Any) -> Tuple[int, int, Loss, Any, Any]:
    """Checked epochs and batch size, and the loss, optimizer and schedule: those given, else the
    model's from its previous fit, else cross-entropy, ``SGD(0.01)`` and a constant rate."""
    epochs = _count("epochs", epochs, 0)
    batch_size = _count("batch_size", batch_size, 1)
    loss_fn, opt = resolve_loss(model, loss), resolve_optimizer(model, optimizer)
    sched = schedule if schedule is not None else (model.schedule or Constant())
    if not callable(sched):
        raise TypeError(f"schedule must be a callable epoch -> factor, got {sched!r}")
    return epochs, batch_size, loss_fn, opt, sched


def as_validation(model: Any, loss: Loss, validation_data: Any) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """``validation_data`` as checked ``(X_val, Y_val)``, or None when there is none."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise TypeError("validation_data must be a pair (X_val, y_val)")
    Xv = as_inputs(model, validation_data[0], "X_val", keep_float64=True)
    return Xv, as_targets(model, loss, validation_data[1], len(Xv), "y_val")


def _factor(schedule: Any, epoch: float) -> float:
    """The schedule's factor at ``epoch``, checked: a NaN, infinite or negative learning rate
    would silently ruin the weights."""
    try:
        value = schedule(epoch)
    except ArithmeticError as e:  # OverflowError of gamma ** epoch and the like: say which schedule
        raise ValueError(f"schedule {schedule!r} failed at epoch {epoch:g} ({type(e).__name__}: {e}); "
                         "the learning-rate factor must be a finite number ≥ 0 at every epoch") from None
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"schedule {schedule!r} returned {value!r} at epoch {epoch:g}, not a number") from None
    if not (math.isfinite(factor) and factor >= 0):
        raise ValueError(f"schedule {schedule!r} returned {value!r} at epoch {epoch:g}: the learning-rate "
                         "factor must be finite and ≥ 0")
    return factor


# Schedule factors checked before a fit's first update: every batch's when the run has at most
# this many updates (the check costs about as much as the run's own calls), else each epoch's first
# and last batch.
_SCHEDULE_CHECKS = 1 << 18


def check_schedule(schedule: Any, lr: float, first_epoch: int, epochs: int, steps: int) -> None:
    """ValueError (or the schedule's own error) now, before anything changes, for a factor that
    the run would fail on later: not a number, NaN, negative, an overflow, or an infinite rate."""
    every = epochs * steps <= _SCHEDULE_CHECKS
    for e in range(first_epoch, first_epoch + min(epochs, _SCHEDULE_CHECKS)):
        for k in (range(steps) if every else sorted({0, steps - 1})):
            at = e + k / steps  # as run_epochs computes it
            rate = lr * _factor(schedule, at)
            if not math.isfinite(rate):
                raise ValueError(f"schedule {schedule!r} makes the learning rate {rate} at epoch {at:g} "
                                 f"(base rate {lr:g}); it must stay finite")


# --- Ctrl-C ------------------------------------------------------------------------------------
class _DeferInterrupt:
    """Turns the first SIGINT into a flag checked between batches (main thread only)."""

    def __enter__(self) -> "_DeferInterrupt":
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _Mode:
    """Puts a model in training or evaluation mode for a block and restores the mode after."""

    def __init__(self, model: Any, training: bool):
        self.model, self.training = model, training

    def __enter__(self) -> None:
        self.before = getattr(self.model, "training", True)
        if hasattr(self.model, "train"):
            self.model.train(self.training)

    def __exit__(self, *exc: Any) -> None:
        if hasattr(self.model, "train"):
            self.model.train(self.before)
        if not self.training:
            _release(self.model)


def _release(model: Any) -> None:
    """Drop what forward kept on the layers: nothing runs backward after an evaluation pass, and
    a backward then is refused rather than run on an older batch."""
    for layer in getattr(model, "layers", ()):
        getattr(layer, "_release", lambda: None)()


@contextlib.contextmanager
def _evaluation(model: Any) -> Iterator[Callable[[int, np.ndarray], np.ndarray]]:
    """For a block, the model's evaluation-mode output of layers ``start`` on, ``run(start, X)``:
    its own inference when it has one (``Sequential._inference``: nothing on the model changes,
    so threads may run it at once), else ``forward`` in evaluation mode (:class:`_Mode`)."""
    infer = getattr(model, "_inference", lambda: None)()
    if infer is not None:
        try:
            yield infer
        finally:
            _release(model)  # idempotent, so concurrent calls may all do it
        return
    with _Mode(model, False):
        yield lambda start, X: model.forward(X) if start == 0 else model._forward_from(start, X)


# --- the epoch loop ----------------------------------------------------------------------------
class Trainer:
    """How one process takes part in :func:`run_epochs`: which rows each update trains on, how an
    update runs, and how the epoch's figures are combined. This one trains alone: a plain stack of
    dense layers in C++ (:mod:`blockprop._fastpath`), a chunk of batches per call, anything else one
    :func:`blockprop.step.train_batch` per batch. :mod:`blockprop.distributed` plugs in its own.
    """

    is_root = True  # prints and warns (one process of many: only rank 0)

    def __init__(self, model: Model, X: np.ndarray, Y: np.ndarray, batch_size: int,
                 monitor: Optional[diagnostics_module.Monitor] = None,
                 weights: Optional[np.ndarray] = None):
        self.model, self.X, self.Y, self.batch_size, self.monitor = model, X, Y, batch_size, monitor
        self.weights = weights  # checked sample weights (as_sample_weight), or None
        self.steps = math.ceil(len(X) / batch_size)
        self.order: Optional[np.ndarray] = None
        self.order_given = False  # the order came from EpochOrders, not from the seed
        self.fast: Optional[_fastpath.Plan] = None
        # The epoch's Σ loss × rows so far: each batch's is added to it in turn (the C++ loop
        # goes on from it), so the sum is the same bits however the epoch is cut into calls.
        self.total = 0.0

    def start_epoch(self, seed: int, epoch: int, shuffle: Any) -> None:
        """Draw the epoch's order (the same for a given seed and epoch, so a resumed run goes on
        as an uninterrupted one would), or take the given one (an index array: EpochOrders), and
        choose the loop for it."""
        n = len(self.X)
        self.total = 0.0
        self.order_given = isinstance(shuffle, np.ndarray)
        if self.order_given:
            self.order = shuffle
        else:
            self.order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else None
        m = self.model
        self.fast = None if self.monitor else _fastpath.plan(m, m.loss, m.optimizer)
        if self.monitor:
            self.monitor.start_epoch()

    # Calls of the C++ loop an epoch: between calls come the progress bar and Ctrl-C ...
    calls_per_epoch = 20
    # ... but each call at least this many rows (or the whole epoch): a call has fixed costs
    # (building its arguments in Python, and fit_many's copies of the first layers) that fewer rows
    # did not repay. Measured (Intel Xeon, 2 threads), sklearn's digits (1,198 rows of 64 features,
    # batch 200, 30 epochs): a fit of 64-128-10 took 36 ms at one batch a call, 24 ms at one epoch
    # a call; the grid search of the benchmark (six candidates, three folds) 0.70 s → 0.51 s.
    min_rows_per_call = 4096

    def chunk(self) -> int:
        """Updates per :meth:`train` call (see :attr:`calls_per_epoch`)."""
        if not self.fast:
            return 1
        return min(self.steps, max(1, self.steps // self.calls_per_epoch,
                                   -(-self.min_rows_per_call // self.batch_size)))

    def _rows(self, i: int, j: int) -> Any:
        B, n = self.batch_size, len(self.X)
        if self.order is not None:
            return self.order[i * B:j * B]
        return np.arange(i * B, min(n, j * B)) if self.fast else slice(i * B, min(n, j * B))

    def train(self, i: int, j: int, lrs: List[float],
              interrupt: "_DeferInterrupt") -> Tuple[float, int, int, bool]:
        """Updates ``i`` to ``j − 1`` of the epoch at learning rates ``lrs``; returns (the epoch's
        Σ loss × rows so far, :attr:`total`; these updates' rows classified right; their rows;
        whether to stop: Ctrl-C was pressed)."""
        m, rows = self.model, self._rows(i, j)
        if self.fast:
            self.total, correct, seen = _fastpath.train_batches(
                self.fast, m.optimizer, self.X, self.Y, rows, self.batch_size, np.asarray(lrs),
                self.weights, self.total)
            return self.total, correct, seen, interrupt.requested
        Xb, Yb = self.X[rows].astype(m.dtype, copy=False), self.Y[rows]
        wb = None if self.weights is None else self.weights[rows]
        value, pred = step.train_batch(m, Xb, Yb, lrs[0], self.monitor, wb)
        correct = m.loss.correct(pred, Yb) if m.loss.classifier else 0
        self.total = self.total + value * len(Xb)
        return self.total, correct, len(Xb), interrupt.requested

    def reduce(self, total: float, correct: int, seen: int) -> Tuple[float, int, int]:
        """The epoch's sums over every process that trained (here: this one)."""
        return total, correct, seen

    def end_epoch(self) -> None:
        """After the epoch's updates, before validation (distributed: average BatchNorm statistics)."""

    def evaluate(self, X: np.ndarray, Y: np.ndarray, batch_size: int) -> Dict[str, float]:
        return _evaluate(self.model, self.model.loss, X, Y, batch_size)

    def after_epoch(self) -> None:
        """After the epoch's metrics are recorded, before the callbacks (distributed: checkpoint)."""

    def call(self, fn: Any, *args: Any) -> None:
        """Run a callback hook (distributed: an error is held and told to every rank)."""
        fn(*args)

    def stop(self, requested: bool) -> bool:
        """Whether to end training after this epoch (distributed: if any rank asks)."""
        return requested

    def finish(self) -> None:
        """After the last epoch (distributed: raise, on every rank, what any rank held)."""


# A request of epoch_loop: train updates i to j − 1 of the current epoch at these learning rates.
Request = Tuple[int, int, List[float]]


def run_epochs(model: Model, trainer: Trainer, epochs: int, shuffle: Any, verbose: int,
               callbacks: List[Any], validation: Optional[Tuple[np.ndarray, np.ndarray]],
               stacklevel: int = 4, restore: Optional[Any] = None) -> History:
    """The one epoch loop (``fit`` and ``distributed.fit``): shuffle, train the epoch's updates
    through ``trainer`` with the schedule's learning rates, then metrics, validation, history,
    progress bar, callbacks; Ctrl-C ends it at an update boundary. ``model.loss``,
    ``model.optimizer``, ``model.schedule`` and ``model.progress.seed`` are set."""
    with _DeferInterrupt() as interrupt:
        loop = epoch_loop(model, trainer, epochs, shuffle, verbose, callbacks, validation, interrupt,
                          stacklevel + 1, restore)
        try:
            i, j, lrs = next(loop)
            while True:
                i, j, lrs = loop.send(trainer.train(i, j, lrs, interrupt))
        except StopIteration as done:
            return cast(History, done.value)


def epoch_loop(model: Model, trainer: Trainer, epochs: int, shuffle: Any, verbose: int,
               callbacks: List[Any], validation: Optional[Tuple[np.ndarray, np.ndarray]],
               interrupt: "_DeferInterrupt", stacklevel: int,
               restore: Optional[Any] = None) -> Generator[Request, Tuple[float, int, int, bool], History]:
    """:func:`run_epochs` as a generator that yields each :data:`Request` instead of calling
    ``trainer.train``, and is sent its result (Σ loss × rows, rows right, rows, stop): so
    :func:`blockprop.fit_many` can run many models' updates together, each through this one loop.
    Returns the History."""
    loss_fn, opt, sched, progress = model.loss, model.optimizer, model.schedule, model.progress
    history = model.history = History()
    model.stop_training = False
    monitor, diverged = trainer.monitor, False
    with _Mode(model, True):
        try:
            for cb in callbacks:
                trainer.call(cb.on_train_begin, model)
        except BaseException:
            if restore is not None:  # refused before the first update: as if never called
                restore()
            raise
        for e in range(epochs):
            epoch = progress.epochs
            trainer.start_epoch(cast(int, progress.seed), epoch,
                                shuffle[e] if isinstance(shuffle, EpochOrders) else shuffle)
            steps, chunk = trainer.steps, trainer.chunk()
            bar = tqdm(total=steps, desc=f"Epoch {e + 1}/{epochs}", unit="batch", leave=True,
                       disable=verbose != 1 or not trainer.is_root, dynamic_ncols=True)
            start, total, correct, seen, lr = time.perf_counter(), 0.0, 0, 0, opt.lr
            try:
                stop = False
                for i in range(0, steps, chunk):
                    j = min(steps, i + chunk)
                    lrs = [opt.lr * _factor(sched, epoch + k / steps) for k in range(i, j)]
                    lr = lrs[-1]
                    total, hits, count, stop = yield (i, j, lrs)  # total: the epoch's so far
                    correct, seen = correct + hits, seen + count
                    progress.updates += j - i
                    bar.update(j - i)
                    if i % max(1, steps // 20) < chunk and seen:
                        bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
                    if stop:
                        break
                progress.epochs += 1
                if stop:
                    raise KeyboardInterrupt
                total, correct, seen = trainer.reduce(total, correct, seen)
                trainer.end_epoch()
                metrics = {"loss": total / max(seen, 1)}
                if loss_fn.classifier:
                    metrics["accuracy"] = correct / max(seen, 1)
                if validation is not None:
                    with _Mode(model, False):
                        scores = trainer.evaluate(*validation, batch_size=max(trainer.batch_size, 1024))
                    metrics.update({f"val_{k}": v for k, v in scores.items()})
                metrics["lr"], metrics["time"] = lr, time.perf_counter() - start
                if monitor:  # it warns on divergence itself, with the layers' figures
                    metrics.update(monitor.end_epoch(epoch, metrics["loss"]))
                elif not math.isfinite(metrics["loss"]) and not diverged and trainer.is_root:
                    diverged = True  # once a fit, not once an epoch
                    warnings.warn(
                        f"the training loss is {metrics['loss']} in epoch {epoch}: training "
                        f"diverged (learning rate {lr:g}); lower the learning rate, normalize the "
                        "inputs, or fit with diagnostics=True to see which layer blows up",
                        diagnostics_module.TrainingDiagnosticWarning, stacklevel=stacklevel)
                history.append(epoch, metrics)
                text = {k: (f"{v:.4g}" if k in ("lr", "time") else f"{v:.4f}") for k, v in metrics.items()}
                bar.set_postfix(text, refresh=True)
                if verbose == 2 and trainer.is_root:
                    print(f"Epoch {e + 1}/{epochs}: " + "  ".join(f"{k}={v}" for k, v in text.items()),
                          flush=True)
                trainer.after_epoch()
            finally:
                bar.close()
            for cb in callbacks:
                trainer.call(cb.on_epoch_end, model, epoch, dict(metrics))
            if trainer.stop(model.stop_training):
                model.stop_training = True
                break
        for cb in callbacks:
            trainer.call(cb.on_train_end, model)
    trainer.finish()
    return history


def start(model: Model, loss_fn: Loss, opt: Any, sched: Any, seed: Optional[int]) -> None:
    """Make ``loss_fn``, ``opt`` and ``sched`` the model's and fix its shuffling seed: ``seed``
    when given, else the one kept from an earlier fit, else a fresh random one."""
    model.loss, model.optimizer, model.schedule = loss_fn, opt, sched
    optim.bind(opt, model)
    progress = model.progress
    if seed is not None:
        progress.seed = _count("seed", seed, 0, SEED_LIMIT)
    elif progress.seed is None:
        progress.seed = int(cast(int, np.random.SeedSequence().entropy) % (2 ** 63))


def begin(model: Model, loss_fn: Loss, opt: Any, sched: Any, seed: Optional[int]) -> Any:
    """:func:`start`, and return the function that puts back what start and run_epochs change
    before the first update, for a call refused before it (a callback's on_train_begin, e.g.
    ModelCheckpoint's missing directory)."""
    kept = (model.loss, model.optimizer, model.schedule, model.progress.seed, model.history,
            model.stop_training, opt._owner)

    def restore() -> None:
        (model.loss, model.optimizer, model.schedule, model.progress.seed, model.history,
         model.stop_training, opt._owner) = kept

    start(model, loss_fn, opt, sched, seed)
    return restore


def fit(model: Model, X: Any, y: Any, epochs: int = 1, batch_size: int = 32, loss: Any = None,
        optimizer: Any = None, schedule: Any = None, validation_data: Any = None,
        shuffle: Any = True, seed: Optional[int] = None, verbose: int = 1,
        callbacks: Optional[List[Any]] = None, diagnostics: Any = False,
        sample_weight: Any = None, precision: str = "float32") -> History:
    """Train ``model`` on ``(X, y)`` in mini-batches (the last one may be smaller) and return a
    :class:`History`, also kept as ``model.history``. Batches run in training mode, validation
    in evaluation mode; the model's mode is restored at the end.

    ``callbacks``: :class:`blockprop.callbacks.Callback` objects (early stopping, checkpoints,
    learning-rate reduction) or plain callables ``fn(epoch, logs)``, called after each epoch with
    that epoch's metrics. ``diagnostics``: True (or a :class:`blockprop.diagnostics.Diagnostics`
    with custom thresholds) adds per-layer ``"{i}.grad_norm"``, ``"{i}.weight_norm"``,
    ``"{i}.update_ratio"`` and ``"{i}.dead_relu"`` to the history and warns on vanishing or
    exploding gradients and dead ReLUs (see :mod:`blockprop.diagnostics`). Without them, a NaN or
    infinite training loss still gets one ``TrainingDiagnosticWarning`` a fit: training diverged.

    ``loss`` ("cross_entropy", "mse", "bce" or a Loss), ``optimizer`` and ``schedule`` default to
    those of the model's previous ``fit`` (state included), else cross-entropy, ``SGD(0.01)`` and
    a constant rate. ``seed`` fixes the shuffling (kept for later fits when omitted);
    ``shuffle``: True (a new order each epoch, from the seed), False (X's order) or
    :class:`EpochOrders` (each epoch's order given).
    ``sample_weight`` (one weight ≥ 0 per row): each batch's loss becomes the weighted mean
    ``Σ w·ℓ / Σ w`` (:func:`as_sample_weight`); the epoch's ``loss`` averages the batches' as
    without weights (by rows, as scikit-learn's ``loss_curve_``). ``verbose``: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
    Ctrl-C finishes the current batch, then re-raises ``KeyboardInterrupt`` (see the module doc).
    ``precision="bfloat16"`` (float32 models): the layers' matrix products take bfloat16-rounded
    operands and sum in float32; weights (the master copy), gradients' reductions, loss and
    optimizer stay float32. Validation runs at the same precision.
    """
    precision = _precision.check(precision, model.dtype, "fit")
    epochs, batch_size, loss_fn, opt, sched = resolve_settings(model, epochs, batch_size, loss,
                                                               optimizer, schedule)
    cbs = callbacks_module.prepare(callbacks)
    monitor_config = diagnostics_module.prepare(diagnostics)
    X = as_inputs(model, X, keep_float64=True)  # float64 X is rounded batch by batch, not copied
    Y = as_targets(model, loss_fn, y, len(X))
    weights = None if sample_weight is None else as_sample_weight(sample_weight, len(X), loss_fn)
    val = as_validation(model, loss_fn, validation_data)
    callbacks_module.check_monitors(cbs, has_validation=val is not None,
                                    classifier=loss_fn.classifier)
    shuffle = as_shuffle(shuffle, len(X), epochs, "fit")
    if seed is not None:
        _count("seed", seed, 0, SEED_LIMIT)
    check_schedule(sched, opt.lr, model.progress.epochs, epochs, math.ceil(len(X) / batch_size))
    restore = begin(model, loss_fn, opt, sched, seed)
    try:
        monitor = diagnostics_module.Monitor(model, monitor_config) if monitor_config else None
        trainer = Trainer(model, X, Y, batch_size, monitor, weights)
    except BaseException:
        restore()
        raise
    with _precision.computing_in(precision):
        return run_epochs(model, trainer, epochs, shuffle, verbose, cbs, val, stacklevel=5,
                          restore=restore)


# --- inference ---------------------------------------------------------------------------------
# Without a batch_size, inference takes as many rows at a time as keep the widest activation of a
# batch under _AUTO_BATCH_BYTES, and never fewer than _MIN_AUTO_BATCH: a small net then runs 10,000
# rows as one GEMM per layer (in batches of 1024, the per-call packing of the weights and the
# threads' hand-offs cost 12% of predict on 784-128-10), and a wide one stays within bounds.
_AUTO_BATCH_BYTES = 8 << 20
_MIN_AUTO_BATCH = 1024


def _auto_batch(model: Any, X: np.ndarray) -> int:
    """Rows per forward pass when the caller gives no batch_size (see above)."""
    widest = max(model._output_widths())
    if X.dtype != model.dtype:  # X is converted a batch at a time
        widest = max(widest, model.in_features)
    return max(_MIN_AUTO_BATCH, _AUTO_BATCH_BYTES // (widest * model.dtype.itemsize))


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _evaluate(model: Any, loss_fn: Loss, X: np.ndarray, Y: np.ndarray, batch_size: int,
              weights: Optional[np.ndarray] = None) -> Dict[str, float]:
    total, correct = 0.0, 0.0
    with _evaluation(model) as run:
        for rows in _batches(len(X), batch_size):
            pred = run(0, X[rows].astype(model.dtype, copy=False))
            if weights is None:
                value, _ = loss_fn(pred, Y[rows])
                total += value * (rows.stop - rows.start)
                if loss_fn.classifier:
                    correct += loss_fn.correct(pred, Y[rows])
                continue
            w = weights[rows]
            value, _ = loss_fn.weighted(pred, Y[rows], w)
            total += value * float(w.sum())
            if loss_fn.classifier:
                correct += loss_fn.correct(pred, Y[rows], w)
    count = len(X) if weights is None else float(weights.sum())
    scores = {"loss": total / count}
    if loss_fn.classifier:
        scores["accuracy"] = correct / count
    return scores


def evaluate(model: Any, X: Any, y: Any, batch_size: Optional[int] = None,
             loss: Any = None, sample_weight: Any = None, precision: str = "float32") -> Dict[str, float]:
    """Mean loss (and accuracy for classification losses) over ``(X, y)``, in batches
    (``batch_size`` rows; None: see :func:`predict`); with ``sample_weight``, both are
    weighted means (``Σ w·ℓ / Σ w``, the weights' share of the rows classified right);
    ``precision`` as for :func:`fit`."""
    precision = _precision.check(precision, model.dtype, "evaluate")
    if batch_size is not None:
        batch_size = _count("batch_size", batch_size, 1)
    loss_fn = resolve_loss(model, loss)
    X = as_inputs(model, X, keep_float64=True)  # rounded batch by batch, as in fit
    Y = as_targets(model, loss_fn, y, len(X))
    weights = None if sample_weight is None else as_sample_weight(sample_weight, len(X), loss_fn)
    batch_size = batch_size or _auto_batch(model, X)
    with _precision.computing_in(precision):
        return _evaluate(model, loss_fn, X, Y, batch_size, weights)


def infer(model: Any, X: np.ndarray) -> np.ndarray:
    """The evaluation-mode output for a batch ``X`` of the model's dtype, unchecked (``model(X)``
    in evaluation mode)."""
    with _evaluation(model) as run:
        return run(0, X)


def predict(model: Any, X: Any, batch_size: Optional[int] = None,
            precision: str = "float32") -> np.ndarray:
    """Network outputs for ``X``, one batch of ``batch_size`` rows at a time. None (the default)
    takes as many rows as keep a batch's widest activation under 8 MiB, and at least 1024.
    ``precision`` as for :func:`fit`."""
    precision = _precision.check(precision, model.dtype, "predict")
    if batch_size is not None:
        batch_size = _count("batch_size", batch_size, 1)
    # A model that says its forward starts with a Dense layer (Sequential._counting_layer) has X
    # checked for NaN and infinity in that layer's GEMM (Dense.infer_counted): a separate pass
    # over X cost 7–25% of predict on 784-128-10. Only when it finds a non-finite value is X
    # checked in full, which raises for X (and lets an overflow inside the layer through).
    counting = getattr(model, "_counting_layer", None)
    first: Optional[Dense] = counting() if counting is not None else None
    X = as_inputs(model, X, keep_float64=True, check_finite=first is None)  # rounded batch by batch
    batch_size = batch_size or _auto_batch(model, X)
    out = np.empty((len(X), model.out_features), dtype=model.dtype)
    checked = first is None
    with _evaluation(model) as run, _precision.computing_in(precision):
        for rows in _batches(len(X), batch_size):
            if first is None:
                out[rows] = run(0, X[rows].astype(model.dtype, copy=False))
                continue
            with np.errstate(over="ignore"):  # a float64 value beyond float32: refused just below
                xb = X[rows].astype(model.dtype, copy=False)
            h, bad = first.infer_counted(xb)
            if bad and not checked:
                as_inputs(model, X, keep_float64=True)
                checked = True
            out[rows] = run(1, h)
    return out


def _is_binary(model: Any) -> bool:
    return isinstance(model.loss, BCEWithLogitsLoss) or (model.loss is None and model.out_features == 1)


def predict_proba(model: Any, X: Any, batch_size: Optional[int] = None,
                  precision: str = "float32") -> np.ndarray:
    """Softmax of the outputs (sigmoid for BCE or single-output models); outputs unchanged when
    the last layer already is a Softmax/Sigmoid."""
    out = predict(model, X, batch_size, precision)
    if isinstance(model.layers[-1], (Softmax, Sigmoid)):
        return out
    return K.sigmoid(out) if _is_binary(model) else K.softmax(out)


def predict_classes(model: Any, X: Any, batch_size: Optional[int] = None,
                    precision: str = "float32") -> np.ndarray:
    """Class index per row (argmax); for BCE / single-output models ``probability > 0.5``
    (shape ``(n,)`` for one output, ``(n, outputs)`` for multi-label)."""
    proba = predict_proba(model, X, batch_size, precision)
    if _is_binary(model):
        classes = (proba > 0.5).astype(np.int64)
        return classes[:, 0] if classes.shape[1] == 1 else classes
    return proba.argmax(axis=1)
