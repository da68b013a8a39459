"""fit_many (blockprop.many): every model of a mixed call ends bit for bit as its own ``fit`` with
the same arguments and seed, on every instruction set and in both dtypes; models on the C++ loop
that read the same batches really train as one group; a member that stops leaves the others
undisturbed; bad calls are refused before any model changes.
"""
from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest

import blockprop as bp
from blockprop import _fastpath, callbacks, nn, optim, schedules, training
from blockprop.nn.losses import get_loss

import step_cases as C
from test_step import assert_same_weights


def _fit_alone(case: C.Case, dtype: str, **kw) -> bp.Sequential:
    X, y = C.dataset(case.loss)
    model = case.model(dtype)
    model.fit(X, y, epochs=C.EPOCHS, batch_size=kw.get("batch_size", C.BATCH), loss=case.loss,
              optimizer=case.optimizer(), schedule=case.schedule(), seed=kw.get("seed", C.SEED),
              verbose=0, validation_data=kw.get("validation_data"))
    return model


def _by_loss():
    out = {}
    for name, case in C.CASES.items():
        out.setdefault(case.loss, []).append((name, case))
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce"])
def test_every_case_of_a_mixed_call_equals_its_own_fit(loss, dtype, isa, monkeypatch):
    """All step cases of one loss (every layer kind, activation, penalty, optimizer, schedule) in
    ONE fit_many call, per-model optimizers and schedules; each equals its own fit, history too."""
    named = _by_loss()[loss]
    grouped = []
    real = _fastpath.train_many

    def spy(plans, *args):
        grouped.append(len(plans))
        return real(plans, *args)

    monkeypatch.setattr(_fastpath, "train_many", spy)
    X, y = C.dataset(loss)
    models = [case.model(dtype) for _, case in named]
    hist = bp.fit_many(models, X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss=loss,
                       optimizers=[case.optimizer() for _, case in named],
                       schedules=[case.schedule() for _, case in named], seed=C.SEED, verbose=0)
    cpp = sum(case.cpp for _, case in named)
    if cpp > 1:  # the C++ members ran as one group, every chunk
        assert grouped and set(grouped) == {cpp}, f"group sizes {set(grouped)}, {cpp} C++ members"
    for (name, case), model, h in zip(named, models, hist):
        alone = _fit_alone(case, dtype)
        assert_same_weights(model, alone, f"{name} ({dtype}): fit_many vs fit")
        assert h is model.history
        got = {k: v for k, v in h.history.items() if k != "time"}
        want = {k: v for k, v in alone.history.history.items() if k != "time"}
        assert got == want, f"{name} ({dtype}): history differs"
        assert model.progress.updates == alone.progress.updates


def test_one_optimizer_is_copied_and_validation_and_seed_none(isa):
    X, y = C.dataset("cross_entropy")
    Xv, yv = X[:20] + 0.1, y[:20]
    case = C.CASES["l1+l2/Adam"]
    models = [case.model("float32") for _ in range(3)]
    opt = optim.Adam(0.01)
    bp.fit_many(models, X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss="cross_entropy", optimizers=opt,
                validation_data=(Xv, yv), verbose=0)
    assert opt.state == {} and all(m.optimizer is not opt for m in models)
    assert len({id(m.optimizer) for m in models}) == 3
    seeds = {m.progress.seed for m in models}
    assert len(seeds) == 1  # seed=None: one fresh seed for all, so they share batches
    alone = _fit_alone(case, "float32", seed=seeds.pop(), validation_data=(Xv, yv))
    for m in models:
        assert_same_weights(m, alone, "one optimizer copied")
        assert m.history.history["val_loss"] == alone.history.history["val_loss"]


