"""Data sets: the IDX files MNIST is distributed in, and small synthetic sets that need no download.

IDX layout (big-endian throughout): two zero bytes, a type code, the number of dimensions ``ndim``,
then ``ndim`` unsigned 32-bit sizes, then the values in C order. Files may be gzip-compressed.
Every reader check happens before the data is allocated, so a corrupt or hostile header costs a
``ValueError``, never a crash or a huge allocation.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Dict, Optional, Tuple, Union

import numpy as np

__all__ = ["load_idx", "save_idx", "load_mnist", "make_spirals", "make_blobs", "train_test_split"]

PathLike = Union[str, "os.PathLike[str]"]

# IDX type code -> big-endian NumPy dtype (the codes of the original MNIST description).
IDX_DTYPES: Dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"
# Deflate cannot expand data by more than ~1032:1, so a gzip file claiming more than this many
# bytes per compressed byte is lying; rejecting it up front avoids decompressing a bomb.
_MAX_GZIP_RATIO = 1100
_CHUNK = 1 << 22


def load_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip, recognised by its first bytes) into a native-endian array.

    Raises ``ValueError`` naming the file for any malformed content (bad magic, unknown type code,
    truncated header or data, trailing bytes, sizes the file cannot hold).
    """
    path = Path(path)
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        file_size = os.fstat(raw.fileno()).st_size
        if not is_gzip:
            return _read_idx(raw, path, max_payload=file_size, exact_size=file_size)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _read_idx(stream, path, max_payload=file_size * _MAX_GZIP_RATIO + 1024,
                                 exact_size=None)
        except (OSError, EOFError, zlib.error) as e:
            # gzip.BadGzipFile is an OSError; a cut-off stream raises EOFError.
            raise ValueError(f"{path}: corrupt gzip data ({e or type(e).__name__})") from None


