"""save / load: exact round trips, exact resumption, damaged files, atomic writes; and model files
are safe: loading never runs code; every truncation and every corrupted header field gives a clear
error (or, for a field whose damage still describes a valid model, a model that really works); a
process killed while saving leaves the old or the new file, never a broken one.
"""
from __future__ import annotations

import copy
import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile

import numpy as np
import pytest

import blockprop as bp
from blockprop import serialization
from blockprop.diagnostics import TrainingDiagnosticWarning
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


# === Model files are safe: a tiny model saved with each optimizer, then attacked ===============
def tiny_model(optimizer):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 2)).astype(np.float32), np.arange(12) % 3
    m = Sequential(Dense(2, 3, "relu", seed=0), Tanh(), Dense(3, 3, seed=1))
    m.fit(X, y, epochs=2, batch_size=4, optimizer=optimizer, schedule=Warmup(CosineDecay(5), 1),
          seed=3, verbose=0)
    return m, X, y


@pytest.fixture(params=["sgd", "adam"])
def saved_tiny(request, tmp_path):
    opt = SGD(0.1, momentum=0.9) if request.param == "sgd" else Adam(0.01)
    m, X, y = tiny_model(opt)
    path = tmp_path / "tiny.npz"
    m.save(path)
    return path, m, X, y


def _weights(m):
    return {k: v.copy() for k, v in m.state_dict().items()}


# --- a file can never run code ---------------------------------------------------------------
class _Exploit:
    """Unpickling this creates a marker file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payloads_are_refused_and_never_run(tmp_path, saved_tiny):
    path, *_ = saved_tiny
    marker = tmp_path / "code-ran"
    payload = np.array([_Exploit(str(marker))], dtype=object)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    variants = {
        "object-array-entry": dict(arrays, **{"param/0.W": payload}),
        "object-header": dict(arrays, __header__=payload),
        "extra-object-entry": dict(arrays, evil=payload),
    }
    for name, contents in variants.items():
        bad = tmp_path / f"{name}.npz"
        with open(bad, "wb") as f:
            np.savez(f, **contents)
        assert not marker.exists()
        with pytest.raises(ValueError, match="tiny|" + name):
            bp.load(bad)
        assert not marker.exists(), f"{name}: loading ran code from the file"
    # A bare pickle, and a pickle renamed to .npz
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(ValueError, match="raw"):
        bp.load(raw)
    with pytest.raises(ValueError, match="raw"):
        bp.load(raw.rename(tmp_path / "raw.npz"))
    assert not marker.exists()


def test_object_arrays_are_refused_by_the_loader_itself(tmp_path, monkeypatch):
    """Whatever np.load would do by default, blockprop asks for allow_pickle=False."""
    seen = []
    real = np.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("allow_pickle"))
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    m, *_ = tiny_model(SGD(0.1))
    m.save(tmp_path / "m.npz")
    bp.load(tmp_path / "m.npz")
    assert seen and all(flag is False for flag in seen)


@pytest.mark.parametrize("member", ["__header__", "param/0.W"])
def test_a_member_that_is_not_an_npy_array_is_a_clear_error(tmp_path, member):
    """NumPy returns an archive member without the .npy magic as raw bytes; the loader refuses it
    with a ValueError naming the entry (found by the fuzzer: it was an AttributeError)."""
    m, *_ = tiny_model(SGD(0.1))
    good = tmp_path / "m.npz"
    m.save(good)
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        names = src.namelist()
        assert f"{member}.npy" in names, names
        for name in names:
            dst.writestr(name, b"not an npy file" if name == f"{member}.npy" else src.read(name))
    with pytest.raises(ValueError, match=rf"bad\.npz: not a readable blockprop model file \(entry '{member}' is not an array\)"):
        bp.load(bad)


# --- truncation at every byte ------------------------------------------------------------------
@pytest.fixture
def saved_adam(tmp_path):
    m, X, y = tiny_model(Adam(0.01))
    path = tmp_path / "tiny.npz"
    m.save(path)
    return path, m, X, y


def test_every_truncation_is_a_clear_error(saved_adam, tmp_path):
    path, *_ = saved_adam
    raw = path.read_bytes()
    bad = tmp_path / "cut.npz"
    tried = 0
    for cut in range(len(raw)):
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="cut.npz") as info:
            bp.load(bad)
        assert "Traceback" not in str(info.value)
        tried += 1
    assert tried == len(raw) > 1000


def test_every_flipped_byte_is_an_error_or_the_same_model(saved_adam, tmp_path):
    """One corrupted byte anywhere: a clear error, or (a byte the format does not use, e.g. a
    zip timestamp) a model identical to the saved one. Never a different model."""
    path, m, X, _ = saved_adam
    raw = bytearray(path.read_bytes())
    bad = tmp_path / "flip.npz"
    want = _weights(m)
    outcomes = {"refused": 0, "same": 0}
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        try:
            got = bp.load(bad)
        except ValueError as e:
            assert "flip.npz" in str(e)
            outcomes["refused"] += 1
            continue
        got_w = _weights(got)
        assert got_w.keys() == want.keys() and all(np.array_equal(got_w[k], want[k]) for k in want), (
            f"flipping byte {i} gave a different model")
        outcomes["same"] += 1
    assert outcomes["refused"] > len(raw) // 2, outcomes


# --- each header field corrupted ---------------------------------------------------------------
BAD_VALUES = [None, -1, 0, 2 ** 70, 1.5, float("nan"), float("inf"), "x", "", [], {}, [1, 2], {"a": 1}, True]


def _paths(node, prefix=()):
    """Every path into a JSON tree: dict keys and list indices."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _set(tree, path, value, delete=False):
    tree = copy.deepcopy(tree)
    node = tree
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


