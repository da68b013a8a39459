"""``fit_many``: train many models on the same data in one call, each ending exactly as its own
``fit`` with the same arguments and seed would leave it.

Every model runs :func:`blockprop.training.epoch_loop`, the loop of ``fit`` itself (shuffles,
learning rates, metrics, validation, callbacks), here driven round by round: each round, every
model still training asks for its next chunk of updates. Models on the C++ loop that read the same
batches (same rows in the same order: shuffling seed, epoch, dtype) form a
group and their chunks run as one call of :func:`blockprop._fastpath.train_many`; any other model
trains through its own :class:`blockprop.training.Trainer`. A model that stops (a callback, an
error in its callback) leaves its group; the others go on. Ctrl-C stops every model at an update
boundary, as in ``fit``.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, cast

import numpy as np
from tqdm.auto import tqdm

from . import _fastpath
from . import callbacks as callbacks_module
from . import training
from .callbacks import Callback
from .model import SEED_LIMIT, History
from .nn import usage
from .optim import get_optimizer

__all__ = ["fit_many"]


def _per_model(name: str, value: Any, k: int) -> List[Any]:
    """``value`` for each of k models: a list or tuple of k values, or one value for all."""
    if isinstance(value, (list, tuple)):
        if len(value) != k:
            raise ValueError(f"{name}: got {len(value)} for {k} models (give one, or one per model)")
        return list(value)
    return [value] * k


def _optimizers(optimizers: Any, k: int) -> List[Any]:
    """One optimizer per model: one given is copied (same hyperparameters, no state) for each."""
    if isinstance(optimizers, (list, tuple)):
        opts = _per_model("optimizers", optimizers, k)
        seen: Dict[int, int] = {}
        for i, opt in enumerate(opts):
            if opt is not None and not isinstance(opt, str):
                if id(opt) in seen:
                    raise ValueError(f"optimizers[{seen[id(opt)]}] and optimizers[{i}] are the same "
                                     "object: each model needs its own optimizer state (give one "
                                     "optimizer to have it copied for every model)")
                seen[id(opt)] = i
        return opts
    if optimizers is None:
        return [None] * k
    opt = get_optimizer(optimizers)
    return [opt.fresh() for _ in range(k)]


def _callbacks(callbacks: Any, k: int) -> List[List[Callback]]:
    """Callbacks per model: a list of lists (one per model), or one list whose callbacks are
    copied for each model (each keeps its own state, e.g. EarlyStopping's best value)."""
    if callbacks is None:
        return [[] for _ in range(k)]
    if isinstance(callbacks, (list, tuple)) and callbacks and all(
            isinstance(c, (list, tuple)) for c in callbacks):
        return [callbacks_module.prepare(c) for c in _per_model("callbacks", list(callbacks), k)]
    shared = callbacks_module.prepare(callbacks)
    return [[copy.deepcopy(cb) for cb in shared] for _ in range(k)]


def _check_callbacks(cbs: List[List[Callback]]) -> None:
    """Each model's callbacks its own, and no two models saving to the same checkpoint files
    (one would overwrite the other's): a ModelCheckpoint path used for several models must hold
    ``{model}``, which each model's checkpoint fills in with its index."""
    owner: Dict[int, int] = {}
    paths: Dict[str, int] = {}
    for i, listed in enumerate(cbs):
        for cb in listed:
            if owner.setdefault(id(cb), i) != i:
                raise ValueError(f"fit_many: callbacks[{owner[id(cb)]}] and callbacks[{i}] hold the same "
                                 f"{type(cb).__name__} object: each model needs its own (give one list "
                                 "to have it copied for every model)")
            if not isinstance(cb, callbacks_module.ModelCheckpoint):
                continue
            cb.fields = {"model": i}
            if "{model" not in cb.path and paths.setdefault(cb.path, i) != i:
                raise ValueError(f"fit_many: models[{paths[cb.path]}] and models[{i}] would save their "
                                 f"checkpoints to the same path {cb.path!r}, one overwriting the other: "
                                 "put {model} in it (e.g. 'ckpt-{model}-{epoch}.npz') or give each "
                                 "model its own path")


class _Claim:
    """Every model taken for training by this thread for the call (:mod:`blockprop.nn.usage`, as
    ``fit`` takes it), so another thread's call on one of them is refused; a model another thread
    is using is refused before any is taken."""

    def __init__(self, models: Sequence[Any]):
        self.models = [m for m in models if hasattr(m, "_depth")]  # Sequential keeps the record
        self.index = {id(m): i for i, m in enumerate(models)}

    def __enter__(self) -> "_Claim":
        taken: List[Any] = []
        try:
            for m in self.models:
                usage.enter(m, "fit_many", True)
                taken.append(m)
        except RuntimeError as e:
            busy = self.index[id(m)]
            for t in taken:
                usage.leave(t, True)
            raise RuntimeError(f"fit_many: models[{busy}]: {e}") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        for m in self.models:
            usage.leave(m, True)


class _Trainer(training.Trainer):
    """fit's Trainer, with fewer, longer calls of the C++ loop."""

    # Calls of the core per epoch for a group (fit: 20): each call copies the group's first layers
    # in and out and builds every model's arguments in Python, which at 20 calls cost fit_many up to
    # a fifth of an epoch of 5,000 samples; Ctrl-C and the progress bar act between calls.
    calls_per_epoch = 5


class _Member:
    """One model of the call: its settings, trainer and epoch loop."""

    def __init__(self, index: int, model: Any):
        self.index, self.model = index, model
        self.trainer: Any = None
        self.loop: Any = None
        self.request: Optional[training.Request] = None
        self.restore: Any = None
        self.error: Optional[BaseException] = None
        self.history: Optional[History] = None
        self.cbs: List[Callback] = []
        self.settings: Tuple[int, Any] = (0, None)

    def group_key(self) -> Optional[Tuple[Any, ...]]:
        """Members with equal keys train on the same batches this round (None: alone)."""
        t = self.trainer
        if t.fast is None or self.request is None:
            return None
        # Given orders (EpochOrders: one object for every model of the call) are the same
        # batches for any seed; drawn ones, for the same seed and epoch.
        drawn = ("given", id(t.order)) if t.order_given else (
            self.model.progress.seed, self.model.progress.epochs, t.order is None)
        return (id(t.X), id(t.weights), self.model.dtype, t.batch_size, drawn, self.request[0],
                self.request[1])


class _Tick(Callback):
    """verbose=1: one progress bar over every model's epochs."""

    def __init__(self, bar: Any):
        self.bar = bar

    def on_epoch_end(self, model: Any, epoch: int, logs: Dict[str, float]) -> None:
        self.bar.update(1)


def fit_many(models: Sequence[Any], X: Any, y: Any, *, epochs: int, batch_size: int, loss: Any,
             optimizers: Any, schedules: Any = None, seed: Optional[int] = None, shuffle: Any = True,
             validation_data: Any = None, callbacks: Any = None, verbose: int = 1,
             sample_weight: Any = None) -> List[History]:
    """Train every model of ``models`` on ``(X, y)``; returns one :class:`History` per model
    (also kept as each ``model.history``). Each model ends as ``model.fit(X, y, epochs=epochs,
    batch_size=batch_size, loss=loss, optimizer=<its optimizer>, schedule=<its schedule>,
    seed=seed, shuffle=shuffle, validation_data=validation_data, callbacks=<its callbacks>)``
    would leave it, bit for bit; models on the C++ loop that read the same batches share them.

    ``optimizers``: one optimizer (or name), copied for each model (same hyperparameters, fresh
    state), or a list with one per model (None: the model's own, as in ``fit``). ``schedules``:
    one for all or one per model. ``seed``: the shuffling seed of every model; None keeps each
    model's seed from an earlier fit and gives the others one fresh seed, the same for all (so
    they share batches). ``shuffle``: as ``fit``'s; one :class:`~blockprop.training.EpochOrders`
    gives every model the same orders. ``sample_weight``: as ``fit``'s, the same for every model.
    ``callbacks``: a list copied for each model, or one list per model.
    ``verbose``: 0 silent, 1 one progress bar over all models' epochs, 2 one line per model and
    epoch. Models of different dtypes train in separate groups (X is converted once per dtype).
    Everything is checked before any model trains: models of different input widths,
    duplicates, an empty list, counts of optimizers / schedules / callback lists that do not
    match, a model in use by another thread raise a clear error.
    """
    if isinstance(models, (str, bytes)) or not isinstance(models, (list, tuple)):
        raise TypeError(f"models must be a list of models, got {type(models).__name__}")
    models = list(models)
    k = len(models)
    if k == 0:
        raise ValueError("fit_many: models is empty (give at least one model)")
    for i, m in enumerate(models):
        if not (hasattr(m, "layers") and hasattr(m, "progress") and hasattr(m, "in_features")):
            raise TypeError(f"models[{i}] is {type(m).__name__}, not a blockprop model (Sequential)")
        for j in range(i):
            if models[j] is m:
                raise ValueError(f"models[{j}] and models[{i}] are the same model; give separate models")
    widths = [m.in_features for m in models]
    if len(set(widths)) > 1:
        i = widths.index(next(w for w in widths if w != widths[0]))
        raise ValueError(f"fit_many: the models take different input widths (models[0] takes "
                         f"{widths[0]} features, models[{i}] {widths[i]}); all read the same X")
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    epochs = training._count("epochs", epochs, 0)
    batch_size = training._count("batch_size", batch_size, 1)
    opts = _optimizers(optimizers, k)
    scheds = _per_model("schedules", schedules, k)
    cbs = _callbacks(callbacks, k)
    _check_callbacks(cbs)
    if seed is not None:
        training._count("seed", seed, 0, SEED_LIMIT)
    fresh = seed if seed is not None else int(cast(int, np.random.SeedSequence().entropy) % (2 ** 63))

    with _Claim(models):
        members = [_Member(i, m) for i, m in enumerate(models)]
        settings = []
        weights: Optional[np.ndarray] = None
        Xc: Dict[Any, np.ndarray] = {}  # X converted once per dtype, shared by the models
        for mb, opt, sched, cb in zip(members, opts, scheds, cbs):
            m = mb.model
            try:
                ep, bs, loss_fn, opt, sched = training.resolve_settings(m, epochs, batch_size, loss,
                                                                        opt, sched)
                if m.dtype not in Xc:
                    Xc[m.dtype] = training.as_inputs(m, X, keep_float64=True)
                Xm = Xc[m.dtype]
                Ym = training.as_targets(m, loss_fn, y, len(Xm))
                val = training.as_validation(m, loss_fn, validation_data)
                callbacks_module.check_monitors(cb, has_validation=val is not None,
                                                classifier=loss_fn.classifier)
                training.check_schedule(sched, opt.lr, m.progress.epochs, ep, math.ceil(len(Xm) / bs))
                if sample_weight is not None:  # checked for each model's loss; one array for all
                    w = training.as_sample_weight(sample_weight, len(Xm), loss_fn)
                    weights = w if weights is None else weights
            except (TypeError, ValueError) as e:
                raise type(e)(f"fit_many: models[{mb.index}]: {e}") from None
            settings.append((ep, bs, loss_fn, opt, sched, Xm, Ym, val, cb))
        # One epoch count and one X length for all models: the orders are checked once.
        shuffle = training.as_shuffle(shuffle, len(settings[0][5]), settings[0][0], "fit_many")
        bar = tqdm(total=k * settings[0][0], desc="fit_many", unit="epoch", disable=verbose != 1,
                   dynamic_ncols=True)
        for mb, (ep, bs, loss_fn, opt, sched, Xm, Ym, val, cb) in zip(members, settings):
            m = mb.model
            mb.restore = training.begin(m, loss_fn, opt, sched,
                                        seed if seed is not None or m.progress.seed is not None
                                        else fresh)
            mb.trainer = _Trainer(m, Xm, Ym, bs, None, weights)
            mb.cbs = cb + ([_Tick(bar)] if verbose == 1 else [])
            mb.settings = (ep, val)
        try:
            _drive(members, shuffle, 2 if verbose == 2 else 0)
        finally:
            bar.close()
    for mb in members:
        if mb.error is not None:
            raise mb.error
    return [mb.history for mb in members]  # type: ignore[misc]


def _drive(members: List[_Member], shuffle: bool, verbose: int) -> None:
    """Run every member's epoch loop to its end, round by round (see the module doc)."""
    with training._DeferInterrupt() as interrupt:
        live = []
        for mb in members:
            ep, val = mb.settings
            # stacklevel: a warning comes from epoch_loop, resumed by _advance, in _drive, in fit_many.
            mb.loop = training.epoch_loop(mb.model, mb.trainer, ep, shuffle, verbose, mb.cbs, val,
                                          interrupt, 6, mb.restore)
            if _advance(mb, None):
                live.append(mb)
        refused = next((mb.error for mb in members if mb.error is not None), None)
        if refused is not None:  # in a callback's on_train_begin: no model trains (as fit refuses)
            for mb in live:
                mb.loop.close()
                mb.restore()
            raise refused
        while live:
            groups: Dict[Any, List[_Member]] = {}
            for mb in live:
                groups.setdefault(mb.group_key() or ("alone", mb.index), []).append(mb)
            results: Dict[int, Tuple[float, int, int, bool]] = {}
            for key, group in groups.items():
                requests = [cast(training.Request, mb.request) for mb in group]
                if key[0] == "alone" or len(group) == 1:
                    for mb, req in zip(group, requests):
                        results[mb.index] = mb.trainer.train(*req, interrupt)
                    continue
                i, j, _ = requests[0]
                trainers = [mb.trainer for mb in group]
                rows = trainers[0]._rows(i, j)
                outs = _fastpath.train_many([t.fast for t in trainers], [t.model.optimizer for t in trainers],
                                            trainers[0].X, [t.Y for t in trainers], rows,
                                            trainers[0].batch_size,
                                            [np.asarray(req[2]) for req in requests],
                                            [t.total for t in trainers], trainers[0].weights)
                for mb, t, out in zip(group, trainers, outs):
                    t.total = out[0]
                    results[mb.index] = (*out, interrupt.requested)
            live = [mb for mb in live if _advance(mb, results[mb.index])]


def _advance(mb: _Member, result: Optional[Tuple[float, int, int, bool]]) -> bool:
    """Send ``result`` to the member's loop; True while it has another request."""
    try:
        mb.request = next(mb.loop) if result is None else mb.loop.send(result)
        return True
    except StopIteration as done:
        mb.history = done.value
    except KeyboardInterrupt as e:
        mb.error = e
    except Exception as e:  # the member stops; the others go on (raised after them)
        mb.error = e
    return False
