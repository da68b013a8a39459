"""Saving and loading models: one ``.npz`` file, safe to load from anywhere.

Layout: every array is an entry (``param/0.W``, ``buffer/1.running_mean``, ``optim/0.W/m``, ...) and ``__header__`` is a
uint8 array holding UTF-8 JSON: ``{"format": "blockprop", "format_version": 1, "dtype",
"layers", "loss", "optimizer", "schedule", "progress"}``. An ensemble (``blockprop.nn.Ensemble``)
is one file too: ``{"format": "blockprop-ensemble", "format_version": 1, "members": [...]}``, each
member a model header as above, its arrays under ``member/<i>/``. Loading never unpickles, so a file can't
run code; any damage or mismatch is reported as ``ValueError``. Saving goes through a temporary
file that replaces the target only once fully written, so a crash never loses the old file; a
later save to the same path removes what a killed one left (see ``_remove_stale_temporaries``).
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import warnings
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import schedules
from .model import SEED_LIMIT, Model
from .nn.layers import LAYER_TYPES, Layer
from .nn.losses import LOSS_TYPES
from .optim import OPTIMIZER_TYPES

FORMAT, FORMAT_VERSION = "blockprop", 1
ENSEMBLE_FORMAT = "blockprop-ensemble"  # blockprop.nn.Ensemble.save: several models in one file


def _header(model: Model) -> Dict[str, Any]:
    schedule = None
    if model.schedule is not None:
        try:
            schedule = schedules.to_config(model.schedule)
        except ValueError:
            warnings.warn(f"save: the custom schedule {model.schedule!r} is not saved; pass it "
                          "again to fit after loading", stacklevel=3)
    p = model.progress
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "dtype": model.dtype.name,
        "layers": [{"type": type(l).__name__, "config": l.get_config()} for l in model.layers],
        "loss": type(model.loss).__name__ if model.loss is not None else None,
        "schedule": schedule,
        "progress": {"epochs": p.epochs, "updates": p.updates, "seed": p.seed},
    }


def _arrays_and_optimizer(model: Model):
    arrays = {f"param/{name}": p.data for name, p in model.parameters().items()}
    arrays.update({f"buffer/{name}": b for name, b in model.buffers().items()})
    optimizer = None
    if model.optimizer is not None:
        sd = model.optimizer.state_dict()
        scalars: Dict[str, Dict[str, Any]] = {}
        for pname, buffers in sd["state"].items():
            for key, value in buffers.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim/{pname}/{key}"] = value
                else:
                    scalars.setdefault(pname, {})[key] = value
        optimizer = {"type": sd["type"], "hyperparameters": sd["hyperparameters"],
                     "buffers": sorted(k for k in arrays if k.startswith("optim/")), "scalars": scalars}
    return arrays, optimizer


def _temporary_head() -> str:
    """Start of the names of this host's temporary save files: ``.tmp-HOST.``, then ``PID-NAME-``
    and mkstemp's random part, so that a later save can tell a file that a killed process left."""
    return f".tmp-{socket.gethostname()}."


def _remove_stale_temporaries(path: str, directory: str) -> None:
    """Delete the temporary files that saves to ``path`` by processes of this host that no longer
    run have left (killed mid-save): nothing else can finish them. Files of live processes, of
    other hosts (a shared directory) or of other targets are left alone; POSIX only (the liveness
    probe, signal 0, would terminate the process on Windows)."""
    if os.name != "posix":
        return
    head, target = _temporary_head(), os.path.basename(path) + "-"
    try:
        names = [n for n in os.listdir(directory) if n.startswith(head)]
    except OSError:
        return
    for name in names:
        pid, _, rest = name[len(head):].partition("-")
        # A pid beyond what the OS hands out (a stray name, 25 digits) is no saver of ours: os.kill
        # would raise OverflowError after the new file was written.
        if not (pid.isascii() and pid.isdigit() and rest.startswith(target)) or int(pid) == os.getpid() \
                or not 0 < int(pid) < 2 ** 31:
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive: its save may still be in progress
        except ProcessLookupError:
            pass
        except OSError:
            continue  # alive but another user's, or unknown: keep
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def save(model: Model, path: str) -> None:
    """Write ``model`` to ``path`` atomically (see the module docstring for the format); an
    ``Ensemble`` (no ``layers``, its own ``save``) writes itself."""
    if not hasattr(model, "layers"):
        own = getattr(model, "save", None)
        if callable(own) and hasattr(model, "models"):
            own(path)
            return
        raise TypeError(f"blockprop.save: {type(model).__name__} is not a blockprop model "
                        "(Sequential or Ensemble)")
    header = _header(model)
    arrays, header["optimizer"] = _arrays_and_optimizer(model)
    _write(path, header, arrays)


