"""save / load: exact round trips, exact resumption, damaged files, atomic writes."""
import json
import os
import zipfile

import numpy as np
import pytest

import blockprop as bp
from blockprop import serialization
from blockprop.nn import Dense, ReLU, Sequential, Softmax, Tanh
from blockprop.optim import SGD, Adam
from blockprop.schedules import CosineDecay, Warmup


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)


def model(dtype="float32"):
    return Sequential(Dense(4, 16, "relu", seed=0, dtype=dtype), Dense(16, 8, init="xavier", seed=1, dtype=dtype),
                      Tanh(), Dense(8, 3, bias=False, seed=2, dtype=dtype))


def params_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_exact(tmp_path, dtype):
    X, y = data()
    m = model(dtype)
    m.fit(X, y, epochs=2, batch_size=16, optimizer=Adam(0.01, weight_decay=0.1, decoupled=True),
          schedule=Warmup(CosineDecay(10, 0.1), 1), seed=3, verbose=0)
    path = tmp_path / "model.npz"
    m.save(path)
    back = bp.load(path)
    assert repr(back) == repr(m) and back.dtype == np.dtype(dtype)
    assert [l.get_config() for l in back.layers] == [l.get_config() for l in m.layers]
    assert np.array_equal(back.predict(X), m.predict(X))
    assert type(back.loss) is type(m.loss) and repr(back.optimizer) == repr(m.optimizer)
    a, b = m.optimizer.state_dict(), back.optimizer.state_dict()
    assert a["hyperparameters"] == b["hyperparameters"] and a["state"].keys() == b["state"].keys()
    for name in a["state"]:
        assert a["state"][name]["step"] == b["state"][name]["step"] == 8
        for buf in ("m", "v"):
            assert np.array_equal(a["state"][name][buf], b["state"][name][buf])
    assert repr(back.schedule) == repr(m.schedule) and back.progress == m.progress


def test_untrained_model_round_trips(tmp_path):
    m = Sequential(Dense(3, 2, "sigmoid", seed=0), Softmax())
    m.save(tmp_path / "m")
    back = bp.load(tmp_path / "m")  # the path is used as given, no suffix added
    assert params_equal(m, back) and back.optimizer is None and back.loss is None


@pytest.mark.parametrize("make_optimizer", [lambda: SGD(0.05, momentum=0.9, nesterov=True), lambda: Adam(0.005)])
def test_resumed_training_equals_uninterrupted_training(tmp_path, make_optimizer):
    X, y = data(70)
    Xv, yv = data(20, seed=1)
    kwargs = dict(batch_size=16, validation_data=(Xv, yv), verbose=0)
    straight = model()
    h_straight = straight.fit(X, y, epochs=5, optimizer=make_optimizer(), schedule=CosineDecay(5), seed=11, **kwargs)
    first = model()
    first.fit(X, y, epochs=2, optimizer=make_optimizer(), schedule=CosineDecay(5), seed=11, **kwargs)
    first.save(tmp_path / "ckpt.npz")
    resumed = bp.load(tmp_path / "ckpt.npz")
    h_resumed = resumed.fit(X, y, epochs=3, **kwargs)  # loss, optimizer, schedule and seed come from the file
    assert params_equal(straight, resumed)
    assert h_resumed.history["loss"] == h_straight.history["loss"][2:]
    assert h_resumed.history["lr"] == h_straight.history["lr"][2:]


def test_custom_schedule_is_skipped_with_a_warning(tmp_path):
    X, y = data()
    m = model()
    m.fit(X, y, epochs=1, schedule=lambda epoch: 0.5, verbose=0)
    with pytest.warns(UserWarning, match="schedule"):
        m.save(tmp_path / "m.npz")
    assert bp.load(tmp_path / "m.npz").schedule is None


# --- damaged and foreign files ------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    X, y = data()
    m = model()
    m.fit(X, y, epochs=1, optimizer=SGD(0.1, momentum=0.9), verbose=0)
    path = tmp_path / "model.npz"
    m.save(path)
    return path


