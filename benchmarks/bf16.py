"""The bfloat16 suite: GEMM 1024³ and a 784-1024-1024-10 training epoch at precision="bfloat16" on
every bf16 path this CPU has, beside blockprop's float32 and PyTorch's CPU autocast
(torch.autocast("cpu", dtype=torch.bfloat16)), timed in interleaved rounds; then MNIST accuracy
(../shared/data/mnist t10k: first 8,000 images to train, last 2,000 to test) at bfloat16 against
float32, mean of 3 seeds."""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

import blockprop as bp
from common import SETTLE_SECONDS, best_times, bp_threads, fmt, numpy_threads, print_table, torch, torch_threads
from training import LR, MNIST, MOMENTUM, flops_per_sample, mnist_like, torch_epoch


@contextlib.contextmanager
def bf16_path(path: str):
    """bfloat16 products on `path` for the block (the best path again after)."""
    bp.set_bf16_path(path)
    try:
        yield
    finally:
        bp.set_bf16_path(bp.supported_bf16_paths()[-1])


def _gemm(ctx) -> None:
    n = 1024
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    paths = bp.supported_bf16_paths()
    contenders = [(lambda: bp.gemm(a, b, out=out), lambda: bp_threads(ctx.threads))]
    for p in paths:
        contenders.append((lambda: bp.gemm(a, b, out=out, precision="bfloat16"),
                           lambda p=p: _both(bp_threads(ctx.threads), bf16_path(p))))
    times = best_times(contenders, 0.6 if ctx.quick else 2.0, rounds=3 if ctx.quick else 6)
    flops, peak = 2.0 * n ** 3, ctx.peak_for(bp.isa(), ctx.threads)
    rows = [["float32", "-", fmt(flops / times[0] * 1e-9), fmt(100 * flops / times[0] * 1e-9 / peak, ".0f") + "%", "1.00"]]
    for p, t in zip(paths, times[1:]):
        rows.append(["bfloat16", p, fmt(flops / t * 1e-9), fmt(100 * flops / t * 1e-9 / peak, ".0f") + "%",
                     fmt(times[0] / t, ".2f")])
    print_table(f"GEMM 1024³ NN, blockprop, {ctx.threads} threads (% of the float32 FMA peak)",
                ["precision", "bf16 path", "GFLOP/s", "% fp32 peak", "× float32"], rows)


@contextlib.contextmanager
def _both(a, b):
    with a, b:
        yield


def _bp_epoch(sizes, X, y, batch, precision, seed=0):
    layers = [bp.nn.Dense(i, o, "relu" if k < len(sizes) - 2 else None, seed=seed + k)
              for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))]
    model = bp.nn.Sequential(*layers)
    opt = bp.optim.SGD(LR, momentum=MOMENTUM)
    model.fit(X[:2 * batch], y[:2 * batch], epochs=1, batch_size=batch, optimizer=opt, verbose=0,
              seed=0, precision=precision)
    t0 = time.perf_counter()
    hist = model.fit(X, y, epochs=1, batch_size=batch, verbose=0, seed=1, precision=precision)
    return time.perf_counter() - t0, hist.history["loss"][-1]