def save_ensemble(models: List[Model], path: str) -> None:
    """Write the members of an ensemble to ``path`` as one file, atomically: the header's
    ``"members"`` holds each member's model header, and member ``i``'s arrays are stored under
    ``member/i/`` (``member/0/param/0.W``, ...)."""
    members, arrays = [], {}
    for i, model in enumerate(models):
        header = _header(model)
        del header["format"], header["format_version"]  # the file's, said once
        own, header["optimizer"] = _arrays_and_optimizer(model)
        if header["optimizer"] is not None:
            header["optimizer"]["buffers"] = [f"member/{i}/{k}" for k in header["optimizer"]["buffers"]]
        arrays.update({f"member/{i}/{k}": v for k, v in own.items()})
        members.append(header)
    _write(path, {"format": ENSEMBLE_FORMAT, "format_version": FORMAT_VERSION, "members": members}, arrays)


def _write(path: str, header: Dict[str, Any], arrays: Dict[str, Any]) -> None:
    """``arrays`` and ``header`` (as ``__header__``) to ``path`` through a temporary file that
    replaces it only once complete."""
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{_temporary_head()}{os.getpid()}-{os.path.basename(path)}-",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable; not possible everywhere (e.g. Windows)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    try:  # housekeeping: the model is saved, whatever happens here
        _remove_stale_temporaries(path, directory)
    except Exception:  # noqa: BLE001
        pass


# The zip and .npy readers answer damaged bytes with many exception types (ValueError,
# BadZipFile, NotImplementedError for a corrupted "version needed" field, RuntimeError for a set
# "encrypted" flag, zlib.error, tokenize.TokenError and SyntaxError from the .npy header parser,
# MemoryError for a header declaring an enormous shape, ...): while reading the container, every
# Exception means "not a readable file". Our own checks come after, on the arrays read.
_DAMAGE = (Exception,)


_WHAT_LOAD_READS = ("blockprop.load reads only files written by Sequential.save, Ensemble.save or "
                    "`python -m blockprop train --save`, and never unpickles")


def _unreadable(path: str, error: BaseException) -> str:
    """The message for a file np.load refuses. NumPy's own advice ("load it unsafely using the
    allow_pickle= keyword") names an option blockprop.load does not have, so it is not passed on."""
    if "pickle" in str(error):
        return (f"{path}: not a readable blockprop model file: not an .npz archive of plain arrays "
                f"(text, a pickle or object arrays); {_WHAT_LOAD_READS}")
    return f"{path}: not a readable blockprop model file (truncated or corrupted?): {error}"


def _read(path: str) -> "_Entries":
    """The file's entries (shapes checked now, data read on demand)."""
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except _DAMAGE as e:
        raise ValueError(_unreadable(path, e)) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not a blockprop model file (a single array, not an .npz archive)")
    return _Entries(path, npz)


# Largest header entry read (a real one is a few KB) and largest ratio of an entry's stored size to
# its compressed size (save never compresses; zeros deflate ~1000x): what a hostile file can make
# load allocate beyond its own size.
_MAX_HEADER_BYTES = 16 << 20
_MAX_RATIO = 64


