"""Training-epoch and predict suites: blockprop beside PyTorch eager, scikit-learn and plain NumPy,
the same recipe (784-H-...-10 MLP, ReLU, softmax cross-entropy, SGD with momentum 0.9) on
MNIST-shaped data."""
from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

import blockprop as bp
from common import (SETTLE_SECONDS, best_times, bp_threads, fmt, numpy_forward, numpy_threads, print_table,
                    torch, torch_copy, torch_threads)

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
LR, MOMENTUM = 0.05, 0.9


def mnist_like(n: int) -> Tuple[np.ndarray, np.ndarray, str]:
    """n MNIST images (the shared test set, repeated) or, without it, random data of that shape."""
    try:
        from blockprop.data import load_mnist
        X, y = load_mnist(MNIST, kind="t10k")
        reps = -(-n // len(X))
        return np.tile(X, (reps, 1))[:n], np.tile(y, reps)[:n], "MNIST t10k (repeated)"
    except (OSError, ValueError):
        rng = np.random.default_rng(0)
        return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n), "random"


def flops_per_sample(sizes: Sequence[int]) -> float:
    """Forward 2·in·out per layer, dW 2·in·out, dx 2·in·out for every layer but the first."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return sum(6.0 * i * o for i, o in pairs) - 2.0 * pairs[0][0] * pairs[0][1]


def blockprop_epoch(sizes, X, y, batch, sample_weight=None):
    layers = [bp.nn.Dense(i, o, "relu" if k < len(sizes) - 2 else None, seed=k)
              for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))]
    model = bp.nn.Sequential(*layers)
    opt = bp.optim.SGD(LR, momentum=MOMENTUM)
    model.fit(X[:2 * batch], y[:2 * batch], epochs=1, batch_size=batch, optimizer=opt, verbose=0, seed=0)
    t0 = time.perf_counter()
    hist = model.fit(X, y, epochs=1, batch_size=batch, verbose=0, seed=1, sample_weight=sample_weight)
    return time.perf_counter() - t0, hist.history["loss"][-1]


def blockprop_weighted_epoch(sizes, X, y, batch):
    """With sample_weight (each batch's weighted mean loss): the same C++ loop, one more gather."""
    return blockprop_epoch(sizes, X, y, batch, np.random.default_rng(0).uniform(0, 2, len(X)))


def torch_epoch(sizes, X, y, batch, autocast=False):
    """PyTorch's loop on the same net; ``autocast``: under ``torch.autocast("cpu", bfloat16)``."""
    torch.manual_seed(0)
    mods: List = []
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(i, o))
        if k < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else contextlib.nullcontext

    def epoch(n):
        order = torch.randperm(n)
        total = 0.0
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            opt.zero_grad(set_to_none=True)
            with ctx():
                loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        return total / n

    epoch(2 * batch)
    t0 = time.perf_counter()
    loss = epoch(len(X))
    return time.perf_counter() - t0, loss


def numpy_epoch(sizes, X, y, batch):
    rng = np.random.default_rng(0)
    Ws = [(rng.standard_normal((o, i)) * np.sqrt(2 / i)).astype(np.float32) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(o, np.float32) for o in sizes[1:]]
    vel = [np.zeros_like(p) for p in Ws + bs]
    t0 = time.perf_counter()
    order = rng.permutation(len(X))
    total = 0.0
    for s in range(0, len(X), batch):
        idx = order[s:s + batch]
        acts = [X[idx]]
        for k, (W, b) in enumerate(zip(Ws, bs)):
            z = acts[-1] @ W.T + b
            acts.append(np.maximum(z, 0) if k < len(Ws) - 1 else z)
        z = acts[-1] - acts[-1].max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        total += -np.log(p[np.arange(len(idx)), y[idx]] + 1e-12).sum()
        p[np.arange(len(idx)), y[idx]] -= 1
        delta = p / len(idx)
        grads = []
        for k in range(len(Ws) - 1, -1, -1):
            grads.append((delta.T @ acts[k], delta.sum(0)))
            if k:
                delta = (delta @ Ws[k]) * (acts[k] > 0)
        grads = grads[::-1]
        for j, (dW, db) in enumerate(grads):
            for buf, param, g in ((vel[j], Ws[j], dW), (vel[len(Ws) + j], bs[j], db)):
                buf *= MOMENTUM
                buf += g
                param -= LR * buf
    return time.perf_counter() - t0, total / len(X)