def test_a_continued_model_keeps_its_seed_and_trains_beside_fresh_ones(isa):
    X, y = C.dataset("cross_entropy")
    case = C.CASES["l2/SGD-momentum"]
    earlier = case.model()
    earlier.fit(X, y, epochs=1, batch_size=8, optimizer=case.optimizer(), seed=5, verbose=0)
    want_earlier = case.model()
    want_earlier.fit(X, y, epochs=1, batch_size=8, optimizer=case.optimizer(), seed=5, verbose=0)
    models = [case.model(), case.model(), earlier]
    bp.fit_many(models, X, y, epochs=2, batch_size=C.BATCH, loss="cross_entropy",
                optimizers=[case.optimizer(), case.optimizer(), None], verbose=0)
    want_earlier.fit(X, y, epochs=2, batch_size=C.BATCH, verbose=0)
    assert earlier.progress.seed == 5
    assert_same_weights(earlier, want_earlier, "continued model")


def test_a_member_that_stops_early_leaves_the_others_undisturbed(isa):
    X, y = C.dataset("cross_entropy")
    case = C.CASES["dense-relu/SGD-momentum"]
    stopper = callbacks.LambdaCallback(lambda epoch, logs: None)

    class StopAt(callbacks.Callback):
        def on_epoch_end(self, model, epoch, logs):
            if epoch == 0:
                model.stop_training = True

    models = [case.model() for _ in range(3)]
    hist = bp.fit_many(models, X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss="cross_entropy",
                       optimizers=case.optimizer(), seed=C.SEED, verbose=0,
                       callbacks=[[stopper], [StopAt()], []])
    assert [len(h.epoch) for h in hist] == [C.EPOCHS, 1, C.EPOCHS]
    full = _fit_alone(case, "float64")
    assert_same_weights(models[0], full, "member beside one that stopped")
    assert_same_weights(models[2], full, "member beside one that stopped")
    one = case.model()
    X_, y_ = C.dataset("cross_entropy")
    one.fit(X_, y_, epochs=1, batch_size=C.BATCH, optimizer=case.optimizer(), seed=C.SEED, verbose=0)
    assert_same_weights(models[1], one, "member stopped after one epoch")


def test_an_error_in_one_members_callback_is_raised_after_the_others_finish():
    X, y = C.dataset("cross_entropy")
    case = C.CASES["dense-relu/SGD-momentum"]

    def boom(epoch, logs):
        raise ZeroDivisionError("callback failed")

    models = [case.model() for _ in range(2)]
    with pytest.raises(ZeroDivisionError, match="callback failed"):
        bp.fit_many(models, X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss="cross_entropy",
                    optimizers=case.optimizer(), seed=C.SEED, verbose=0, callbacks=[[boom], []])
    assert_same_weights(models[1], _fit_alone(case, "float64"), "member beside a failing one")


def test_shared_callbacks_are_copied_per_model():
    X, y = C.dataset("cross_entropy")
    case = C.CASES["dense-relu/SGD-momentum"]
    es = callbacks.EarlyStopping(monitor="loss", patience=0)
    models = [case.model() for _ in range(2)]
    bp.fit_many(models, X, y, epochs=2, batch_size=C.BATCH, loss="cross_entropy",
                optimizers=case.optimizer(), seed=C.SEED, verbose=0, callbacks=[es])
    fresh = callbacks.EarlyStopping(monitor="loss", patience=0)
    assert repr(es.__dict__) == repr(fresh.__dict__)  # the original is untouched: each model had a copy
    assert [len(m.history.epoch) for m in models] == [2, 2]


