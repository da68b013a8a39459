"""The IDX reader (round trips, every malformed input a ValueError), MNIST loading, synthetic sets.

IDX bytes are assembled by hand with ``struct`` so that the reader is checked against the format,
not against our own writer; ``save_idx`` gets its own round trip.
"""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from blockprop import data

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
         np.float64: 0x0E}


def idx_bytes(array: np.ndarray, code: int = None) -> bytes:
    array = np.asarray(array)
    code = CODES[array.dtype.type] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(tmp_path, name: str, payload: bytes, compress: bool = False):
    path = tmp_path / name
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


# ---- round trips

@pytest.mark.parametrize("dtype", list(CODES), ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 3), (1, 1, 1, 2)])
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_round_trip(tmp_path, dtype, shape, compress):
    want = sample(dtype, shape)
    path = write(tmp_path, "a.idx" + (".gz" if compress else ""), idx_bytes(want), compress)
    got = data.load_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    assert got.shape == shape
    np.testing.assert_array_equal(got, want)


def test_big_endian_values_are_decoded(tmp_path):
    # 0x0102 big-endian is 258; a reader that forgot the byte order would see 513.
    path = write(tmp_path, "be", bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 1, 2, 0xFF, 0xFE]))
    np.testing.assert_array_equal(data.load_idx(path), np.array([258, -2], dtype=np.int16))


def test_gzip_detected_by_content_not_name(tmp_path):
    want = sample(np.uint8, (4, 3))
    path = write(tmp_path, "no_suffix", idx_bytes(want), compress=True)
    np.testing.assert_array_equal(data.load_idx(path), want)


def test_empty_dimension(tmp_path):
    path = write(tmp_path, "empty", idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    assert data.load_idx(path).shape == (0, 28, 28)


@pytest.mark.parametrize("name", ["w.idx", "w.idx.gz"])
@pytest.mark.parametrize("dtype", list(CODES), ids=lambda t: np.dtype(t).name)
def test_save_idx_round_trip(tmp_path, name, dtype):
    want = sample(dtype, (5, 2, 3), seed=1)
    path = tmp_path / name
    data.save_idx(path, want)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    np.testing.assert_array_equal(data.load_idx(path), want)


def test_save_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="IDX"):
        data.save_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


# ---- malformed input: a ValueError naming the file and the problem

GOOD = idx_bytes(np.arange(12, dtype=np.int32).reshape(3, 4))