class _Entries:
    """The archive's entries, read only on demand: their shapes and dtypes come from the .npy
    headers alone, checked against the zip's own sizes, so nothing large is allocated before the
    model header has been checked against them (and entries it does not name are never read)."""

    def __init__(self, path: str, npz: Any) -> None:
        self.path, self.npz = path, npz
        self.shapes: Dict[str, Tuple[Tuple[int, ...], np.dtype]] = {}
        try:
            for info in npz.zip.infolist():
                self._scan(info)
        except ValueError:
            npz.close()
            raise
        except _DAMAGE as e:
            npz.close()
            raise ValueError(_unreadable(path, e)) from None

    def _scan(self, info: zipfile.ZipInfo) -> None:
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        bad = f"{self.path}: not a readable blockprop model file (entry {name!r}"
        if info.file_size > _MAX_RATIO * info.compress_size + (1 << 16):
            raise ValueError(f"{bad} expands {info.compress_size} bytes to {info.file_size}: refused)")
        with self.npz.zip.open(info) as f:
            try:
                version = np.lib.format.read_magic(f)
            except ValueError:
                raise ValueError(f"{bad} is not an array)") from None
            if version not in ((1, 0), (2, 0)):  # 3.0 only adds UTF-8 field names: save never writes it
                raise ValueError(f"{bad} has .npy format version {version}, expected 1.0 or 2.0)")
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            if dtype.hasobject:
                raise ValueError(f"{bad} holds Python objects); {_WHAT_LOAD_READS}")
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if info.file_size != f.tell() + nbytes:
                raise ValueError(f"{bad} declares shape {shape} of {dtype} but holds "
                                 f"{info.file_size - f.tell()} bytes of data)")
        self.shapes[name] = (tuple(shape), dtype)

    def __contains__(self, name: str) -> bool:
        return name in self.shapes

    def __iter__(self):
        return iter(self.shapes)

    def get(self, name: str) -> Any:
        return self[name] if name in self.shapes else None

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            value = self.npz[name]
        except _DAMAGE as e:
            raise ValueError(_unreadable(self.path, e)) from None
        if not isinstance(value, np.ndarray):  # defensive: _scan already checked the magic
            raise ValueError(f"{self.path}: not a readable blockprop model file (entry {name!r} is not an array)")
        return value

    def close(self) -> None:
        self.npz.close()


class _MemberEntries(_Entries):
    """The entries of one member of an ensemble file, named as in a model file (``member/2/param/0.W``
    is ``param/0.W`` here), so that a member is read exactly as a model is."""

    def __init__(self, whole: _Entries, prefix: str) -> None:  # noqa: super not called: a view
        self.path, self.npz, self.whole, self.prefix = whole.path, whole.npz, whole, prefix
        self.shapes = {name[len(prefix):]: shape for name, shape in whole.shapes.items()
                       if name.startswith(prefix)}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.whole[self.prefix + name]


def _parse_header(path: str, arrays: "_Entries") -> Dict[str, Any]:
    if "__header__" not in arrays:
        raise ValueError(f"{path}: not a blockprop model file (no __header__ entry)")
    shape, dtype = arrays.shapes["__header__"]
    if len(shape) != 1 or dtype != np.uint8 or shape[0] > _MAX_HEADER_BYTES:
        raise ValueError(f"{path}: corrupted header: expected at most {_MAX_HEADER_BYTES} bytes of "
                         f"uint8, got shape {shape} of {dtype}")
    raw = arrays["__header__"]
    try:
        header = json.loads(raw.astype(np.uint8).tobytes().decode("utf-8"))
    except RecursionError:  # nesting deeper than the interpreter's stack: no real header is
        raise ValueError(f"{path}: corrupted header: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: corrupted header: {e}") from None
    if not isinstance(header, dict) or header.get("format") not in (FORMAT, ENSEMBLE_FORMAT):
        raise ValueError(f"{path}: not a blockprop model file (format {header.get('format') if isinstance(header, dict) else None!r})")
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported blockprop format_version {header.get('format_version')!r}; "
                         f"this version reads {FORMAT_VERSION}")
    return header


def _array(path: str, arrays: "_Entries", key: str, like: np.ndarray) -> np.ndarray:
    if key not in arrays:
        raise ValueError(f"{path}: missing array {key!r}")
    shape, dtype = arrays.shapes[key]
    if shape != like.shape or dtype != like.dtype:  # checked before the entry is read
        raise ValueError(f"{path}: array {key!r} has shape {shape} and dtype {dtype}, "
                         f"expected {like.shape} and {like.dtype}")
    return arrays[key]


# Counts (epochs, updates, Adam steps) stay below 2**62 so that training can add to them without
# leaving int64 (the C++ loop's type); seeds below 2**64 (what the kernels take).
_MAX_COUNT = 2 ** 62


