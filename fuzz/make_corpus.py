"""Write the seed corpus (small files): ``python fuzz/make_corpus.py``. Run once; the files are
committed under fuzz/corpus/{load,idx}/."""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    import blockprop as bp
    from blockprop import data
    from blockprop.nn import Dense, Sequential, Tanh
    from blockprop.optim import SGD, Adam
    from blockprop.schedules import CosineDecay, Warmup

    out = os.path.join(HERE, "corpus", "load")
    os.makedirs(out, exist_ok=True)
    X = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32)
    y = np.arange(8) % 2
    m = Sequential(Dense(2, 3, "relu", seed=0), Dense(3, 2, seed=1))
    m.save(os.path.join(out, "untrained.npz"))
    m.fit(X, y, epochs=1, batch_size=4, optimizer=SGD(0.1, momentum=0.9), verbose=0, seed=0)
    m.save(os.path.join(out, "sgd-momentum.npz"))
    m = Sequential(Dense(2, 2, seed=0, dtype="float64"), Tanh(), Dense(2, 2, bias=False, seed=1, dtype="float64"))
    m.fit(X, y, epochs=1, batch_size=4, optimizer=Adam(0.01), schedule=Warmup(CosineDecay(3), 1), verbose=0, seed=0)
    m.save(os.path.join(out, "adam-schedule-f64.npz"))
    # Normalization layers: their num_features is checked against the stored arrays before the
    # layer allocates (a forged LayerNorm(2**28) once cost 1 GiB), so the fuzzer mutates it here.
    m = Sequential(Dense(2, 3, seed=0), bp.nn.BatchNorm1d(3), bp.nn.LayerNorm(3), Dense(3, 2, seed=1))
    m.fit(X, y, epochs=1, batch_size=4, optimizer=Adam(0.01), verbose=0, seed=0)
    m.save(os.path.join(out, "norm-layers.npz"))

    out = os.path.join(HERE, "corpus", "idx")
    os.makedirs(out, exist_ok=True)
    data.save_idx(os.path.join(out, "labels.idx"), np.arange(10, dtype=np.uint8))
    data.save_idx(os.path.join(out, "images.idx"), np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3))
    data.save_idx(os.path.join(out, "floats.idx"), np.linspace(-1, 1, 6).reshape(2, 3))
    data.save_idx(os.path.join(out, "int16.idx"), np.arange(-3, 3, dtype=np.int16))
    with open(os.path.join(out, "images.idx.gz"), "wb") as f:
        f.write(gzip.compress(open(os.path.join(out, "images.idx"), "rb").read()))
    broken = {"truncated.idx": b"\x00\x00\x08\x01\x00\x00\x00\x09\x05",
              "bad-type.idx": b"\x00\x00\x07\x01\x00\x00\x00\x01\x05",
              "huge-dims.idx": b"\x00\x00\x0e\x03" + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 7),
              "trailing.idx": b"\x00\x00\x08\x01\x00\x00\x00\x01\x05\x06"}
    for name, raw in broken.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(raw)


if __name__ == "__main__":
    main()