def test_checkpoints_of_several_models_never_share_a_file(tmp_path):
    """A ModelCheckpoint given once for all models saves each to its own file through {model};
    without {model} (shared, or the same path in two models' lists) the call is refused before
    any model trains, since one model's checkpoints would overwrite another's. One callback object
    in two models' lists is refused too (its state would mix)."""
    X, y = C.dataset("cross_entropy")
    case = C.CASES["dense-relu/SGD-momentum"]
    models = [case.model() for _ in range(3)]
    ckpt = callbacks.ModelCheckpoint(tmp_path / "m{model}-e{epoch}.npz", monitor="loss")
    bp.fit_many(models, X, y, epochs=2, batch_size=C.BATCH, loss="cross_entropy",
                optimizers=case.optimizer(), seed=C.SEED, verbose=0, callbacks=[ckpt])
    for i, m in enumerate(models):
        saved = bp.load(tmp_path / f"m{i}-e2.npz")
        assert all(np.array_equal(saved.state_dict()[k], v) for k, v in m.state_dict().items())
    assert ckpt.saved == [] and ckpt.fields == {}  # the given one untouched: each model had a copy
    same = str(tmp_path / "same-{epoch}.npz")
    _refused([_mlp(), _mlp()], "same path", callbacks=[callbacks.ModelCheckpoint(same, monitor="loss")])
    _refused([_mlp(), _mlp()], "same path", callbacks=[[callbacks.ModelCheckpoint(same, monitor="loss")],
                                                       [callbacks.ModelCheckpoint(same, monitor="loss")]])
    es = callbacks.EarlyStopping(monitor="loss")
    _refused([_mlp(), _mlp()], "same EarlyStopping object", callbacks=[[es], [es]])
    assert not list(tmp_path.glob("same-*"))
    with pytest.raises(ValueError, match="cannot format path"):  # {model} outside fit_many
        _mlp().fit(X, y, epochs=1, batch_size=C.BATCH, loss="cross_entropy", optimizer="sgd", verbose=0,
                   callbacks=[callbacks.ModelCheckpoint(tmp_path / "m{model}.npz", monitor="loss")])


def _mlp(features=C.FEATURES, dtype="float64"):
    return bp.Sequential(nn.Dense(features, 4, "relu", seed=1, dtype=dtype), nn.Dense(4, 3, seed=2, dtype=dtype))


def _refused(models, match, exc=ValueError, **kw):
    X, y = C.dataset("cross_entropy")
    listed = models if isinstance(models, list) else [models]
    kept = [m for m in listed if hasattr(m, "state_dict")]
    before = [m.state_dict() for m in kept]
    args = dict(epochs=1, batch_size=C.BATCH, loss="cross_entropy", optimizers=optim.SGD(0.1), verbose=0)
    args.update(kw)
    with pytest.raises(exc, match=match):
        bp.fit_many(models, X, y, **args)
    for m, b in zip(kept, before):
        assert all(np.array_equal(m.state_dict()[k], b[k]) for k in b)
        assert m.history is None and m.optimizer is None and m.progress.updates == 0


def test_bad_calls_are_refused_before_training():
    _refused([], "empty")
    _refused([_mlp(), _mlp(features=C.FEATURES + 1)], "different input widths")
    m = _mlp()
    _refused([m, m], "same model")
    _refused([_mlp(), _mlp()], "optimizers: got 3 for 2 models", optimizers=[optim.SGD(0.1)] * 3)
    opt = optim.SGD(0.1)
    _refused([_mlp(), _mlp()], "same object", optimizers=[opt, opt])
    _refused([_mlp(), _mlp()], "schedules: got 1 for 2 models", schedules=[schedules.Constant()])
    _refused([_mlp(), _mlp()], "callbacks: got 3 for 2 models", callbacks=[[], [], []])
    _refused([_mlp(), "model"], "not a blockprop model", exc=TypeError)
    _refused(_mlp(), "list of models", exc=TypeError)
    _refused([_mlp(), _mlp()], "epochs must be ≥ 0", epochs=-1)
    _refused([_mlp(), _mlp()], "batch_size must be ≥ 1", batch_size=0)
    two = bp.Sequential(nn.Dense(C.FEATURES, 2, seed=1, dtype="float64"))
    _refused([_mlp(), two], r"models\[1\]: .*label")
    _refused([_mlp(), _mlp()], r"models\[0\]: schedule .* returned inf",
             schedules=lambda e: float("inf"))
    _refused([_mlp(), _mlp()], "val_loss", callbacks=[callbacks.EarlyStopping()])


def test_a_model_in_use_by_another_thread_is_refused():
    busy, free = _mlp(), _mlp()
    entered, release = threading.Event(), threading.Event()

    def hold(epoch, logs):
        entered.set()
        release.wait(10)

    X, y = C.dataset("cross_entropy")
    t = threading.Thread(target=lambda: busy.fit(X, y, epochs=1, verbose=0, callbacks=[hold]))
    t.start()
    try:
        assert entered.wait(10)
        with pytest.raises(RuntimeError, match=r"models\[1\]: .*being used by another thread"):
            bp.fit_many([free, busy], X, y, epochs=1, batch_size=C.BATCH, loss="cross_entropy",
                        optimizers=optim.SGD(0.1), verbose=0)
        assert free.progress.updates == 0 and free.optimizer is None
    finally:
        release.set()
        t.join()