def _read_idx(f: Union[BinaryIO, gzip.GzipFile], path: Path, max_payload: int, exact_size: Optional[int]) -> np.ndarray:
    head = _read_exact(f, 4)
    if len(head) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(head)} of 4 magic bytes)")
    if head[0] != 0 or head[1] != 0:
        raise ValueError(f"{path}: bad IDX magic number 0x{head.hex()} (must start with 0x0000)")
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    dims_raw = _read_exact(f, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({len(dims_raw)} of {4 * ndim} bytes "
                         f"of dimension sizes for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", dims_raw)
    dtype = IDX_DTYPES[code]
    header_size = 4 + 4 * ndim
    # Python ints do not overflow, so this is the true size, compared before allocating anything.
    nbytes = dtype.itemsize * _product(shape)
    if nbytes > max_payload:
        raise ValueError(f"{path}: IDX header declares shape {shape} of {dtype.name} "
                         f"({nbytes} bytes), more than the file can hold")
    if exact_size is not None:
        actual = exact_size - header_size
        if actual < nbytes:
            raise ValueError(f"{path}: truncated IDX data: {actual} bytes, shape {shape} of "
                             f"{dtype.name} needs {nbytes}")
        if actual > nbytes:
            raise ValueError(f"{path}: {actual - nbytes} bytes of trailing garbage after the "
                             f"IDX data of shape {shape}")
    data = _read_exact(f, nbytes)
    if len(data) < nbytes:
        raise ValueError(f"{path}: truncated IDX data: {len(data)} bytes, shape {shape} of "
                         f"{dtype.name} needs {nbytes}")
    if f.read(1):
        raise ValueError(f"{path}: trailing garbage after the IDX data of shape {shape}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _product(shape: Tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _read_exact(f: Union[BinaryIO, gzip.GzipFile], n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at end of file. Reads in chunks so that memory follows what
    the file really holds rather than what a header claims."""
    parts = []
    left = n
    while left > 0:
        part = f.read(min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def save_idx(path: PathLike, array: np.ndarray, compress: Optional[bool] = None) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when ``compress`` is true, or by default when
    the name ends in ``.gz``. Supported dtypes: uint8, int8, int16, int32, float32, float64."""
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        raise ValueError(f"{path}: dtype {array.dtype} has no IDX type code")
    if array.ndim == 0 or array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"{path}: shape {array.shape} cannot be stored in IDX")
    code = _IDX_CODES[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        payload = gzip.compress(payload)
    path.write_bytes(payload)


MNIST_KINDS = ("train", "t10k")


def load_mnist(directory: PathLike, kind: str = "t10k",
               normalize: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Load MNIST from ``directory`` holding ``{kind}-images-idx3-ubyte[.gz]`` and
    ``{kind}-labels-idx1-ubyte[.gz]``.

    Returns ``X`` float32 ``(n, rows·cols)`` (scaled to [0, 1] when ``normalize``; raw 0–255
    otherwise) and ``y`` int64 ``(n,)``.
    """
    if kind not in MNIST_KINDS:
        raise ValueError(f"kind must be one of {MNIST_KINDS}, not {kind!r}")
    directory = Path(directory)
    images_path = _find_idx(directory, f"{kind}-images-idx3-ubyte")
    labels_path = _find_idx(directory, f"{kind}-labels-idx1-ubyte")
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(f"{images_path}: expected 3 dimensions (n, rows, cols), got shape "
                         f"{images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected 1 dimension (n,), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{labels_path}: labels must be integers, got {labels.dtype}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                         f"{len(labels)} labels")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"{labels_path}: labels must be ≥ 0 (class indices), got {labels.min()} at "
                         f"index {int(np.argmin(labels))}")
    with np.errstate(over="ignore", invalid="ignore"):  # reported just below
        X = images.reshape(len(images), -1).astype(np.float32)
    # Checked in float32, as returned: a float64 file's 1e39 is inf here, NaN stays NaN.
    if images.dtype.kind == "f" and not np.isfinite(X).all():
        row = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise ValueError(f"{images_path}: image {row} holds NaN or a value beyond float32's range "
                         "(pixels must be finite)")
    if normalize:
        # Scale by the type's range so that uint8 pixels land in [0, 1]; float files pass through.
        if images.dtype.kind in "iu":
            X /= float(np.iinfo(images.dtype).max)
    return X, labels.astype(np.int64)


def _find_idx(directory: Path, stem: str) -> Path:
    candidates = [directory / stem, directory / f"{stem}.gz"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {stem}[.gz] in {directory}")


def make_spirals(n_samples: int = 1500, n_classes: int = 3, noise: float = 0.2,
                 seed: Optional[int] = 0, n_features: int = 2,
                 turns: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class: a classification set no linear model can solve.

    Each arm winds ``turns`` times outward from the origin to radius 1; ``noise`` is the standard
    deviation of the angle jitter (radians, scaled by radius so the centre stays clean). With
    ``n_features > 2`` the extra columns are Gaussian distractors of scale ``noise``. Classes are
    balanced (sizes differ by at most one) and the rows shuffled. Returns ``X`` float32
    ``(n_samples, n_features)``, ``y`` int64.
    """
    if n_classes < 1 or n_samples < n_classes:
        raise ValueError(f"need n_classes >= 1 and n_samples >= n_classes, got "
                         f"n_samples={n_samples}, n_classes={n_classes}")
    if n_features < 2:
        raise ValueError(f"n_features must be at least 2, got {n_features}")
    if not noise >= 0 or not math.isfinite(noise):
        raise ValueError(f"noise must be finite and non-negative, got {noise}")
    if not math.isfinite(turns):
        raise ValueError(f"turns must be finite, got {turns}")
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % n_classes
    # Radius spaced evenly per class (not random) so every arm is covered end to end.
    position = (np.arange(n_samples) // n_classes + 0.5) / -(-n_samples // n_classes)
    radius = position
    angle = (2 * np.pi * y / n_classes + 2 * np.pi * turns * position
             + noise * radius * rng.standard_normal(n_samples))
    X = np.empty((n_samples, n_features))
    X[:, 0] = radius * np.cos(angle)
    X[:, 1] = radius * np.sin(angle)
    X[:, 2:] = noise * rng.standard_normal((n_samples, n_features - 2))
    order = rng.permutation(n_samples)
    return X[order].astype(np.float32), y[order].astype(np.int64)


def make_blobs(n_samples: int = 1000, n_classes: int = 3, n_features: int = 2,
               cluster_std: float = 1.0, center_box: float = 5.0,
               seed: Optional[int] = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters, one per class, centres uniform in ``[-center_box, center_box]``.

    Balanced, shuffled. Returns ``X`` float32 ``(n_samples, n_features)``, ``y`` int64.
    """
    if n_classes < 1 or n_samples < n_classes or n_features < 1:
        raise ValueError(f"need n_classes >= 1, n_features >= 1 and n_samples >= n_classes, got "
                         f"n_samples={n_samples}, n_classes={n_classes}, n_features={n_features}")
    for name, value in (("cluster_std", cluster_std), ("center_box", center_box)):
        if not value >= 0 or not math.isfinite(value):
            raise ValueError(f"{name} must be finite and non-negative, got {value}")
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-center_box, center_box, size=(n_classes, n_features))
    y = rng.permutation(np.arange(n_samples) % n_classes)
    X = centers[y] + cluster_std * rng.standard_normal((n_samples, n_features))
    return X.astype(np.float32), y.astype(np.int64)


def train_test_split(X: np.ndarray, y: np.ndarray, test_fraction: float = 0.2,
                     seed: Optional[int] = 0
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle the rows (``seed=None``: no shuffle, keep order) and hold out ``test_fraction`` of
    them. Returns ``(X_train, X_test, y_train, y_test)``; both parts get at least one row."""
    X = np.asarray(X)
    y = np.asarray(y)
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 rows to split, got {n}")
    n_test = min(max(int(round(n * test_fraction)), 1), n - 1)
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    # The test rows are the last ones, so that without shuffling the split is "first / last".
    train, test = order[:n - n_test], order[n - n_test:]
    return X[train], X[test], y[train], y[test]
