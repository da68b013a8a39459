"""The classic MNIST multi-layer perceptron, step by step, with blockprop.

    784 pixels -> Dense 128 + ReLU -> Dense 10 (logits) -> softmax + cross-entropy

trained with mini-batch SGD (momentum 0.9) on the real MNIST test set: its first 8,000 images
for training, its last 2,000 for testing. Prints the loss and accuracy per epoch, the test
accuracy and the training speed in samples per second. When PyTorch is importable the same
recipe runs there too, from the very same initial weights and batch order, for a side-by-side
figure.

    python examples/mnist_mlp.py [MNIST_DIR] [--epochs 10] [--threads N] [--no-torch]

MNIST_DIR defaults to ../shared/data/mnist relative to the repository; it must hold
t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz].
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import blockprop as bp
from blockprop.data import load_mnist

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"
N_TRAIN, N_TEST = 8000, 2000
HIDDEN, CLASSES = 128, 10
LR, MOMENTUM, BATCH = 0.1, 0.9, 128


def load(directory: Path):
    # X: (10000, 784) float32 in [0, 1]; y: (10000,) int64 digit labels.
    X, y = load_mnist(directory, kind="t10k")
    # The file is not sorted by class, so a plain cut gives a fair split with no overlap.
    return (X[:N_TRAIN], y[:N_TRAIN]), (X[-N_TEST:], y[-N_TEST:])


def build_model(seed: int = 0) -> "bp.nn.Sequential":
    # He initialisation keeps the ReLU layer's activations at a steady scale; the output layer
    # is linear (it produces logits) and the loss applies the softmax, which is both cheaper and
    # numerically safer than a softmax layer followed by a log.
    return bp.nn.Sequential(
        bp.nn.Dense(784, HIDDEN, activation="relu", init="he", seed=seed),
        bp.nn.Dense(HIDDEN, CLASSES, init="xavier", seed=seed + 1),
    )


def train_blockprop(train, test, epochs: int):
    (X, y), (Xt, yt) = train, test
    model = build_model()
    initial = {name: p.data.copy() for name, p in model.parameters().items()}
    start = time.perf_counter()
    hist = model.fit(X, y, epochs=epochs, batch_size=BATCH, loss="cross_entropy",
                     optimizer=bp.optim.SGD(lr=LR, momentum=MOMENTUM),
                     shuffle=True, seed=0, verbose=0)
    seconds = time.perf_counter() - start
    h = hist.history
    for e in range(epochs):
        print(f"  epoch {e + 1:2d}: loss {h['loss'][e]:.4f}, train accuracy {h['accuracy'][e]:.4f}")
    result = model.evaluate(Xt, yt)
    return result, epochs * len(X) / seconds, seconds, initial


def train_torch(train, test, epochs: int, initial):
    """The same network, loss, optimiser and batch size in PyTorch, starting from blockprop's
    initial weights (both store W as (out, in), so they copy straight across)."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(bp.get_num_threads())  # the same cores, for a fair speed figure
    (X, y), (Xt, yt) = train, test
    model = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, CLASSES))
    weights = list(initial.values())  # W0, b0, W1, b1 in layer order
    with torch.no_grad():
        for param, value in zip(model.parameters(), weights):
            param.copy_(torch.from_numpy(value).reshape(param.shape))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xg, yg = torch.from_numpy(X), torch.from_numpy(y)
    start = time.perf_counter()
    for e in range(epochs):
        # The batch order blockprop's fit(seed=0) uses, so both runs see the very same batches
        # and their curves differ only by floating-point rounding.
        order = torch.from_numpy(np.random.default_rng([0, e]).permutation(len(X)))
        total, correct = 0.0, 0
        for i in range(0, len(X), BATCH):
            idx = order[i:i + BATCH]
            logits = model(Xg[idx])
            loss = loss_fn(logits, yg[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yg[idx]).sum())
        print(f"  epoch {e + 1:2d}: loss {total / len(X):.4f}, "
              f"train accuracy {correct / len(X):.4f}")
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logits = model(torch.from_numpy(Xt))
        test_loss = float(loss_fn(logits, torch.from_numpy(yt)))
        accuracy = float((logits.argmax(1).numpy() == yt).mean())
    return {"loss": test_loss, "accuracy": accuracy}, epochs * len(X) / seconds, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA,
                        help=f"MNIST directory (default: {DEFAULT_DATA})")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, help="threads for both libraries (default: all)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    args = parser.parse_args()
    if args.threads:
        bp.set_num_threads(args.threads)

    train, test = load(args.data)
    print(f"MNIST from {args.data}: {len(train[0])} train, {len(test[0])} test images")
    print(f"network 784-{HIDDEN}-{CLASSES} (ReLU), softmax cross-entropy, SGD lr={LR} "
          f"momentum={MOMENTUM}, batch {BATCH}, {args.epochs} epochs; "
          f"isa {bp.isa()}, {bp.get_num_threads()} threads")

    print("blockprop:")
    result, speed, seconds, initial = train_blockprop(train, test, args.epochs)
    rows = [("blockprop", result, speed, seconds)]

    if not args.no_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("(PyTorch not installed: no comparison)")
        else:
            print(f"PyTorch {torch.__version__}:")
            rows.append(("pytorch", *train_torch(train, test, args.epochs, initial)))

    print()
    print(f"{'':10s} {'test acc':>9s} {'test loss':>10s} {'samples/s':>11s} {'train time':>11s}")
    for name, res, sps, secs in rows:
        print(f"{name:10s} {res['accuracy']:9.4f} {res['loss']:10.4f} {sps:11,.0f} {secs:10.2f}s")


if __name__ == "__main__":
    main()