def sklearn_epoch(sizes, X, y, batch):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), solver="sgd", batch_size=batch,
                        learning_rate_init=LR, momentum=MOMENTUM, nesterovs_momentum=False,
                        max_iter=1, alpha=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(X, y)
    return time.perf_counter() - t0, clf.loss_curve_[-1]


def suite_train(ctx) -> None:
    try:
        import sklearn  # noqa: F401
        have_sklearn = True
    except ImportError:
        have_sklearn = False
    n_fast = 20000 if ctx.quick else 60000
    n_slow = 5000 if ctx.quick else 10000  # NumPy and scikit-learn are timed on fewer samples
    X, y, source = mnist_like(n_fast)
    peak = ctx.peak_for(bp.isa(), ctx.threads)
    configs = [((784, 128, 10), 128), ((784, 128, 10), 32), ((784, 1024, 1024, 10), 256)]
    rows = []
    for sizes, batch in configs:
        fps = flops_per_sample(sizes)
        runs: List[Tuple[str, Callable, int]] = [("blockprop", blockprop_epoch, n_fast),
                                                 ("blockprop sample_weight", blockprop_weighted_epoch, n_fast)]
        if torch is not None:
            runs.append(("torch", torch_epoch, n_fast))
        if have_sklearn:
            runs.append(("sklearn", sklearn_epoch, n_slow))
        runs.append(("numpy", numpy_epoch, n_slow))
        # blockprop (with and without weights) and PyTorch alternate for two rounds (best of each), so both are timed over
        # the same stretches of a shared machine; the slow baselines run once.
        best: dict = {}
        for round_ in range(1 if ctx.quick else 2):
            for name, fn, n in runs:
                if round_ and name not in ("blockprop", "blockprop sample_weight", "torch"):
                    continue
                time.sleep(SETTLE_SECONDS)  # the previous library's threads go idle first
                with numpy_threads(ctx.threads), torch_threads(ctx.threads):
                    bp.set_num_threads(ctx.threads)
                    seconds, loss = fn(sizes, X[:n], y[:n], batch)
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, loss)
        speeds = {}
        for name, fn, n in runs:
            seconds, loss = best[name]
            speeds[name] = n / seconds
            rows.append(["-".join(map(str, sizes)), batch, name, f"{n:,}", fmt(n / seconds, ",.0f"),
                         fmt(fps * n / seconds * 1e-9), fmt(100 * fps * n / seconds * 1e-9 / peak, ".0f") + "%",
                         fmt(loss, ".4f"), ""])
        base = speeds["blockprop"]
        for r in rows[-len(runs):]:
            r[-1] = fmt(base / speeds[r[2]], ".2f") if r[2] != "blockprop" else ""
    print_table(f"Training, one epoch of SGD (momentum {MOMENTUM}), {ctx.threads} threads, data: {source}",
                ["layers", "batch", "library", "samples", "samples/s", "GFLOP/s", "% peak", "epoch loss",
                 "blockprop ×"], rows)


def suite_predict(ctx) -> None:
    n = 10000
    X, _, source = mnist_like(n)
    rows = []
    for sizes in [(784, 128, 10), (784, 1024, 1024, 10)]:
        layers = [bp.nn.Dense(i, o, "relu" if k < len(sizes) - 2 else None, seed=k)
                  for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))]
        model = bp.nn.Sequential(*layers)
        contenders = [(lambda: model.predict(X), lambda: bp_threads(ctx.threads)),
                      (lambda: numpy_forward(layers, X), lambda: numpy_threads(ctx.threads))]
        if torch is not None:
            tm, Xt = torch_copy(layers), torch.from_numpy(X)

            @contextlib.contextmanager
            def torch_inference():
                with torch_threads(ctx.threads), torch.inference_mode():
                    yield

            contenders.append((lambda: tm(Xt), torch_inference))
        t_bp, t_np, *t_rest = best_times(contenders, 1.5)
        t_th = t_rest[0] if t_rest else None
        agree = None
        if t_th is not None:
            with torch.inference_mode():
                agree = np.abs(tm(Xt).numpy() - model.predict(X)).max()
        rows.append(["-".join(map(str, sizes)), f"{n / t_bp:,.0f}", f"{n / t_np:,.0f}",
                     fmt(n / t_th if t_th else None, ",.0f"), fmt(t_np / t_bp, ".2f"),
                     fmt(t_th / t_bp if t_th else None, ".2f"),
                     fmt(agree if t_th else None, ".1e")])
    print_table(f"predict on {n:,} samples ({source}), {ctx.threads} threads (samples/s)",
                ["layers", "blockprop", "numpy", "torch (inference_mode)", "vs numpy", "vs torch",
                 "max |Δ| vs torch"], rows)