def _rewrite(src, dst, header=None, drop=(), replace=None):
    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files if k not in drop}
    if header is not None:
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    arrays.update(replace or {})
    with open(dst, "wb") as f:
        np.savez(f, **arrays)


def _header(path):
    with np.load(path) as npz:
        return json.loads(npz["__header__"].tobytes())


def test_truncated_files(saved, tmp_path):
    raw = saved.read_bytes()
    for cut in (0, 10, len(raw) // 3, len(raw) // 2, len(raw) - 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=str(bad.name)):
            bp.load(bad)


def test_corrupted_bytes(saved, tmp_path):
    raw = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as z:
        info = z.getinfo("param/0.W.npy")
    # Flip bytes inside the stored weights: the zip's CRC catches it.
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    for i in range(start, start + 8):
        raw[i] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        bp.load(bad)


def test_not_a_model_file(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __header__=np.array([{"format": "blockprop"}], dtype=object))
    for path, match in ((text, "not a readable"), (npy, "single array"), (plain, "no __header__"),
                        (pickled, "not a readable")):
        with pytest.raises(ValueError, match=match):
            bp.load(path)
    with pytest.raises(FileNotFoundError):
        bp.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("edit,match", [
    (lambda h: h.update(format_version=2), "format_version 2"),
    (lambda h: h.pop("format_version"), "format_version None"),
    (lambda h: h.update(format="keras"), "not a blockprop model file"),
    (lambda h: h["layers"][0].update(type="Conv2D"), "unknown type 'Conv2D'"),
    (lambda h: h["layers"][0]["config"].update(activation="swish"), "invalid model description"),
    (lambda h: h["layers"][0]["config"].update(units=3), "invalid model description"),
    (lambda h: h.update(optimizer=dict(h["optimizer"], type="RMSprop")), "unknown optimizer"),
    (lambda h: h.update(loss="HingeLoss"), "unknown loss"),
    (lambda h: h.update(layers=None), "invalid model description"),
])
def test_bad_headers(saved, tmp_path, edit, match):
    header = _header(saved)
    edit(header)
    bad = tmp_path / "bad.npz"
    _rewrite(saved, bad, header=header)
    with pytest.raises(ValueError, match=match):
        bp.load(bad)


def test_garbled_header_json(saved, tmp_path):
    bad = tmp_path / "bad.npz"
    _rewrite(saved, bad, replace={"__header__": np.frombuffer(b"{not json", np.uint8)})
    with pytest.raises(ValueError, match="corrupted header"):
        bp.load(bad)


@pytest.mark.parametrize("kwargs,match", [
    (dict(drop=("param/1.W",)), "missing array 'param/1.W'"),
    (dict(drop=("optim/0.b/velocity",)), "missing array 'optim/0.b/velocity'"),
    (dict(replace={"param/0.W": np.zeros((4, 16), np.float32)}), r"'param/0.W' has shape \(4, 16\)"),
    (dict(replace={"param/0.b": np.zeros(16, np.float64)}), "float64"),
    (dict(replace={"optim/0.W/velocity": np.zeros((3, 3), np.float32)}), "optim/0.W/velocity"),
])
def test_missing_or_misshapen_arrays(saved, tmp_path, kwargs, match):
    bad = tmp_path / "bad.npz"
    _rewrite(saved, bad, **kwargs)
    with pytest.raises(ValueError, match=match):
        bp.load(bad)


# --- atomic save --------------------------------------------------------------------------------
def test_failed_save_keeps_the_previous_file(saved, monkeypatch):
    before = saved.read_bytes()
    original = np.savez

    def crash_midway(f, **arrays):
        original(f, **dict(list(arrays.items())[:2]))  # part of the data is already written ...
        raise OSError("disk full")  # ... when the writer dies

    monkeypatch.setattr(serialization.np, "savez", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        model().save(saved)
    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == [saved.name]  # no temporary file left behind
    monkeypatch.undo()
    assert bp.load(saved).progress.updates == 2


def test_save_replaces_and_leaves_no_temporaries(saved):
    m = model("float64")
    m.save(saved)
    assert bp.load(saved).dtype == np.float64
    assert os.listdir(saved.parent) == [saved.name]