def test_cpp_eligibility_is_the_fastpath_plan():
    """The members grouped are exactly those _fastpath.plan accepts (one rule)."""
    for name, case in C.CASES.items():
        assert (_fastpath.plan(case.model(), get_loss(case.loss), case.optimizer()) is not None) == case.cpp, name


def test_a_diverging_member_warns_at_the_callers_line_and_leaves_the_others_undisturbed():
    X, y = C.dataset("cross_entropy")
    case = C.CASES["dense-relu/SGD-momentum"]
    models = [case.model() for _ in range(3)]
    opts = [case.optimizer(), optim.SGD(1e30, momentum=0.9), case.optimizer()]
    with pytest.warns(bp.diagnostics.TrainingDiagnosticWarning, match="diverged") as record:
        bp.fit_many(models, X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss="cross_entropy",
                    optimizers=opts, seed=C.SEED, verbose=0)
    assert record[0].filename == __file__
    assert not np.isfinite(models[1].history.history["loss"][-1])
    full = _fit_alone(case, "float64")
    assert_same_weights(models[0], full, "member beside a diverging one")
    assert_same_weights(models[2], full, "member beside a diverging one")


def _varied(k: int, features: int, dtype: str):
    """k models of different depths, widths, activations, biases, penalties, Dropout, optimizers."""
    acts = ["relu", "tanh", "sigmoid", "leaky_relu", "elu", "softplus", None]
    models, opts = [], []
    for i in range(k):
        width = [16, 40, 7, 64, 33][i % 5]
        layers = [nn.Dense(features, width, acts[i % len(acts)], seed=10 + i, dtype=dtype,
                           bias=i % 4 != 3, l2=0.01 * (i % 3), l1=0.001 * (i % 2))]
        if i % 3 == 1:
            layers.append(nn.Dropout(0.25, seed=i))
        if i % 2:
            layers.append(nn.Dense(width, 12, "relu", seed=20 + i, dtype=dtype))
            width = 12
        layers.append(nn.Dense(width, 3, seed=30 + i, dtype=dtype))
        models.append(bp.Sequential(*layers))
        opts.append(optim.Adam(0.003 * (1 + i % 3)) if i % 2 else optim.SGD(0.05 * (1 + i % 4), momentum=0.9))
    return models, opts


@pytest.mark.parametrize("k", [3, 9])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_varied_models_on_wide_inputs_equal_their_own_fit(k, dtype, isa, monkeypatch):
    """Different widths, depths, activations, penalties, optimizers, with and without a first-layer
    bias, on 300 features (more than one k block of the GEMM) and batches of 33 (uneven tiles):
    each model equals its own fit bit for bit (3 models: one after another; 9: threads over models)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(150, 300))
    y = rng.integers(0, 3, 150)
    models, opts = _varied(k, 300, dtype)
    alone, alone_opts = _varied(k, 300, dtype)
    sizes = []
    real = _fastpath.train_many
    monkeypatch.setattr(_fastpath, "train_many", lambda plans, *a: sizes.append(len(plans)) or real(plans, *a))
    bp.fit_many(models, X, y, epochs=2, batch_size=33, loss="cross_entropy", optimizers=opts, seed=4,
                verbose=0)
    assert set(sizes) == {k}  # one group: biased and unbiased first layers together
    for i, (m, a, o) in enumerate(zip(models, alone, alone_opts)):
        a.fit(X, y, epochs=2, batch_size=33, loss="cross_entropy", optimizer=o, seed=4, verbose=0)
        assert_same_weights(m, a, f"varied model {i} of {k} ({dtype})")
        assert m.history.history["loss"] == a.history.history["loss"]


def test_calls_longer_than_one_gathered_part_equal_their_own_fit(isa):
    """The core gathers a call's batches once for every group, a part of the call at a time (at
    most 16 MiB of rows and transposes): 12,001 rows of 784 float64 features at batch 64 are three
    parts a call, with a short last batch. Models in groups of their own (threads over groups), one
    with Dropout after its first layer (whose masks follow the batch number across parts), each
    equal their own fit bit for bit."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(12001, 784))
    y = rng.integers(0, 10, 12001)

    def build():
        models = []
        for i, (width, act) in enumerate([(200, "relu"), (150, "tanh"), (96, "relu"), (64, "sigmoid")]):
            layers = [nn.Dense(784, width, act, seed=40 + i, dtype="float64")]
            if i == 0:
                layers.append(nn.Dropout(0.2, seed=5))
            layers.append(nn.Dense(width, 10, seed=50 + i, dtype="float64"))
            models.append(bp.Sequential(*layers))
        return models, [optim.SGD(0.02 * (1 + i), momentum=0.9) if i % 2 else optim.Adam(0.001)
                        for i in range(4)]

    models, opts = build()
    bp.fit_many(models, X, y, epochs=1, batch_size=64, loss="cross_entropy", optimizers=opts, seed=2,
                verbose=0)
    alone, alone_opts = build()
    for i, (m, a, o) in enumerate(zip(models, alone, alone_opts)):
        a.fit(X, y, epochs=1, batch_size=64, loss="cross_entropy", optimizer=o, seed=2, verbose=0)
        assert_same_weights(m, a, f"model {i} of a call of three gathered parts")
        assert m.history.history["loss"] == a.history.history["loss"]