def _count(value: Any, what: str, allow_none: bool = False, limit: int = _MAX_COUNT) -> Any:
    """An integer in [0, limit) from the header (None if allowed), else ValueError."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        raise ValueError(f"{what} must be an integer in [0, 2**{limit.bit_length() - 1}), got {value!r}")
    return value


def _check_sizes(path: str, i: int, config: Dict[str, Any], arrays: "_Entries") -> None:
    """Layer i's declared sizes against its stored arrays, before the layer allocates anything."""
    if "in_features" in config and "out_features" in config:
        key, want = f"param/{i}.W", (config["out_features"], config["in_features"])
        if key not in arrays:
            raise ValueError(f"{path}: missing array {key!r}")
        if arrays.shapes[key][0] != want:
            raise ValueError(f"{path}: array {key!r} has shape {arrays.shapes[key][0]} but layer {i} "
                             f"declares {want[1]} inputs and {want[0]} outputs")
    if "num_features" in config:  # BatchNorm1d, LayerNorm: every array of theirs is (num_features,)
        own = [k for k in arrays if k.startswith((f"param/{i}.", f"buffer/{i}."))]
        if not own:
            raise ValueError(f"{path}: layer {i} declares num_features but no array of it is stored")
        for key in own:
            if arrays.shapes[key][0] != (config["num_features"],):
                raise ValueError(f"{path}: array {key!r} has shape {arrays.shapes[key][0]} but layer {i} "
                                 f"declares num_features={config['num_features']!r}")


def _build(path: str, header: Dict[str, Any], arrays: "_Entries",
           build: Callable[[List[Layer]], Model]) -> Model:
    layers: List[Layer] = []
    if not isinstance(header.get("layers"), list):
        raise ValueError("'layers' must be a list")
    for i, spec in enumerate(header["layers"]):
        if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
            raise ValueError(f"layer {i} must be a dict with a 'config' dict, got {spec!r}")
        cls = LAYER_TYPES.get(str(spec.get("type")))
        if cls is None:
            raise ValueError(f"{path}: layer {i} has unknown type {spec.get('type')!r}")
        config = dict(spec.get("config", {}))
        # Sizes are checked against the stored arrays before anything is allocated, so a forged
        # header cannot ask for a huge layer.
        _check_sizes(path, i, config, arrays)
        if "init" in config:  # the weights are loaded next: skip drawing random ones
            init, config["init"] = config["init"], "zeros"
        layer = cls(**config)
        if "init" in config:
            setattr(layer, "init", init)  # only Dense has init
        layers.append(layer)
    model = build(layers)
    if model.dtype.name != header["dtype"]:
        raise ValueError(f"{path}: layers are {model.dtype.name} but the header says {header['dtype']}")
    for name, p in model.parameters().items():
        p.data[...] = _array(path, arrays, f"param/{name}", p.data)
    for name, b in model.buffers().items():  # running statistics (BatchNorm1d)
        b[...] = _array(path, arrays, f"buffer/{name}", b)
    return model


def _restore_training(path: str, model: Model, header: Dict[str, Any], arrays: "_Entries") -> None:
    if header.get("loss") is not None:
        if header["loss"] not in LOSS_TYPES:
            raise ValueError(f"{path}: unknown loss {header['loss']!r}")
        model.loss = LOSS_TYPES[header["loss"]]()
    if header.get("schedule") is not None:
        model.schedule = schedules.from_config(header["schedule"])
    opt = header.get("optimizer")
    if opt is not None:
        cls = OPTIMIZER_TYPES.get(opt.get("type"))
        if cls is None:
            raise ValueError(f"{path}: unknown optimizer {opt.get('type')!r}")
        params = model.parameters()
        state: Dict[str, Dict[str, Any]] = {}
        if not isinstance(opt.get("buffers"), list) or not isinstance(opt.get("scalars"), dict):
            raise ValueError("optimizer 'buffers' must be a list and 'scalars' a dict")
        for key in opt["buffers"]:
            if not isinstance(key, str) or key.count("/") != 2:
                raise ValueError(f"bad optimizer buffer name {key!r}")
            _, pname, buffer = key.split("/")
            if pname not in params:
                raise ValueError(f"{path}: optimizer state for unknown parameter {pname!r}")
            state.setdefault(pname, {})[buffer] = np.array(_array(path, arrays, key, params[pname].data))
        for pname, scalars in opt["scalars"].items():
            if pname not in params or not isinstance(scalars, dict):
                raise ValueError(f"optimizer scalars for unknown parameter {pname!r}")
            for key, value in scalars.items():
                if key != "step":
                    raise ValueError(f"unknown optimizer scalar {pname}/{key}")
                state.setdefault(pname, {})[key] = _count(value, f"optimizer step of {pname}")
        # Each parameter's state must be whole: what the optimizer's step creates, all or nothing.
        whole = {"Adam": {"m", "v", "step"}, "SGD": {"velocity"}}.get(opt["type"])
        for pname, entries in state.items():
            if whole is not None and set(entries) != whole:
                raise ValueError(f"optimizer state of {pname} holds {sorted(entries)}, expected {sorted(whole)}")
        if not isinstance(opt.get("hyperparameters"), dict):
            raise ValueError("optimizer 'hyperparameters' must be a dict")
        model.optimizer = cls(**opt["hyperparameters"])
        model.optimizer.load_state_dict({"type": opt["type"], "hyperparameters": opt["hyperparameters"],
                                         "state": state})
    progress = header.get("progress", {})
    if not isinstance(progress, dict):
        raise ValueError(f"'progress' must be a dict, got {progress!r}")
    model.progress.epochs = _count(progress.get("epochs", 0), "progress.epochs")
    model.progress.updates = _count(progress.get("updates", 0), "progress.updates")
    model.progress.seed = _count(progress.get("seed"), "progress.seed", allow_none=True, limit=SEED_LIMIT)
    # Entries the header does not name are refused (never read): a file holds the model, nothing else.
    known = {"__header__", *(f"param/{n}" for n in model.parameters()),
             *(f"buffer/{n}" for n in model.buffers()), *(opt["buffers"] if opt is not None else ())}
    unknown = sorted(set(arrays) - known)
    if unknown:
        raise ValueError(f"{path}: entries the model does not have: {', '.join(map(repr, unknown[:5]))}")