def _epoch(ctx) -> None:
    sizes, batch = (784, 1024, 1024, 10), 256
    n = 4096 if ctx.quick else 10240
    X, y, source = mnist_like(n)
    runs: List[Tuple[str, str, Callable]] = [("blockprop", "float32", lambda: _bp_epoch(sizes, X, y, batch, "float32"))]
    for p in bp.supported_bf16_paths():
        runs.append(("blockprop", f"bfloat16 ({p})",
                     lambda p=p: _with(bf16_path(p), lambda: _bp_epoch(sizes, X, y, batch, "bfloat16"))))
    if torch is not None:
        runs.append(("torch", "float32", lambda: torch_epoch(sizes, X, y, batch)))
        runs.append(("torch", "autocast bfloat16", lambda: torch_epoch(sizes, X, y, batch, autocast=True)))
    best: Dict[int, Tuple[float, float]] = {}
    for _ in range(2 if ctx.quick else 3):  # interleaved rounds, best of each
        for i, (_, _, fn) in enumerate(runs):
            time.sleep(SETTLE_SECONDS)
            with numpy_threads(ctx.threads), torch_threads(ctx.threads), bp_threads(ctx.threads):
                seconds, loss = fn()
            if i not in best or seconds < best[i][0]:
                best[i] = (seconds, loss)
    fps, peak = flops_per_sample(sizes), ctx.peak_for(bp.isa(), ctx.threads)
    bf16_best = min(best[i][0] for i, r in enumerate(runs) if r[0] == "blockprop" and "bfloat16" in r[1])
    rows = []
    for i, (lib, prec, _) in enumerate(runs):
        seconds, loss = best[i]
        rows.append([lib, prec, fmt(n / seconds, ",.0f"), fmt(fps * n / seconds * 1e-9),
                     fmt(100 * fps * n / seconds * 1e-9 / peak, ".0f") + "%", fmt(loss, ".4f"),
                     fmt(seconds / bf16_best, ".2f")])
    print_table(f"Epoch of 784-1024-1024-10, batch {batch}, SGD momentum {MOMENTUM}, {ctx.threads} threads, "
                f"{n:,} samples of {source}",
                ["library", "precision", "samples/s", "GFLOP/s", "% fp32 peak", "epoch loss",
                 "best blockprop bf16 ×"], rows)


def _with(context, fn):
    with context:
        return fn()


def _accuracy(ctx) -> None:
    from blockprop.data import load_mnist
    try:
        X, y = load_mnist(MNIST, kind="t10k")
    except (OSError, ValueError) as e:
        print(f"\n(MNIST accuracy skipped: {MNIST}: {e})")
        return
    Xtr, ytr, Xte, yte = X[:8000], y[:8000], X[-2000:], y[-2000:]
    seeds = (0, 1, 2)
    rows = []
    for sizes, epochs in (((784, 128, 10), 10), ((784, 1024, 1024, 10), 10)):
        acc: Dict[str, List[float]] = {"float32": [], "bfloat16": []}
        for precision in acc:
            for seed in seeds[:1] if ctx.quick and len(sizes) > 3 else seeds:
                layers = [bp.nn.Dense(i, o, "relu" if k < len(sizes) - 2 else None, seed=100 * seed + k)
                          for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))]
                model = bp.nn.Sequential(*layers)
                with bp_threads(ctx.threads):
                    model.fit(Xtr, ytr, epochs=epochs, batch_size=64, optimizer=bp.optim.SGD(LR, momentum=MOMENTUM),
                              seed=seed, verbose=0, precision=precision)
                    acc[precision].append(model.evaluate(Xte, yte, precision=precision)["accuracy"])
        m32, m16 = 100 * np.mean(acc["float32"]), 100 * np.mean(acc["bfloat16"])
        rows.append(["-".join(map(str, sizes)), len(acc["float32"]), fmt(m32, ".2f"), fmt(m16, ".2f"),
                     fmt(m16 - m32, "+.2f"),
                     " ".join(fmt(100 * a, ".1f") for a in acc["float32"]) + " / " +
                     " ".join(fmt(100 * a, ".1f") for a in acc["bfloat16"])])
    print_table(f"MNIST test accuracy (t10k: train first 8,000, test last 2,000; SGD {LR} momentum {MOMENTUM}, "
                f"batch 64, 10 epochs), bfloat16 on {bp.bf16_path()}",
                ["layers", "seeds", "float32 %", "bfloat16 %", "difference (points)", "per seed fp32 / bf16"], rows)


def suite_bf16(ctx) -> None:
    print(f"\nbfloat16 paths: {', '.join(bp.supported_bf16_paths())} (best: {bp.bf16_path()}); "
          f"isa {bp.isa()}")
    _gemm(ctx)
    _epoch(ctx)
    _accuracy(ctx)