def _at(tree, path):
    for key in path:
        if isinstance(tree, dict) and key in tree or isinstance(tree, list) and isinstance(key, int) and key < len(tree):
            tree = tree[key]
        else:
            return "<absent>"
    return tree


def _check_usable(model, reference, X, y, what, field, edited, tmp_path):
    """A loaded model must train on without error, and predict like the saved one, unless the
    edit described another valid model: then that model, exactly as the edited file says."""
    if not np.array_equal(model.predict(X), reference.predict(X)) and _at(edited, field) != "<absent>":
        # (a deleted config entry takes its default: faithful too)
        model.save(tmp_path / "again.npz")
        with np.load(tmp_path / "again.npz") as npz:
            again = json.loads(npz["__header__"].tobytes())
        assert json.dumps(_at(again, field)) == json.dumps(_at(edited, field)), (
            f"{what}: loaded a different model than the file describes "
            f"({_at(again, field)!r} instead of {_at(edited, field)!r})")
    # A valid but absurd hyperparameter (an l2 of 1e21): training may diverge, as anywhere, and
    # fit then says so.
    absurd = _at(edited, field) == 2 ** 70
    with warnings.catch_warnings():
        if absurd:
            warnings.simplefilter("ignore", TrainingDiagnosticWarning)
        model.fit(X, y, epochs=1, batch_size=4, verbose=0)
    if absurd:
        return
    for k, v in model.state_dict().items():
        assert np.isfinite(v).all(), f"{what}: loaded, but training it gave non-finite {k}"


def test_every_header_field_corrupted(saved_tiny, tmp_path):
    path, m, X, y = saved_tiny
    with np.load(path) as npz:
        header = json.loads(npz["__header__"].tobytes())
    bad = tmp_path / "hdr.npz"
    tried = refused = 0
    for field in list(_paths(header))[1:]:
        edits = [(repr(v), _set(header, field, v)) for v in BAD_VALUES]
        if isinstance(field[-1], str):
            edits.append(("deleted", _set(header, field, None, delete=True)))
        for label, edited in edits:
            what = f"header field {'.'.join(map(str, field))} = {label}"
            _rewrite(path, bad, edited)
            tried += 1
            try:
                loaded = bp.load(bad)
            except ValueError as e:
                assert "hdr.npz" in str(e), f"{what}: error does not name the file: {e}"
                refused += 1
                continue
            except Exception as e:  # noqa: BLE001 - any other type is the failure being tested
                pytest.fail(f"{what}: {type(e).__name__}: {e}")
            try:
                _check_usable(loaded, m, X, y, what, field, edited, tmp_path)
            except AssertionError:
                raise
            except Exception as e:  # noqa: BLE001
                pytest.fail(f"{what}: loaded, but then {type(e).__name__}: {e}")
    assert tried > 300 and refused > tried // 2, (tried, refused)


