"""fit callbacks: early stopping (with best-weights restore), checkpoints, LR reduction, plain
callables, and their errors."""
import os

import numpy as np
import pytest

import blockprop as bp
from blockprop.callbacks import Callback, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
from blockprop.nn import Dense, Sequential
from blockprop.optim import SGD


def _data(n=60):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


def _model():
    return Sequential(Dense(4, 8, "relu", seed=0), Dense(8, 2, seed=1))


class Scripted(Callback):
    """Overwrites the monitored metric with a script of values (to drive the others)."""

    def __init__(self, values):
        self.values = list(values)

    def on_epoch_end(self, model, epoch, logs):
        pass


def _scripted_fit(model, values, cb, epochs=None):
    """fit where 'loss' seen by cb follows values: wrap cb's hook."""
    it = iter(values)
    original = cb.on_epoch_end
    seen = []

    def hook(m, epoch, logs):
        logs["loss"] = next(it)
        seen.append(epoch)
        original(m, epoch, logs)
    cb.on_epoch_end = hook
    X, y = _data()
    model.fit(X, y, epochs=epochs or len(values), batch_size=20, verbose=0, callbacks=[cb])
    return seen


def test_early_stopping_stops_and_restores_best_weights():
    model = _model()
    snapshots = []
    cb = EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    # record the weights after each epoch (callbacks run in order)
    record = lambda epoch, logs: snapshots.append(model.state_dict())
    X, y = _data()
    values = iter([1.0, 0.5, 0.7, 0.6, 0.4, 0.3])
    def inject(epoch, logs):
        logs_value = next(values)
        logs["loss"] = logs_value
    class Injecting(EarlyStopping):
        def on_epoch_end(self, m, epoch, logs):
            logs["loss"] = next(values)
            super().on_epoch_end(m, epoch, logs)
    cb = Injecting(monitor="loss", patience=2, restore_best_weights=True)
    model.fit(X, y, epochs=6, batch_size=20, optimizer=SGD(0.5), verbose=0, callbacks=[record, cb])
    assert len(model.history.epoch) == 4  # best at epoch 1, two epochs without improvement
    assert cb.best_epoch == 1 and cb.stopped_epoch == 3 and cb.best == 0.5
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[1][k])


def test_early_stopping_min_delta_and_mode():
    class Injecting(EarlyStopping):
        def __init__(self, values, **kw):
            super().__init__(**kw)
            self.values = iter(values)

        def on_epoch_end(self, m, epoch, logs):
            logs["accuracy"] = next(self.values)
            super().on_epoch_end(m, epoch, logs)
    X, y = _data()
    cb = Injecting([0.5, 0.505, 0.9, 0.9], monitor="accuracy", patience=1, min_delta=0.01)
    assert cb.mode == "max"
    model = _model()
    model.fit(X, y, epochs=4, batch_size=20, verbose=0, callbacks=[cb])
    assert len(model.history.epoch) == 2  # 0.505 is not better than 0.5 by more than 0.01


def test_model_checkpoint_best_only_and_every_epoch(tmp_path):
    X, y = _data()
    model = _model()
    best = ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss", save_best_only=True)
    every = ModelCheckpoint(str(tmp_path / "e{epoch:02d}-{loss:.2f}.npz"))
    model.fit(X, y, epochs=3, batch_size=20, optimizer=SGD(0.2), validation_data=(X, y), verbose=0,
              callbacks=[best, every])
    assert [os.path.basename(p)[:3] for p in every.saved] == ["e01", "e02", "e03"]
    assert all(os.path.exists(p) for p in every.saved)
    val = model.history.history["val_loss"]
    assert len(best.saved) == 1 + sum(val[i] < min(val[:i]) for i in range(1, 3))
    loaded = bp.load(tmp_path / "best.npz")
    assert loaded.evaluate(X, y)["loss"] == pytest.approx(min(val), rel=1e-6)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]  # atomic saves left nothing


def test_reduce_lr_on_plateau():
    class Injecting(ReduceLROnPlateau):
        values = iter([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5])

        def on_epoch_end(self, m, epoch, logs):
            logs["loss"] = next(self.values)
            super().on_epoch_end(m, epoch, logs)
    X, y = _data()
    model = _model()
    lrs = []
    cb = Injecting(monitor="loss", factor=0.5, patience=2, min_lr=0.03)
    model.fit(X, y, epochs=7, batch_size=20, optimizer=SGD(0.1), verbose=0,
              callbacks=[cb, lambda epoch, logs: lrs.append(model.optimizer.lr)])
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.05, 0.03, 0.03])
    assert model.history.history["lr"][3] == pytest.approx(0.05)  # the next epoch trains with it


def test_plain_callable_gets_epoch_and_logs():
    X, y = _data()
    calls = []
    model = _model()
    model.fit(X, y, epochs=2, batch_size=20, verbose=0, callbacks=[lambda e, logs: calls.append((e, dict(logs)))])
    model.fit(X, y, epochs=1, batch_size=20, verbose=0, callbacks=lambda e, logs: calls.append((e, dict(logs))))
    assert [e for e, _ in calls] == [0, 1, 2]
    assert calls[0][1]["loss"] == model.history.history["loss"][0] or calls[2][1]["loss"] == model.history.history["loss"][0]
    assert {"loss", "accuracy", "lr", "time"} <= set(calls[0][1])


def test_errors():
    X, y = _data()
    model = _model()
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(X, y, verbose=0, callbacks=[EarlyStopping()])
    with pytest.raises(TypeError, match="instance"):
        model.fit(X, y, verbose=0, callbacks=[EarlyStopping])
    with pytest.raises(TypeError, match="neither"):
        model.fit(X, y, verbose=0, callbacks=[42])
    with pytest.raises(ValueError, match="not recorded"):
        model.fit(X, y, verbose=0, callbacks=[EarlyStopping(monitor="los")])
    with pytest.raises(ValueError, match="accuracy"):
        model.fit(X, y.astype(np.float32)[:, None], loss="mse", verbose=0,
                  callbacks=[EarlyStopping(monitor="accuracy")]) if False else \
            Sequential(Dense(4, 1)).fit(X, y.astype(np.float32), loss="mse", verbose=0,
                                        callbacks=[EarlyStopping(monitor="accuracy")])
    with pytest.raises(ValueError, match="directory"):
        model.fit(X, y, verbose=0, callbacks=[ModelCheckpoint("/nonexistent/dir/m.npz")])
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=2)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
