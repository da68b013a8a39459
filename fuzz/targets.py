"""Fuzz targets for the two file readers: ``blockprop.load`` (model files) and
``blockprop.data.load_idx`` (IDX). Each takes the raw bytes of a file; the only acceptable outcomes
are a result or ``ValueError`` (the documented error for a damaged file). Anything else, and of
course a crash or a hang, is a finding.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

_DIR = tempfile.mkdtemp(prefix="bp-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


def _as_file(data: bytes, name: str) -> str:
    path = os.path.join(_DIR, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def load_model(data: bytes) -> None:
    import blockprop
    path = _as_file(data, "model.npz")
    try:
        model = blockprop.load(path)
    except ValueError:
        return
    # A file that loads must give a working model.
    x = np.zeros((2, model.in_features), model.dtype)
    out = model.predict(x)
    assert out.shape == (2, model.out_features)


def load_idx(data: bytes) -> None:
    from blockprop import data as bpdata
    path = _as_file(data, "data.idx.gz" if data[:2] == b"\x1f\x8b" else "data.idx")
    try:
        array = bpdata.load_idx(path)
    except ValueError:
        return
    # What loads is exactly what the header declares, in native byte order.
    assert array.dtype.isnative and array.ndim == data[3] if data[:2] != b"\x1f\x8b" else True


TARGETS = {"load": load_model, "idx": load_idx}
