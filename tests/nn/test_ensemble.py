"""blockprop.nn.Ensemble: members checked, trained as their own fits would train them (through
fit_many), averaged (mean and spread), scored, and saved / loaded as one file."""
from __future__ import annotations

import json
import os
import threading
import zipfile

import numpy as np
import pytest

import blockprop as bp
from blockprop import serialization
from blockprop.nn import BatchNorm1d, Dense, Dropout, Ensemble, Sequential
from blockprop.nn.sequential import load as load_sequential
from blockprop.optim import SGD, Adam

RTOL = 1e-6


def _data(n=96, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return X, y % classes


def _members(dtype="float32"):
    """A mixed group: depths, widths, activations, Dropout and BatchNorm."""
    return [Sequential(Dense(5, 8, "relu", seed=1, dtype=dtype), Dense(8, 3, seed=2, dtype=dtype)),
            Sequential(Dense(5, 16, "tanh", seed=3, dtype=dtype), Dense(16, 6, "relu", seed=4, dtype=dtype),
                       Dense(6, 3, seed=5, dtype=dtype)),
            Sequential(Dense(5, 12, seed=6, dtype=dtype), BatchNorm1d(12, dtype=dtype), Dropout(0.2),
                       Dense(12, 3, seed=7, dtype=dtype))]


def _copy(model):
    twin = model.astype(model.dtype)
    twin.load_state_dict(model.state_dict())
    return twin


def _assert_same_weights(a, b, rtol=RTOL):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        err = np.max(np.abs(sa[name] - sb[name]) / (np.abs(sb[name]) + 1e-6), initial=0.0)
        assert err <= rtol, f"{name}: shape {sa[name].shape} dtype {sa[name].dtype} max rel error {err:.3g}"


# --- members ---------------------------------------------------------------------------------
@pytest.mark.parametrize("models, error, match", [
    ([], ValueError, "at least one model"),
    (None, TypeError, "list of Sequential"),
    ([Dense(5, 3)], TypeError, "member 0 is Dense"),
    ([Sequential(Dense(5, 3)), Sequential(Dense(4, 3))], ValueError, "member 1 takes 4 input features but member 0 takes 5"),
    ([Sequential(Dense(5, 3)), Sequential(Dense(5, 2))], ValueError, "member 1 gives 2 outputs but member 0 gives 3"),
])
def test_members_are_checked(models, error, match):
    with pytest.raises(error, match=match):
        Ensemble(models)


def test_one_model_twice_and_a_bare_model_are_refused():
    m = Sequential(Dense(5, 3))
    with pytest.raises(ValueError, match="members 0 and 1 are the same model object"):
        Ensemble([m, m])
    with pytest.raises(TypeError, match="a list of models"):
        Ensemble(m)  # type: ignore[arg-type]


def test_container_protocol():
    members = _members()
    ens = Ensemble(iter(members))
    assert len(ens) == 3 and list(ens) == members and ens[1] is members[1]
    assert (ens.in_features, ens.out_features) == (5, 3)
    assert "Ensemble(" in repr(ens) and "Dense" in repr(ens)


# --- training ---------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["one", "each"])
def test_fit_leaves_each_member_as_its_own_fit(optimizer):
    X, y = _data()
    members = _members()
    twins = [_copy(m) for m in members]
    opts = [SGD(0.05, momentum=0.9), Adam(0.01), SGD(0.02, weight_decay=1e-3)]
    ens = Ensemble(members)
    given = Adam(0.01) if optimizer == "one" else opts
    histories = ens.fit(X, y, epochs=3, batch_size=16, loss="cross_entropy", optimizer=given, seed=7, verbose=0)
    assert len(histories) == 3
    for i, (m, twin) in enumerate(zip(members, twins)):
        own = Adam(0.01) if optimizer == "one" else [SGD(0.05, momentum=0.9), Adam(0.01),
                                                      SGD(0.02, weight_decay=1e-3)][i]
        h = twin.fit(X, y, epochs=3, batch_size=16, loss="cross_entropy", optimizer=own, seed=7, verbose=0)
        _assert_same_weights(m, twin)
        np.testing.assert_allclose(histories[i].history["loss"], h.history["loss"], rtol=RTOL)
        assert m.progress.epochs == twin.progress.epochs == 3


# --- inference ---------------------------------------------------------------------------------
def _trained(dtype="float32", loss="cross_entropy"):
    X, y = _data()
    members = _members(dtype)
    ens = Ensemble(members)
    ens.fit(X, y, epochs=2, batch_size=16, loss=loss, optimizer=Adam(0.01), seed=0, verbose=0)
    return ens, X, y


def test_predict_is_the_mean_and_the_spread():
    ens, X, y = _trained()
    outs = np.stack([m.predict(X) for m in ens])
    mean, std = ens.predict(X, return_std=True)
    np.testing.assert_allclose(ens.predict(X), outs.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(mean, outs.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, outs.std(axis=0), rtol=1e-5, atol=1e-7)
    probs = np.stack([m.predict_proba(X) for m in ens])
    pmean, pstd = ens.predict_proba(X, return_std=True)
    np.testing.assert_allclose(pmean, probs.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(pstd, probs.std(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(pmean.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(ens.predict_classes(X), probs.mean(axis=0).argmax(axis=1))
    assert mean.shape == std.shape == (len(X), 3) and mean.dtype == np.float32


def test_a_one_member_ensemble_scores_as_its_member():
    for loss in ("cross_entropy", "mse", "bce"):
        X, y = _data()
        Y = np.eye(3, dtype=np.float32)[y] if loss != "cross_entropy" else y
        m = Sequential(Dense(5, 8, "relu", seed=1, dtype="float64"), Dense(8, 3, seed=2, dtype="float64"))
        m.fit(X, Y, epochs=2, batch_size=16, loss=loss, seed=0, verbose=0)
        ens = Ensemble([m])
        ours, theirs = ens.evaluate(X, Y), m.evaluate(X, Y)
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-9), loss
        assert ours["member_loss"] == pytest.approx(theirs["loss"], rel=1e-12), loss
        if "accuracy" in theirs:
            assert ours["accuracy"] == theirs["accuracy"], loss


def test_evaluate_scores_the_mean_probability():
    ens, X, y = _trained("float64")
    p = np.stack([m.predict_proba(X) for m in ens]).mean(axis=0)
    scores = ens.evaluate(X, y)
    assert scores["loss"] == pytest.approx(-np.mean(np.log(p[np.arange(len(y)), y])), rel=1e-9)
    assert scores["accuracy"] == pytest.approx(np.mean(p.argmax(axis=1) == y))
    assert scores["member_loss"] == pytest.approx(np.mean([m.evaluate(X, y)["loss"] for m in ens]))


def test_evaluate_refuses_mixed_losses():
    X, y = _data()
    a, b = Sequential(Dense(5, 3, seed=1)), Sequential(Dense(5, 3, seed=2))
    a.fit(X, y, epochs=1, loss="cross_entropy", verbose=0)
    b.fit(X, np.eye(3)[y], epochs=1, loss="mse", verbose=0)
    with pytest.raises(ValueError, match="different losses"):
        Ensemble([a, b]).evaluate(X, y)
    assert "loss" in Ensemble([a, b]).evaluate(X, y, loss="cross_entropy")


# --- save / load -------------------------------------------------------------------------------
def test_save_load_round_trip_continues_training_identically(tmp_path):
    ens, X, y = _trained()
    path = tmp_path / "ens.npz"
    ens.save(str(path))
    back = bp.load(path)
    assert isinstance(back, Ensemble) and len(back) == len(ens)
    for a, b in zip(ens, back):
        assert [type(l) for l in a.layers] == [type(l) for l in b.layers]
        _assert_same_weights(a, b, rtol=0.0)
        assert a.progress == b.progress and type(a.optimizer) is type(b.optimizer)
        assert type(a.loss) is type(b.loss)
    np.testing.assert_array_equal(back.predict(X), ens.predict(X))
    ens.fit(X, y, epochs=1, batch_size=16, seed=0, verbose=0)  # optimizer state and progress kept
    back.fit(X, y, epochs=1, batch_size=16, seed=0, verbose=0)
    for a, b in zip(ens, back):
        _assert_same_weights(a, b, rtol=0.0)


def test_load_tells_a_model_file_from_an_ensemble_file(tmp_path):
    ens, X, y = _trained()
    ens.save(str(tmp_path / "ens.npz"))
    ens[0].save(str(tmp_path / "one.npz"))
    assert isinstance(bp.load(tmp_path / "one.npz"), Sequential)
    assert isinstance(load_sequential(str(tmp_path / "one.npz")), Sequential)
    with pytest.raises(ValueError, match="an ensemble of models .*load it with blockprop.load"):
        load_sequential(str(tmp_path / "ens.npz"))


def _rewrite(src, dst, header=None, drop=(), add=None):
    """A copy of the npz ``src`` with its header replaced, entries dropped or added."""
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files if k not in drop}
    if header is not None:
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    arrays.update(add or {})
    with open(dst, "wb") as out:
        np.savez(out, **arrays)
    return dst


def _header(path):
    with np.load(path) as f:
        return json.loads(f["__header__"].tobytes())


@pytest.mark.parametrize("case, match", [
    ("no members", "'members' must be a non-empty list"),
    ("member not a dict", "member 1 must be a dict"),
    ("missing array", r"member 1: missing array 'param/0.W'"),
    ("stray entry", "entries no member has: 'member/9/param/0.W'"),
    ("widths differ", "member 1 takes 4 input features"),
    ("bad layer", "member 0: .*unknown type 'Nope'"),
    ("truncated", "truncated or corrupted"),
])
def test_damaged_ensemble_files_are_refused_clearly(tmp_path, case, match):
    ens, X, y = _trained()
    good = str(tmp_path / "ens.npz")
    ens.save(good)
    bad = str(tmp_path / "bad.npz")
    h = _header(good)
    if case == "no members":
        _rewrite(good, bad, dict(h, members=[]))
    elif case == "member not a dict":
        _rewrite(good, bad, dict(h, members=[h["members"][0], 3]))
    elif case == "missing array":
        _rewrite(good, bad, drop=("member/1/param/0.W",))
    elif case == "stray entry":
        _rewrite(good, bad, add={"member/9/param/0.W": np.zeros(2, np.float32)})
    elif case == "widths differ":
        other = Ensemble([Sequential(Dense(5, 3, seed=1)), Sequential(Dense(5, 3, seed=2))])
        other.save(good)
        h = _header(good)
        h["members"][1]["layers"][0]["config"]["in_features"] = 4
        _rewrite(good, bad, h, drop=("member/1/param/0.W",), add={"member/1/param/0.W": np.zeros((3, 4), np.float32)})
    elif case == "bad layer":
        h["members"][0]["layers"][0]["type"] = "Nope"
        _rewrite(good, bad, h)
    else:
        with open(good, "rb") as f:
            data = f.read()
        with open(bad, "wb") as f:
            f.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match=match) as info:
        bp.load(bad)
    assert bad in str(info.value)


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    ens, X, y = _trained()
    path = str(tmp_path / "ens.npz")
    ens.save(path)
    before = open(path, "rb").read()

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        ens.save(path)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["ens.npz"]  # no temporary left
    monkeypatch.undo()
    assert isinstance(bp.load(path), Ensemble)
    with zipfile.ZipFile(path) as z:
        assert "member/2/param/0.W.npy" in z.namelist()
    assert serialization.ENSEMBLE_FORMAT == _header(path)["format"]


def test_save_is_refused_while_another_thread_trains_a_member(tmp_path):
    X, y = _data()
    members = _members()
    ens = Ensemble(members)
    started, release = threading.Event(), threading.Event()

    def hold(epoch, logs):
        started.set()
        release.wait(30)

    worker = threading.Thread(target=lambda: members[1].fit(X, y, epochs=1, verbose=0, callbacks=[hold]))
    worker.start()
    try:
        assert started.wait(30)
        with pytest.raises(RuntimeError, match=r"Sequential.save \(of an Ensemble\): this model is being used by another thread"):
            ens.save(str(tmp_path / "ens.npz"))
        assert not os.path.exists(tmp_path / "ens.npz")
    finally:
        release.set()
        worker.join()
    ens.save(str(tmp_path / "ens.npz"))  # free again
    assert members[0]._owner is None and members[2]._owner is None


def test_members_of_different_dtypes_train_and_average():
    X, y = _data()
    members = [Sequential(Dense(5, 8, "relu", seed=1), Dense(8, 3, seed=2)),
               Sequential(Dense(5, 8, "relu", seed=1, dtype="float64"), Dense(8, 3, seed=2, dtype="float64"))]
    twins = [_copy(m) for m in members]
    ens = Ensemble(members)
    ens.fit(X, y, epochs=2, batch_size=16, loss="cross_entropy", optimizer=Adam(0.01), seed=3, verbose=0)
    for m, twin in zip(members, twins):
        twin.fit(X, y, epochs=2, batch_size=16, loss="cross_entropy", optimizer=Adam(0.01), seed=3, verbose=0)
        _assert_same_weights(m, twin)
    mean = ens.predict(X)
    assert mean.dtype == np.float64
    np.testing.assert_allclose(mean, (members[0].predict(X).astype(np.float64) + members[1].predict(X)) / 2, rtol=1e-6)


def test_blockprop_save_takes_an_ensemble_and_refuses_what_is_no_model(tmp_path):
    ens, X, y = _trained()
    bp.save(ens, str(tmp_path / "e.npz"))
    back = bp.load(tmp_path / "e.npz")
    assert isinstance(back, Ensemble)
    np.testing.assert_array_equal(back.predict(X), ens.predict(X))
    with pytest.raises(TypeError, match="int is not a blockprop model"):
        bp.save(3, str(tmp_path / "x.npz"))  # type: ignore[arg-type]
    assert not os.path.exists(tmp_path / "x.npz")