def test_a_callback_refusing_at_train_begin_refuses_the_whole_call(tmp_path):
    """As fit refuses a ModelCheckpoint whose directory is missing before any update, fit_many
    refuses the call before any model trains, and every model is as before."""
    models = [_mlp(), _mlp()]
    missing = str(tmp_path / "no" / "such" / "dir" / "m.npz")
    _refused(models, "director", exc=(OSError, ValueError),
             callbacks=[[], [callbacks.ModelCheckpoint(missing, monitor="loss")]])


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_verbose_modes(verbose, capsys):
    X, y = C.dataset("cross_entropy")
    case = C.CASES["dense-relu/SGD-momentum"]
    models = [case.model() for _ in range(2)]
    bp.fit_many(models, X, y, epochs=2, batch_size=C.BATCH, loss="cross_entropy",
                optimizers=case.optimizer(), seed=C.SEED, verbose=verbose)
    out, err = capsys.readouterr()
    assert out.count("Epoch ") == (4 if verbose == 2 else 0)
    assert ("fit_many" in err) == (verbose == 1)
    with pytest.raises(ValueError, match="verbose"):
        bp.fit_many(models, X, y, epochs=1, batch_size=C.BATCH, loss="cross_entropy",
                    optimizers=case.optimizer(), verbose=3)


def test_models_of_both_dtypes_train_in_separate_groups_each_as_its_own_fit(isa, monkeypatch):
    X, y = C.dataset("cross_entropy")
    case = C.CASES["l2/SGD-momentum"]
    dtypes = ["float32", "float64", "float32", "float64"]
    models = [case.model(dt) for dt in dtypes]
    sizes = []
    real = _fastpath.train_many
    monkeypatch.setattr(_fastpath, "train_many", lambda plans, *a: sizes.append(len(plans)) or real(plans, *a))
    bp.fit_many(models, X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss="cross_entropy",
                optimizers=case.optimizer(), seed=C.SEED, verbose=0)
    assert set(sizes) == {2}  # one group per dtype
    for m, dt in zip(models, dtypes):
        assert m.dtype == np.dtype(dt)
        assert_same_weights(m, _fit_alone(case, dt), f"{dt} model beside models of the other dtype")