def test_header_fields_of_every_optimizer_and_schedule_are_checked(tmp_path):
    """Hyperparameters out of range in the header are refused at load, not at the next fit."""
    m, X, y = tiny_model(Adam(0.01))
    path = tmp_path / "m.npz"
    m.save(path)
    with np.load(path) as npz:
        header = json.loads(npz["__header__"].tobytes())
    for field, value in [(("optimizer", "hyperparameters", "lr"), -1.0),
                         (("optimizer", "hyperparameters", "betas"), [1.5, 0.9]),
                         (("optimizer", "hyperparameters", "eps"), float("nan")),
                         (("schedule", "config", "warmup_epochs"), -2),
                         (("progress", "epochs"), -5), (("progress", "seed"), "x")]:
        _rewrite(path, tmp_path / "bad.npz", _set(header, field, value))
        with pytest.raises(ValueError, match="bad.npz"):
            bp.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("pid", ["1" * 25, "0", "-5", "4294967296", "\u0663"])  # last: Arabic-Indic 3
def test_a_stray_temporary_name_never_fails_a_save(tmp_path, pid):
    """A file named like a temporary with a 25-digit pid made every save raise OverflowError
    (after writing the file): the sweep of stale temporaries must never fail a save."""
    m = Sequential(Dense(2, 2, seed=0))
    path = tmp_path / "m.npz"
    stray = tmp_path / f"{serialization._temporary_head()}{pid}-m.npz-abc"
    stray.write_bytes(b"x")
    m.save(path)
    m.save(path)
    assert bp.load(path) is not None and stray.exists()


# --- hostile files: sizes checked before anything is allocated (issue 20) -----------------------
def _peak_while(fn):
    """(exception raised by fn, peak bytes traced meanwhile); NumPy's buffers are traced too."""
    import tracemalloc
    tracemalloc.start()
    try:
        fn()
        raised = None
    except Exception as e:  # noqa: BLE001 - returned for the caller to check
        raised = e
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return raised, peak


def test_norm_layer_sizes_are_checked_before_allocating(tmp_path):
    m = Sequential(Dense(2, 3, seed=0), bp.nn.LayerNorm(3), Dense(3, 2, seed=1))
    m.save(tmp_path / "m.npz")
    header = _header(tmp_path / "m.npz")
    header["layers"][1]["config"]["num_features"] = 2 ** 28  # 1 GiB of float32 parameters
    _rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", header=header)
    raised, peak = _peak_while(lambda: bp.load(tmp_path / "bad.npz"))
    assert isinstance(raised, ValueError) and "num_features=268435456" in str(raised), raised
    assert peak < 16 << 20, f"peaked at {peak / 2**20:.0f} MiB before refusing"


def _add_member(src, dst, name, header_shape, dtype, payload_bytes, compress):
    """src with an extra .npy member declaring header_shape, streamed (never held in memory)."""
    with zipfile.ZipFile(src) as z:
        members = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for n, b in members:
            z.writestr(n, b)
        with z.open(name + ".npy", "w", force_zip64=True) as f:
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                buf, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": header_shape})
            f.write(buf.getvalue())
            chunk = bytes(1 << 20)
            for start in range(0, payload_bytes, len(chunk)):
                f.write(chunk[:min(len(chunk), payload_bytes - start)])


@pytest.mark.parametrize("name,shape,size,compress,match", [
    ("junk", (2 ** 26,), 2 ** 28, True, "expands"),          # a 256 MiB zip bomb, ~250 KB on disk
    ("junk", (16,), 64, False, "entries the model does not have: 'junk'"),
    ("param/9.W", (4,), 16, False, "entries the model does not have: 'param/9.W'"),
    ("junk", (2 ** 40,), 64, False, "declares shape"),      # header and archive sizes disagree
])
def test_entries_are_checked_before_reading_and_unknown_ones_refused(saved, tmp_path, name, shape, size,
                                                                     compress, match):
    bad = tmp_path / "bad.npz"
    _add_member(saved, bad, name, shape, np.float32, size, compress)
    raised, peak = _peak_while(lambda: bp.load(bad))
    assert isinstance(raised, ValueError) and "bad.npz" in str(raised), raised
    assert re.search(match, str(raised)), raised
    assert peak < 16 << 20, f"peaked at {peak / 2**20:.0f} MiB before refusing"


def test_deeply_nested_header_is_a_value_error(saved, tmp_path):
    bad = tmp_path / "bad.npz"
    _rewrite(saved, bad, replace={"__header__": np.frombuffer(b"[" * 100_000 + b"]" * 100_000, np.uint8)})
    with pytest.raises(ValueError, match="bad.npz: corrupted header"):
        bp.load(bad)


