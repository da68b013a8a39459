"""The command line: ``python -m blockprop train`` on the built-in data and on a tiny IDX data set,
``info``, and usage errors (exit status 2 with a message, never a traceback)."""
from __future__ import annotations

import gzip
import re
import subprocess
import sys

import numpy as np
import pytest

from blockprop import data
from blockprop.cli import main

ACCURACY_LINE = re.compile(r"^test accuracy: (\d\.\d{4}) ", re.MULTILINE)


def run(*args, cwd):
    """``python -m blockprop ARGS`` in a fresh interpreter, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "blockprop", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def write_tiny_mnist(directory, kind="t10k", n=60, seed=0):
    """A learnable stand-in for MNIST: each class lights up its own block of pixels."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 * label:2 * label + 3, 5:20] = 255
    data.save_idx(directory / f"{kind}-images-idx3-ubyte.gz", images)
    data.save_idx(directory / f"{kind}-labels-idx1-ubyte.gz", labels)


def test_train_builtin(tmp_path):
    out = run("train", "--epochs", 3, "--seed", 1, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    match = ACCURACY_LINE.search(out.stdout)
    assert match, out.stdout
    assert 0.0 <= float(match.group(1)) <= 1.0
    assert re.search(r"training speed: [\d,]+ samples/s", out.stdout), out.stdout
    assert "isa: " in out.stdout and "threads: " in out.stdout
    assert "spirals" in out.stdout and "2-64-64-3" in out.stdout


def test_train_builtin_quiet_prints_only_the_summary(tmp_path):
    out = run("train", "--epochs", 1, "--quiet", "--threads", 1, "--dtype", "float64",
              "--optimizer", "adam", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("test accuracy: "), out.stdout
    assert "threads: 1" in lines[2]


def test_train_bfloat16(tmp_path):
    """--precision bfloat16 trains (and scores) with bfloat16 products and says on which path."""
    write_tiny_mnist(tmp_path)
    out = run("train", "--data", tmp_path, "--epochs", 20, "--batch-size", 8, "--layers",
              "784,32,10", "--train-size", 40, "--test-size", 20, "--precision", "bfloat16",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "bfloat16 products" in out.stdout and "(bfloat16: " in out.stdout, out.stdout
    match = ACCURACY_LINE.search(out.stdout)
    assert match and float(match.group(1)) >= 0.9, out.stdout


def test_train_idx_data(tmp_path):
    write_tiny_mnist(tmp_path)
    out = run("train", "--data", tmp_path, "--epochs", 20, "--batch-size", 8, "--layers",
              "784,32,10", "--train-size", 40, "--test-size", 20, "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    match = ACCURACY_LINE.search(out.stdout)
    assert match, out.stdout
    # The classes are trivially separable: a working pipeline learns them.
    assert float(match.group(1)) >= 0.9, out.stdout
    assert "(18/20)" in out.stdout or "(19/20)" in out.stdout or "(20/20)" in out.stdout


def test_train_idx_default_split(tmp_path, capsys):
    write_tiny_mnist(tmp_path, n=50)
    assert main(["train", "--data", str(tmp_path), "--epochs", "1", "--layers", "784,8,10"]) == 0
    out = capsys.readouterr().out
    assert "first 40 train, last 10 test" in out and ACCURACY_LINE.search(out), out


def test_train_full_mnist_directory_uses_the_train_set(tmp_path, capsys):
    write_tiny_mnist(tmp_path, kind="train", n=30)
    write_tiny_mnist(tmp_path, kind="t10k", n=20, seed=1)
    assert main(["train", "--data", str(tmp_path), "--epochs", "1", "--layers", "784,8,10"]) == 0
    out = capsys.readouterr().out
    assert "30 train, 20 test" in out, out


def test_save(tmp_path, capsys):
    import blockprop

    path = tmp_path / "model.bp"
    assert main(["train", "--epochs", "1", "--quiet", "--save", str(path)]) == 0
    model = blockprop.load(path)
    assert [layer.out_features for layer in model.layers] == [64, 64, 3]


def test_info(tmp_path):
    import blockprop

    out = run("info", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert blockprop.__version__ in out.stdout
    assert f"isa: {blockprop.isa()}" in out.stdout
    assert "supported isas: " in out.stdout and "threads: " in out.stdout


def test_bad_argument_in_subprocess(tmp_path):
    out = run("train", "--epochs", "zero", cwd=tmp_path)
    assert out.returncode == 2
    assert "usage:" in out.stderr and "--epochs" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("argv,message", [
    ([], "required"),
    (["fly"], "invalid choice"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--batch-size", "-3"], "--batch-size"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--momentum", "1.5"], "--momentum"),
    (["train", "--layers", "2,x,3"], "--layers"),
    (["train", "--layers", "5"], "--layers"),
    (["train", "--layers", "3,8,3"], "2 features"),
    (["train", "--layers", "2,8,2"], "3 classes"),
    (["train", "--optimizer", "rmsprop"], "--optimizer"),
    (["train", "--optimizer", "adam", "--momentum", "0.5"], "--momentum"),
    (["train", "--dtype", "float16"], "--dtype"),
    (["train", "--precision", "float16"], "--precision"),
    (["train", "--precision", "bfloat16", "--dtype", "float64"], "--precision bfloat16 needs --dtype float32"),
    (["train", "--threads", "0"], "--threads"),
    (["train", "--data", "/nonexistent/mnist"], "not a directory"),
    (["train", "--save", "/nonexistent/dir/model.bp"], "does not exist"),
    (["train", "--frobnicate"], "unrecognized"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and message in err, err


def corrupt_labels(directory):
    """The tiny data set with one stray byte after its labels."""
    write_tiny_mnist(directory)
    path = directory / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + b"\x00"))


def hostile_content(labels=None, images=None):
    """The tiny data set with its labels or images replaced (IDX files that parse fine)."""
    def setup(directory):
        write_tiny_mnist(directory)
        if labels is not None:
            data.save_idx(directory / "t10k-labels-idx1-ubyte.gz", labels)
        if images is not None:
            data.save_idx(directory / "t10k-images-idx3-ubyte.gz", images)
    return setup


_NEG = (np.arange(60) % 10).astype(np.int8)
_NEG[4] = -1
_NAN = np.full((60, 28, 28), 0.5, np.float32)
_NAN[9, 3, 3] = np.nan
_BIG = np.full((60, 28, 28), 0.5)
_BIG[2, 0, 0] = 1e39


@pytest.mark.parametrize("setup,extra,message", [
    (lambda d: None, [], "no t10k-images-idx3-ubyte"),
    (write_tiny_mnist, ["--train-size", "50", "--test-size", "20"], "more than the 60 images"),
    (corrupt_labels, [], "trailing garbage"),
    # These printed a traceback with exit 1 (issue 20): the content, not the format, is wrong.
    (hostile_content(labels=_NEG), [], "labels must be ≥ 0"),
    (hostile_content(images=_NAN), [], "image 9 holds NaN"),
    (hostile_content(images=_BIG), [], "image 2 holds NaN or a value beyond float32's range"),
], ids=["missing", "too-many", "corrupt", "label-minus-1", "image-nan", "image-1e39"])
def test_data_problems_exit_2(tmp_path, capsys, setup, extra, message):
    setup(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", str(tmp_path), *extra])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


@pytest.mark.parametrize("argv", [
    ["train", "--epoch", "3"],           # a prefix of --epochs: argparse would take it silently
    ["train", "--batch", "8"],
    ["train", "--frobnicate"],
    ["train", "--epochs", "1", "stray"],
])
def test_unknown_or_abbreviated_flags_get_the_train_usage(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: blockprop train ") and "unrecognized arguments" in err, err
    assert argv[-1] in err.splitlines()[-1], err