def test_ctrl_c_stops_every_model_at_an_update_boundary(monkeypatch):
    """A SIGINT during the call (here from a callback) stops every model after its chunk in flight,
    each consistent (its completed epochs in its history); KeyboardInterrupt is raised. (Calls of
    any length: this small epoch would otherwise be one call, see Trainer.min_rows_per_call.)"""
    monkeypatch.setattr(training.Trainer, "min_rows_per_call", 1)
    X, y = C.dataset("cross_entropy")
    cases = [C.CASES["dense-relu/SGD-momentum"], C.CASES["BatchNorm1d/Adam"], C.CASES["l2/SGD-momentum"]]
    models = [case.model() for case in cases]

    def interrupt(epoch, logs):
        if epoch == 0:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        bp.fit_many(models, X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss="cross_entropy",
                    optimizers=[case.optimizer() for case in cases], seed=C.SEED, verbose=0,
                    callbacks=[[interrupt], [], []])
    assert [len(m.history.epoch) for m in models] == [1, 1, 1]
    steps = -(-C.N // C.BATCH)
    assert all(steps < m.progress.updates < C.EPOCHS * steps for m in models)  # stopped inside epoch 2
    assert all(m.progress.epochs == 2 for m in models)  # the interrupted epoch counts, as in fit
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_given_epoch_orders_are_shared_by_every_model_and_each_equals_its_own_fit(isa, monkeypatch):
    """One EpochOrders for all models: they read the same batches (one group) whatever their seeds,
    and each ends as its own fit with those orders; orders that do not fit X are refused first."""
    X, y = C.dataset("cross_entropy")
    rng = np.random.default_rng(5)
    orders = training.EpochOrders([rng.permutation(len(X)) for _ in range(C.EPOCHS)])
    case = C.CASES["dense-relu/SGD-momentum"]
    models = [case.model() for _ in range(3)]
    for i, m in enumerate(models):
        m.progress.seed = 10 + i  # different seeds: the given orders decide, not the seeds
    sizes = []
    real = _fastpath.train_many
    monkeypatch.setattr(_fastpath, "train_many", lambda plans, *a: sizes.append(len(plans)) or real(plans, *a))
    bp.fit_many(models, X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss="cross_entropy",
                optimizers=case.optimizer(), shuffle=orders, verbose=0)
    assert set(sizes) == {3}
    for m in models:
        alone = case.model()
        alone.fit(X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss="cross_entropy",
                  optimizer=case.optimizer(), shuffle=orders, verbose=0)
        assert_same_weights(m, alone, "given orders: fit_many vs fit")
    _refused([_mlp(), _mlp()], "orders of 1 epochs", epochs=2,
             shuffle=training.EpochOrders([np.arange(len(X))]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sample_weight_is_every_models_and_each_equals_its_own_weighted_fit(dtype, isa, monkeypatch):
    """sample_weight as fit's, one array for all models: the C++ members train as one group with
    it, any other member (BatchNorm: the Python loop) with it too, and each ends, history included,
    as its own fit with the same weights; bad weights are refused before any model trains."""
    X, y = C.dataset("cross_entropy")
    w = np.random.default_rng(9).uniform(0, 3, len(X))
    w[::7] = 0.0  # rows left out
    names = ["dense-relu/SGD-momentum", "l1+l2/Adam", "dense-relu/SGD-momentum", "BatchNorm1d/Adam"]
    cases = [C.CASES[n] for n in names]
    sizes = []
    real = _fastpath.train_many
    monkeypatch.setattr(_fastpath, "train_many", lambda plans, *a: sizes.append(len(plans)) or real(plans, *a))
    models = [case.model(dtype) for case in cases]
    bp.fit_many(models, X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss="cross_entropy",
                optimizers=[case.optimizer() for case in cases], seed=C.SEED, verbose=0, sample_weight=w)
    assert set(sizes) == {sum(case.cpp for case in cases)}
    for name, case, m in zip(names, cases, models):
        alone = case.model(dtype)
        alone.fit(X, y, epochs=C.EPOCHS, batch_size=C.BATCH, loss="cross_entropy", optimizer=case.optimizer(),
                  seed=C.SEED, verbose=0, sample_weight=w)
        assert_same_weights(m, alone, f"{name} ({dtype}) with sample weights: fit_many vs fit")
        assert m.history.history["loss"] == alone.history.history["loss"]
    _refused([_mlp(), _mlp()], "sample_weight must be ≥ 0", sample_weight=-w)
    _refused([_mlp(), _mlp()], r"sample_weight must have shape", sample_weight=w[:-1])