def load(path: str, build: Callable[[List[Layer]], Model],
         build_ensemble: Optional[Callable[[List[Model]], Any]] = None) -> Any:
    """The model saved at ``path``, with its loss, optimizer state, schedule and progress;
    ``build(layers)`` makes the model (:func:`blockprop.load` passes ``Sequential``'s). An
    ensemble file gives ``build_ensemble(members)``, each member read as a model file is; without
    ``build_ensemble`` it is refused."""
    path = os.fspath(path)
    arrays = _read(path)
    try:
        header = _parse_header(path, arrays)
        if header["format"] == ENSEMBLE_FORMAT:
            if build_ensemble is None:
                raise ValueError(f"{path}: an ensemble of models (blockprop.nn.Ensemble.save), not one "
                                 "model: load it with blockprop.load")
            return build_ensemble(_load_members(path, header, arrays, build))
        model = _build(path, header, arrays, build)
        _restore_training(path, model, header, arrays)
    except ValueError as e:
        if str(e).startswith(path):
            raise
        raise ValueError(f"{path}: invalid model description: {e}") from None
    except (KeyError, TypeError, AttributeError, IndexError, MemoryError, OverflowError,
            RecursionError) as e:
        raise ValueError(f"{path}: invalid model description ({type(e).__name__}: {e})") from None
    finally:
        arrays.close()
    return model


def _load_members(path: str, header: Dict[str, Any], arrays: "_Entries",
                  build: Callable[[List[Layer]], Model]) -> List[Model]:
    """Every member of an ensemble file, each read and checked as a model file is."""
    members = header.get("members")
    if not isinstance(members, list) or not members:
        raise ValueError(f"'members' must be a non-empty list of model descriptions, got {members!r}")
    models = []
    for i, member in enumerate(members):
        if not isinstance(member, dict):
            raise ValueError(f"member {i} must be a dict, got {member!r}")
        prefix = f"member/{i}/"
        view = _MemberEntries(arrays, prefix)
        own = dict(member)
        opt = own.get("optimizer")
        if isinstance(opt, dict) and isinstance(opt.get("buffers"), list):  # stored with the prefix
            if not all(isinstance(k, str) and k.startswith(prefix) for k in opt["buffers"]):
                raise ValueError(f"member {i}: optimizer buffers must be named {prefix}...")
            own["optimizer"] = dict(opt, buffers=[k[len(prefix):] for k in opt["buffers"]])
        try:
            model = _build(path, own, view, build)
            _restore_training(path, model, own, view)
        except ValueError as e:
            text = str(e)[len(path) + 2:] if str(e).startswith(path + ": ") else str(e)
            raise ValueError(f"member {i}: {text}") from None
        models.append(model)
    stray = sorted(name for name in arrays if name != "__header__"
                   and not any(name.startswith(f"member/{i}/") for i in range(len(members))))
    if stray:
        raise ValueError(f"{path}: entries no member has: {', '.join(map(repr, stray[:5]))}")
    return models