MALFORMED = {
    "empty file": (b"", "truncated IDX header"),
    "short magic": (b"\x00\x00\x08", "truncated IDX header"),
    "bad magic": (b"\x01\x02\x08\x01" + GOOD[4:], "bad IDX magic"),
    "unknown type code": (b"\x00\x00\x0A\x02" + GOOD[4:], "unknown IDX type code 0x0A"),
    "zero dimensions": (b"\x00\x00\x08\x00", "0 dimensions"),
    "truncated sizes": (GOOD[:9], "truncated IDX header"),
    "truncated data": (GOOD[:-1], "truncated IDX data"),
    "trailing garbage": (GOOD + b"\x00", "trailing garbage"),
    # 2^32-1 cubed int32 elements: far beyond int64 byte counts and any file.
    "absurd sizes": (b"\x00\x00\x0C\x03" + b"\xff" * 12 + b"\x00" * 16, "more than the file"),
    "sizes beyond file": (b"\x00\x00\x08\x01" + struct.pack(">I", 10**9) + b"\x00" * 8,
                          "more than the file"),
    "many dimensions": (b"\x00\x00\x08\xff" + b"\x00\x00\x00\x01" * 10, "truncated IDX header"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_raises_value_error(tmp_path, case, compress):
    payload, message = MALFORMED[case]
    path = write(tmp_path, "bad.idx", payload, compress)
    with pytest.raises(ValueError, match=message) as info:
        data.load_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("payload", [
    gzip.compress(GOOD)[:-6],                     # stream cut off
    gzip.compress(GOOD)[:10] + b"\x00" * 20,      # deflate data destroyed
    gzip.compress(GOOD) + b"garbage",             # trailing bytes after the gzip member
], ids=["cut", "corrupt", "trailing"])
def test_corrupt_gzip_raises_value_error(tmp_path, payload):
    path = write(tmp_path, "bad.gz", payload)
    with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")):
        data.load_idx(path)


def test_gzip_bomb_header_rejected_before_decompression(tmp_path):
    # A tiny gzip file whose header claims 4 GB: rejected from the size ratio alone.
    payload = b"\x00\x00\x08\x01" + struct.pack(">I", 2**32 - 1)
    path = write(tmp_path, "bomb.gz", payload, compress=True)
    with pytest.raises(ValueError, match="more than the file"):
        data.load_idx(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.load_idx(tmp_path / "nope")


# ---- MNIST layout

def write_mnist(directory, kind, n, compress=True, n_labels=None, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n_labels if n_labels is not None else n, dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write(directory, f"{kind}-images-idx3-ubyte{suffix}", idx_bytes(images), compress)
    write(directory, f"{kind}-labels-idx1-ubyte{suffix}", idx_bytes(labels), compress)
    return images, labels


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("kind", ["t10k", "train"])
def test_load_mnist(tmp_path, kind, compress):
    images, labels = write_mnist(tmp_path, kind, 17, compress)
    X, y = data.load_mnist(tmp_path, kind=kind)
    assert X.dtype == np.float32 and X.shape == (17, 784)
    assert y.dtype == np.int64 and y.shape == (17,)
    assert 0.0 <= X.min() and X.max() <= 1.0
    np.testing.assert_allclose(X, images.reshape(17, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    X_raw, _ = data.load_mnist(tmp_path, kind=kind, normalize=False)
    np.testing.assert_array_equal(X_raw, images.reshape(17, -1))


def test_load_mnist_count_mismatch(tmp_path):
    write_mnist(tmp_path, "t10k", 5, n_labels=6)
    with pytest.raises(ValueError, match="5 images but .* 6 labels"):
        data.load_mnist(tmp_path)


def test_load_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        data.load_mnist(tmp_path)


def test_load_mnist_wrong_rank(tmp_path):
    write(tmp_path, "t10k-images-idx3-ubyte", idx_bytes(np.zeros((4, 784), np.uint8)))
    write(tmp_path, "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="3 dimensions"):
        data.load_mnist(tmp_path)


def test_load_mnist_bad_kind(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        data.load_mnist(tmp_path, kind="validation")


# ---- synthetic sets and the split

@pytest.mark.parametrize("n_samples,n_classes,n_features", [(300, 3, 2), (101, 4, 5), (7, 7, 2)])
def test_spirals_shapes_balance(n_samples, n_classes, n_features):
    X, y = data.make_spirals(n_samples=n_samples, n_classes=n_classes, n_features=n_features)
    assert X.dtype == np.float32 and X.shape == (n_samples, n_features)
    assert y.dtype == np.int64 and y.shape == (n_samples,)
    counts = np.bincount(y, minlength=n_classes)
    assert len(counts) == n_classes and counts.max() - counts.min() <= 1
    assert np.isfinite(X).all()


def test_spirals_deterministic_by_seed():
    a = data.make_spirals(n_samples=200, seed=3)
    b = data.make_spirals(n_samples=200, seed=3)
    c = data.make_spirals(n_samples=200, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_spirals_structure():
    # Without noise each point's class is fixed by its angle and radius: a check that the arms
    # really are interleaved spirals and not blobs. Class means sit near the origin.
    X, y = data.make_spirals(n_samples=600, n_classes=3, noise=0.0)
    for k in range(3):
        assert np.linalg.norm(X[y == k].mean(axis=0)) < 0.5
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.max() <= 1.0 and radius.min() > 0.0


def test_spirals_bad_arguments():
    with pytest.raises(ValueError):
        data.make_spirals(n_samples=2, n_classes=3)
    with pytest.raises(ValueError):
        data.make_spirals(n_features=1)


def test_blobs():
    X, y = data.make_blobs(n_samples=90, n_classes=3, n_features=4, seed=1)
    assert X.shape == (90, 4) and X.dtype == np.float32 and y.dtype == np.int64
    assert (np.bincount(y) == 30).all()
    np.testing.assert_array_equal(X, data.make_blobs(n_samples=90, n_classes=3, n_features=4,
                                                     seed=1)[0])


def test_train_test_split():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    X_train, X_test, y_train, y_test = data.train_test_split(X, y, test_fraction=0.3, seed=0)
    assert X_train.shape == (7, 2) and X_test.shape == (3, 2)
    # Rows stay paired with their labels, and together the parts are the whole set.
    np.testing.assert_array_equal(X_train[:, 0], 2 * y_train)
    np.testing.assert_array_equal(X_test[:, 0], 2 * y_test)
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(10))
    again = data.train_test_split(X, y, test_fraction=0.3, seed=0)
    np.testing.assert_array_equal(again[3], y_test)


def test_train_test_split_without_shuffle_keeps_order():
    X, y = np.zeros((10, 1)), np.arange(10)
    _, _, y_train, y_test = data.train_test_split(X, y, test_fraction=0.2, seed=None)
    assert y_train.tolist() == list(range(8)) and y_test.tolist() == [8, 9]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_train_test_split_bad_fraction(fraction):
    with pytest.raises(ValueError):
        data.train_test_split(np.zeros((4, 1)), np.zeros(4), test_fraction=fraction)


def test_train_test_split_length_mismatch():
    with pytest.raises(ValueError, match="rows"):
        data.train_test_split(np.zeros((4, 1)), np.zeros(5))