@pytest.mark.parametrize("field,value", [
    (("optimizer", "scalars", "0.W", "step"), 2 ** 63 - 1),
    (("progress", "updates"), 2 ** 64), (("progress", "epochs"), 2 ** 62),
    (("progress", "seed"), 2 ** 64),
])
def test_header_counts_out_of_range_are_refused_at_load(tmp_path, field, value):
    m, X, y = tiny_model(Adam(0.01))
    path = tmp_path / "m.npz"
    m.save(path)
    _rewrite(path, tmp_path / "bad.npz", _set(_header(path), field, value))
    with pytest.raises(ValueError, match=r"bad.npz: .*must be an integer in \[0, 2\*\*6[24]\)"):
        bp.load(tmp_path / "bad.npz")
    # a value near the limit is accepted and still trains
    _rewrite(path, tmp_path / "edge.npz", _set(_header(path), field, 2 ** 64 - 1 if field[-1] == "seed" else 2 ** 61))
    bp.load(tmp_path / "edge.npz").fit(X, y, epochs=1, batch_size=4, verbose=0)


# --- a kill during save leaves the old or the new file -----------------------------------------
SAVER = textwrap.dedent("""
    import sys, numpy as np
    from blockprop.nn import Dense, Sequential
    from blockprop.optim import Adam
    path = sys.argv[1]
    m = Sequential(Dense(800, 800, seed=0), Dense(800, 800, seed=1))  # 5 MB, 15 MB with Adam state
    m.optimizer = Adam(0.01)
    for p in m.parameters().values():
        p.grad[...] = 0
    m.optimizer.step(m.parameters())
    version = 0
    while True:
        version += 1
        for p in m.parameters().values():
            p.data[...] = version
        m.save(path)
        print(version, flush=True)
""")


def test_kill_during_save_keeps_a_whole_file(tmp_path):
    path = tmp_path / "big.npz"
    rng = np.random.default_rng(0)
    kills = mid_save = 0
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()  # one complete save, so there is an old file
            assert first.strip(), "the saving process died before its first save"
            time.sleep(float(rng.uniform(0.0, 0.3)))  # land anywhere inside a later save
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            kills += 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        saved_versions = [int(line) for line in [first] + proc.stdout.read().split() if line.strip()]
        proc.stdout.close()
        leftovers = list(tmp_path.glob(".tmp-*-big.npz-*"))
        mid_save += bool(leftovers)  # the kill landed inside a save (its temporary file remains)
        model = bp.load(path)  # must not raise
        values = {float(p.data.flat[0]) for p in model.parameters().values()}
        assert len(values) == 1, f"attempt {attempt}: a mix of versions {values}"
        version = values.pop()
        for p in model.parameters().values():
            assert np.all(p.data == version), f"attempt {attempt}: a partly written version {version}"
        # The last complete save, or the one in flight if its rename had happened.
        assert version in (saved_versions[-1], saved_versions[-1] + 1), (version, saved_versions[-3:])
        model.save(path)  # the next save to the path removes what the killed one left
        assert not list(tmp_path.glob(".tmp-*")), f"attempt {attempt}: {leftovers} survived a save"
    assert kills == 5 and mid_save >= 1, (kills, mid_save)


@pytest.mark.skipif(os.name != "posix", reason="the liveness probe (signal 0) is POSIX only")
def test_save_removes_only_temporaries_of_dead_savers_of_that_file(tmp_path):
    """A save deletes the temporary files of earlier saves to the same path by processes of this
    host that are gone; those of a live process, of another host or of another file stay."""
    import socket
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid, host = int(dead.stdout), socket.gethostname()
    names = {"dead": f".tmp-{host}.{dead_pid}-m.npz-abc", "live": f".tmp-{host}.{os.getppid()}-m.npz-abc",
             "other host": f".tmp-{host}x.{dead_pid}-m.npz-abc",
             "other file": f".tmp-{host}.{dead_pid}-n.npz-abc", "not ours": f".tmp-{host}.x{dead_pid}-m.npz-a"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    Sequential(Dense(2, 3, seed=0)).save(tmp_path / "m.npz")
    left = {what for what, name in names.items() if (tmp_path / name).exists()}
    assert left == set(names) - {"dead"}, left
    assert {p.name for p in tmp_path.iterdir()} == set(names.values()) - {names["dead"]} | {"m.npz"}
