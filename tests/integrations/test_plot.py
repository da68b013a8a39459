"""History.plot and ``train --plot``: a valid PNG that carries the plotted curves (checked through
the numbers in its ``blockprop:history`` text chunk and the figure's lines, not through pixels)."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import blockprop as bp
from blockprop.cli import main
from blockprop.data import make_spirals
from blockprop.model import History

try:
    import matplotlib  # noqa: F401
except ImportError as e:
    if os.environ.get("CI"):  # CI's test venv installs the plot extra: never skip there
        pytest.fail(f"plot tests cannot run in CI: {e}", pytrace=False)
    pytest.skip(f"matplotlib is not installed: {e}", allow_module_level=True)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(path):
    """(type, data) of every chunk, each CRC checked: the file is a well-formed PNG."""
    raw = open(path, "rb").read()
    assert raw[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    chunks, pos = [], 8
    while pos < len(raw):
        length, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        body = raw[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", raw[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r} chunk"
        chunks.append((kind.decode("ascii"), body))
        pos += 12 + length
    assert chunks[0][0] == "IHDR" and chunks[-1][0] == "IEND", [c[0] for c in chunks]
    return chunks


def plotted(path):
    """The curves stored in the PNG, and its width and height."""
    chunks = png_chunks(path)
    width, height = struct.unpack(">II", chunks[0][1][:8])
    texts = dict(body.split(b"\0", 1) for kind, body in chunks if kind == "tEXt")
    return json.loads(texts[b"blockprop:history"].decode("latin-1")), (width, height)


def trained(validation=True, epochs=4):
    X, y = make_spirals(n_samples=300, n_classes=3, seed=0)
    model = bp.nn.Sequential(bp.nn.Dense(2, 16, "relu", seed=0), bp.nn.Dense(16, 3, seed=1))
    history = model.fit(X[:240], y[:240], epochs=epochs, batch_size=32, loss="cross_entropy",
                        optimizer=bp.optim.Adam(1e-2), seed=0, verbose=0,
                        validation_data=(X[240:], y[240:]) if validation else None)
    return history


def test_history_plot_writes_a_png_with_the_curves(tmp_path):
    history = trained()
    path = tmp_path / "curve.png"
    fig = history.plot(path)
    data, (width, height) = plotted(path)
    assert width > 300 and height > 200
    assert data["epoch"] == [1, 2, 3, 4]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(data[key], history.history[key], err_msg=key)
    # The figure draws those same numbers: loss panel then accuracy panel, training then validation.
    loss_ax, acc_ax = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        train_line, val_line = ax.get_lines()
        np.testing.assert_allclose(train_line.get_ydata(), history.history[key])
        np.testing.assert_allclose(val_line.get_ydata(), history.history[f"val_{key}"])
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "validation"]


def test_history_plot_without_validation_or_path(tmp_path):
    history = trained(validation=False, epochs=2)
    fig = history.plot()  # a Figure, nothing written
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1]
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "c.png"
    history.plot(str(path))
    data, _ = plotted(path)
    assert sorted(data) == ["accuracy", "epoch", "loss"]


def test_history_plot_of_an_empty_history_says_why():
    with pytest.raises(ValueError, match="nothing to plot"):
        History().plot()


def test_cli_plot(tmp_path):
    out = subprocess.run([sys.executable, "-m", "blockprop", "train", "--epochs", "3",
                          "--plot", "curve.png"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "saved training curves to curve.png" in out.stdout
    data, _ = plotted(tmp_path / "curve.png")
    assert data["epoch"] == [1, 2, 3]
    assert all(len(data[k]) == 3 for k in ("loss", "accuracy", "val_loss", "val_accuracy"))
    # The last validation accuracy is the test accuracy the CLI reports.
    reported = float(out.stdout.split("test accuracy: ")[1].split()[0])
    assert abs(data["val_accuracy"][-1] - reported) < 1e-4, out.stdout


@pytest.mark.parametrize("name,message", [
    ("curve.xyz", "unknown image format '.xyz'"),
    ("curve", "unknown image format '(no suffix)'"),
    ("missing/curve.png", "does not exist"),
])
def test_cli_plot_bad_path_fails_before_training(tmp_path, name, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "1", "--plot", str(tmp_path / name)])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Epoch" not in captured.out, captured


def test_without_matplotlib_the_message_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    history = History()
    history.append(0, {"loss": 1.0, "accuracy": 0.5})
    with pytest.raises(ImportError, match=r"History.plot needs matplotlib: .*'\.\[plot\]'"):
        history.plot()
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "1", "--plot", str(tmp_path / "c.png")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "'.[plot]'" in err, err
