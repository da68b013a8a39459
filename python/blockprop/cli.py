"""Command line: ``python -m blockprop train ...`` trains an MLP and reports accuracy and speed;
``python -m blockprop info`` describes the build and the machine.

Every problem with what the user passed (flags, data directory, layer sizes that do not fit the
data) ends as an argparse-style message with exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

import blockprop as bp

from . import data, nn, optim

PROG = "blockprop"
TEST_FRACTION = 0.2  # MNIST's 10,000 test-set images -> first 8,000 train, last 2,000 test
SPIRAL_SAMPLES = 3000


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1


# ---- argument types: each raises ArgumentTypeError so argparse reports it as a usage error

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _momentum(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _layers(text: str) -> List[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 784,128,10, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"need at least two positive sizes (inputs and outputs), got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False everywhere: a misspelt --epoch must be an error, not taken for --epochs.
    parser = argparse.ArgumentParser(prog=PROG, description="Dense neural networks on the CPU.",
                                     allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    info = commands.add_parser("info", help="version, instruction sets and threads", allow_abbrev=False,
                               description="Print the version, the instruction set in use, the "
                                           "ones supported here and the thread count.")
    # Each command keeps its own parser so that its errors are reported under its name.
    info.set_defaults(handler=cmd_info, command_parser=info)

    train = commands.add_parser(
        "train", help="train an MLP and report test accuracy and speed", allow_abbrev=False,
        description="Train a multi-layer perceptron with softmax cross-entropy and report test "
                    "accuracy and training speed. Without --data it uses built-in spirals "
                    "(no download); with --data DIR, MNIST IDX files from DIR.")
    train.add_argument("--layers", type=_layers, metavar="N,N,...",
                       help="layer sizes, inputs first (default: 784,128,10 for MNIST, "
                            "2,64,64,3 for spirals)")
    train.add_argument("--activation", choices=("relu", "tanh", "sigmoid"), default="relu",
                       help="hidden-layer activation (default: relu)")
    train.add_argument("--epochs", type=_positive_int, default=10, metavar="N",
                       help="(default: 10)")
    train.add_argument("--batch-size", type=_positive_int, default=128, metavar="N",
                       help="(default: 128)")
    train.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                       help="(default: sgd)")
    train.add_argument("--lr", type=_positive_float, metavar="F",
                       help="learning rate (default: 0.1 for sgd, 0.001 for adam)")
    train.add_argument("--momentum", type=_momentum, metavar="F",
                       help="SGD momentum in [0, 1) (default: 0.9)")
    train.add_argument("--data", type=Path, metavar="DIR",
                       help="directory with MNIST IDX files ({train,t10k}-{images-idx3,"
                            "labels-idx1}-ubyte[.gz]); default: built-in spirals")
    train.add_argument("--train-size", type=_positive_int, metavar="N",
                       help="training samples (default: all but the test samples)")
    train.add_argument("--test-size", type=_positive_int, metavar="N",
                       help="test samples (default: 20%% of the data, or the whole t10k set "
                            "when DIR also holds the train set)")
    train.add_argument("--seed", type=int, default=0, metavar="N",
                       help="for data, weights and shuffling (default: 0)")
    train.add_argument("--threads", type=_positive_int, metavar="N",
                       help="threads for the kernels (default: OpenMP's)")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="(default: float32)")
    train.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                       help="of the layers' matrix products: bfloat16 rounds their operands, sums "
                            "in float32, keeps float32 weights (float32 dtype only; default: float32)")
    train.add_argument("--save", type=Path, metavar="PATH", help="save the trained model here")
    train.add_argument("--plot", type=Path, metavar="PATH",
                       help="draw loss and accuracy per epoch, training and test set, to this "
                            "image (e.g. curve.png; needs matplotlib); the test set is then "
                            "scored after every epoch, inside the timed training")
    train.add_argument("--quiet", action="store_true", help="print only the final summary")
    train.set_defaults(handler=cmd_train, command_parser=train)
    return parser


# ---- data

def _first(X: np.ndarray, y: np.ndarray, n: Optional[int], flag: str, where: str):
    if n is None:
        return X, y
    if n > len(X):
        raise ValueError(f"{flag} {n} is more than the {len(X)} samples in {where}")
    return X[:n], y[:n]


def load_dataset(args: argparse.Namespace) -> Dataset:
    """The train/test data the flags ask for; ``ValueError``/``OSError`` for bad input."""
    if args.data is None:
        n_test = args.test_size or int(SPIRAL_SAMPLES * TEST_FRACTION)
        n_train = args.train_size or SPIRAL_SAMPLES - n_test
        X, y = data.make_spirals(n_samples=n_train + n_test, seed=args.seed)
        Xtr, Xte, ytr, yte = data.train_test_split(X, y, test_fraction=n_test / (n_train + n_test),
                                                   seed=args.seed)
        return Dataset("spirals (built-in, 3 classes)", Xtr, ytr, Xte, yte)

    directory = args.data
    if not directory.is_dir():
        raise ValueError(f"--data {directory}: not a directory")
    has_train = any((directory / f"train-images-idx3-ubyte{s}").is_file() for s in ("", ".gz"))
    if has_train:
        # A full MNIST directory: the canonical split, train set to learn, t10k to test.
        Xtr, ytr = data.load_mnist(directory, kind="train")
        Xte, yte = data.load_mnist(directory, kind="t10k")
        Xtr, ytr = _first(Xtr, ytr, args.train_size, "--train-size", "the train set")
        Xte, yte = _first(Xte, yte, args.test_size, "--test-size", "the t10k set")
        return Dataset(f"MNIST {directory} (train set / t10k set)", Xtr, ytr, Xte, yte)

    # Only the test set: train on its first images, test on its last ones (never overlapping).
    X, y = data.load_mnist(directory, kind="t10k")
    n = len(X)
    n_test = args.test_size or max(1, int(round(n * TEST_FRACTION)))
    n_train = args.train_size or n - n_test
    if n_train + n_test > n:
        raise ValueError(f"--train-size {n_train} + --test-size {n_test} is more than the {n} "
                         f"images in {directory}")
    if n_train < 1:
        raise ValueError(f"{directory} holds only {n} images: nothing left to train on")
    return Dataset(f"MNIST {directory} (t10k set: first {n_train} train, last {n_test} test)",
                   X[:n_train], y[:n_train], X[n - n_test:], y[n - n_test:])


# ---- commands

def _build_model(layers: Sequence[int], activation: str, seed: int, dtype: str):
    last = len(layers) - 2
    return nn.Sequential(*[
        # He init suits ReLU; Xavier suits the saturating activations and the linear logits.
        nn.Dense(n_in, n_out, activation=activation if i < last else None,
                 init="he" if activation == "relu" and i < last else "xavier",
                 seed=seed + i, dtype=dtype)
        for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:]))])


def _build_optimizer(args: argparse.Namespace):
    if args.optimizer == "adam":
        return optim.Adam(lr=args.lr or 1e-3)
    return optim.SGD(lr=args.lr or 0.1, momentum=0.9 if args.momentum is None else args.momentum)


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    start = time.perf_counter()
    say = (lambda *a: None) if args.quiet else print
    if args.momentum is not None and args.optimizer != "sgd":
        parser.error("--momentum applies to --optimizer sgd only")
    if args.precision == "bfloat16" and args.dtype != "float32":
        parser.error("--precision bfloat16 needs --dtype float32 (bfloat16 products of float32 weights)")
    if args.save is not None and not args.save.resolve().parent.is_dir():
        # Checked now rather than after a long training run that could not be kept.
        parser.error(f"--save {args.save}: directory {args.save.resolve().parent} does not exist")
    if args.plot is not None:
        _check_plot(args.plot, parser)
    if args.threads is not None:
        try:
            bp.set_num_threads(args.threads)
        except ValueError as e:  # above the bound (4 per CPU)
            parser.error(f"--threads {args.threads}: {e}")
    try:
        ds = load_dataset(args)
    except (ValueError, OSError) as e:
        parser.error(str(e))
    layers = args.layers or ([ds.n_features, 128, 10] if args.data is not None
                             else [ds.n_features, 64, 64, ds.n_classes])
    if layers[0] != ds.n_features:
        parser.error(f"--layers starts with {layers[0]} inputs but the data has "
                     f"{ds.n_features} features")
    if layers[-1] < ds.n_classes:
        parser.error(f"--layers ends with {layers[-1]} outputs but the data has "
                     f"{ds.n_classes} classes")

    X_train, X_test = ds.X_train.astype(args.dtype), ds.X_test.astype(args.dtype)
    try:
        model = _build_model(layers, args.activation, args.seed, args.dtype)
    except (MemoryError, ValueError) as e:  # e.g. --layers 2,99999999999,3
        parser.error(f"--layers {','.join(map(str, layers))}: cannot build the model: {e}")
    optimizer = _build_optimizer(args)
    say(f"data: {ds.name}: {len(X_train)} train, {len(X_test)} test, {ds.n_features} features, "
        f"{ds.n_classes} classes")
    say(f"model: {'-'.join(map(str, layers))} ({args.activation}, {args.dtype}"
        f"{', bfloat16 products' if args.precision == 'bfloat16' else ''}), {optimizer}, "
        f"{args.epochs} epochs, batch {args.batch_size}")

    # Progress bars on a terminal; one plain line per epoch in logs and pipes.
    verbose = 0 if args.quiet else (1 if sys.stderr.isatty() else 2)
    fit_start = time.perf_counter()
    # The test set is scored every epoch only for the plot's validation curves (it costs time).
    history = model.fit(X_train, ds.y_train, epochs=args.epochs, batch_size=args.batch_size,
                        loss="cross_entropy", optimizer=optimizer, shuffle=True, seed=args.seed,
                        verbose=verbose, precision=args.precision,
                        validation_data=None if args.plot is None else (X_test, ds.y_test))
    fit_seconds = time.perf_counter() - fit_start
    result = model.evaluate(X_test, ds.y_test, precision=args.precision)
    for path, write, what, done in ((args.save, model.save, "save to", "saved model to"),
                                    (args.plot, history.plot, "write the plot to", "saved training curves to")):
        if path is None:
            continue
        try:
            write(path)
        except OSError as e:
            print(f"{PROG} train: error: cannot {what} {path}: {e}", file=sys.stderr)
            return 1
        say(f"{done} {path}")

    samples = args.epochs * len(X_train)
    correct = int(round(result["accuracy"] * len(X_test)))
    print(f"test accuracy: {result['accuracy']:.4f} ({correct}/{len(X_test)}), "
          f"test loss: {result['loss']:.4f}")
    print(f"training speed: {samples / fit_seconds:,.0f} samples/s "
          f"({args.epochs} epochs x {len(X_train)} samples in {fit_seconds:.2f} s)")
    bf16 = f" (bfloat16: {bp.bf16_path()})" if args.precision == "bfloat16" else ""
    print(f"wall time: {time.perf_counter() - start:.2f} s; isa: {bp.isa()}{bf16}; "
          f"threads: {bp.get_num_threads()}")
    return 0


def _check_plot(path: Path, parser: argparse.ArgumentParser) -> None:
    """Before training: the directory exists, matplotlib is installed and knows the format."""
    if not path.resolve().parent.is_dir():
        parser.error(f"--plot {path}: directory {path.resolve().parent} does not exist")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        parser.error("--plot needs matplotlib: pip install matplotlib (or, from a blockprop "
                     "clone, pip install '.[plot]')")
    formats = Figure().canvas.get_supported_filetypes()
    if path.suffix.lstrip(".").lower() not in formats:
        parser.error(f"--plot {path}: unknown image format {path.suffix or '(no suffix)'!r}; "
                     f"use one of {', '.join('.' + f for f in sorted(formats))}")


def cmd_info(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    print(f"blockprop {bp.__version__}")
    print(f"isa: {bp.isa()}")
    print(f"supported isas: {', '.join(bp.supported_isas())}")
    print(f"bfloat16 path: {bp.bf16_path()} (supported: {', '.join(bp.supported_bf16_paths())})")
    print(f"threads: {bp.get_num_threads()} (cpus: {os.cpu_count()})")
    print(f"numpy: {np.__version__}; python: {sys.version.split()[0]}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported under the command's own usage line, not the top-level one
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.handler(args, args.command_parser)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
