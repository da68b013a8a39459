"""The ``many`` suite: K models trained on the same data at once (issue 19). 16 models 784-128-10
with different learning rates, SGD with momentum 0.9, one epoch on MNIST-shaped data:
``blockprop.fit_many`` beside 16 ``fit`` calls and beside PyTorch's ``torch.func`` ensembling
(``stack_module_state`` + ``functional_call`` + ``vmap``, as in PyTorch's model-ensembling
tutorial), throughput in model-samples/s and % of the FMA peak; memory per model; and
model-samples/s against K (plotted with ``--plot-many PNG``)."""
from __future__ import annotations

import copy
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

import blockprop as bp
from common import SETTLE_SECONDS, fmt, print_table, run_child, torch, torch_threads
from training import MOMENTUM, flops_per_sample, mnist_like

SIZES = (784, 128, 10)
K_MAIN = 16
K_SWEEP = (1, 2, 4, 8, 16, 32)


def _lrs(k: int) -> List[float]:
    """k learning rates from 0.005 to 0.1, spaced evenly on a log scale: a learning-rate search."""
    return list(np.geomspace(0.005, 0.1, k)) if k > 1 else [0.02]


def _models(k: int) -> List[Any]:
    return [bp.nn.Sequential(bp.nn.Dense(SIZES[0], SIZES[1], "relu", seed=i),
                             bp.nn.Dense(SIZES[1], SIZES[2], seed=1000 + i)) for i in range(k)]


def _opts(k: int) -> List[Any]:
    return [bp.optim.SGD(lr, momentum=MOMENTUM) for lr in _lrs(k)]


def run_fit_many(k: int, X: np.ndarray, y: np.ndarray, batch: int) -> Tuple[float, float]:
    """Seconds of one epoch of fit_many over k models, and the mean final loss."""
    models = _models(k)
    t0 = time.perf_counter()
    hist = bp.fit_many(models, X, y, epochs=1, batch_size=batch, loss="cross_entropy",
                       optimizers=_opts(k), seed=1, verbose=0)
    return time.perf_counter() - t0, float(np.mean([h.history["loss"][-1] for h in hist]))


def run_fits(k: int, X: np.ndarray, y: np.ndarray, batch: int) -> Tuple[float, float]:
    """Seconds of one epoch of each of k models, one ``fit`` after another."""
    models, opts, losses = _models(k), _opts(k), []
    t0 = time.perf_counter()
    for m, opt in zip(models, opts):
        losses.append(m.fit(X, y, epochs=1, batch_size=batch, loss="cross_entropy", optimizer=opt,
                            seed=1, verbose=0).history["loss"][-1])
    return time.perf_counter() - t0, float(np.mean(losses))


def run_torch_func(k: int, X: np.ndarray, y: np.ndarray, batch: int) -> Tuple[float, float]:
    """One epoch of k models trained together with torch.func, as PyTorch's ensembling tutorial
    builds it: parameters stacked, vmap over grad(functional_call(...)); SGD with momentum by hand,
    one learning rate per model."""
    from torch.func import functional_call, grad, stack_module_state, vmap

    def make(i: int) -> Any:
        torch.manual_seed(i)
        return torch.nn.Sequential(torch.nn.Linear(SIZES[0], SIZES[1]), torch.nn.ReLU(),
                                   torch.nn.Linear(SIZES[1], SIZES[2]))

    models = [make(i) for i in range(k)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss_fn(p: Dict[str, Any], b: Dict[str, Any], xb: Any, yb: Any) -> Any:
        loss = torch.nn.functional.cross_entropy(functional_call(base, (p, b), (xb,)), yb)
        return loss, loss.detach()

    step = vmap(grad(loss_fn, has_aux=True), in_dims=(0, 0, None, None))
    lr = torch.tensor(_lrs(k), dtype=torch.float32)
    vel = {name: torch.zeros_like(p) for name, p in params.items()}
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    params = {name: p.detach() for name, p in params.items()}
    total = torch.zeros(k)
    t0 = time.perf_counter()
    with torch.no_grad():
        order = torch.randperm(len(X))
        for s in range(0, len(X), batch):
            idx = order[s:s + batch]
            grads, losses = step(params, buffers, Xt[idx], yt[idx])
            total += losses * len(idx)
            for name, p in params.items():
                v = vel[name]
                v.mul_(MOMENTUM).add_(grads[name])
                p.sub_(lr.view(-1, *([1] * (p.dim() - 1))) * v)
    return time.perf_counter() - t0, float(total.mean()) / len(X)


def _best(runs: List[Tuple[str, Any, int]], rounds: int) -> Dict[str, Tuple[float, float]]:
    """Best seconds (and its loss) of each run (name, fn, samples), the runs alternating round by
    round so that each is timed over the same stretches of a shared machine."""
    best: Dict[str, Tuple[float, float]] = {}
    for _ in range(rounds):
        for name, fn, _n in runs:
            time.sleep(SETTLE_SECONDS)
            seconds, loss = fn()
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, loss)
    return best


# --- memory per model (a child process each, so peaks do not mix) --------------------------------
def _memory_child(spec: Dict[str, Any]) -> Dict[str, Any]:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from memory import _reset_hwm, _rss, _status_kib, _trim

    bp.set_num_threads(spec["threads"])
    k, n, batch = spec["k"], spec["n"], spec["batch"]
    rng = np.random.default_rng(0)
    X = rng.random((n, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], n)
    warm = _models(1)
    bp.fit_many(warm, X[:2 * batch], y[:2 * batch], epochs=1, batch_size=batch, loss="cross_entropy",
                optimizers=_opts(1), seed=0, verbose=0)
    del warm
    _trim()
    before_models = _rss()
    models = _models(k)
    _trim()
    before = _rss()
    _reset_hwm()
    bp.fit_many(models, X, y, epochs=1, batch_size=batch, loss="cross_entropy", optimizers=_opts(k),
                seed=0, verbose=0)
    peak = _status_kib("VmHWM") * 1024
    params = sum(p.data.nbytes for p in models[0].parameters().values())
    return {"models": before - before_models, "peak": peak - before, "params": params}


def _memory(k: int, n: int, batch: int, threads: int) -> Dict[str, Any]:
    return run_child(__file__, {"k": k, "n": n, "batch": batch, "threads": threads}, "many memory")


# --- the suite -------------------------------------------------------------------------------------
def suite_many(ctx: Any) -> None:
    n = 5000 if ctx.quick else 20000
    n_torch = 1000 if ctx.quick else 4000  # torch.func is timed on fewer samples (it is slow)
    rounds = 2 if ctx.quick else 3
    X, y, source = mnist_like(n)
    peak = ctx.peak_for(bp.isa(), ctx.threads)
    fps = flops_per_sample(SIZES)
    bp.set_num_threads(ctx.threads)
    rows = []
    for batch in (32, 128):
        runs: List[Tuple[str, Any, int]] = [
            ("fit_many", lambda: run_fit_many(K_MAIN, X, y, batch), n),
            (f"{K_MAIN} × fit", lambda: run_fits(K_MAIN, X, y, batch), n)]
        if torch is not None:
            runs.append(("torch.func", lambda: run_torch_func(K_MAIN, X[:n_torch], y[:n_torch], batch),
                         n_torch))
        with torch_threads(ctx.threads) if torch is not None else _nothing():
            best = _best(runs, rounds)
        base = K_MAIN * n / best["fit_many"][0]
        for name, _, samples in runs:
            seconds, loss = best[name]
            speed = K_MAIN * samples / seconds
            rows.append([batch, name, f"{samples:,}", fmt(speed, ",.0f"), fmt(fps * speed * 1e-9),
                         fmt(100 * fps * speed * 1e-9 / peak, ".0f") + "%", fmt(loss, ".4f"),
                         fmt(base / speed, ".2f") if name != "fit_many" else ""])
    print_table(f"{K_MAIN} models {'-'.join(map(str, SIZES))}, different learning rates, one epoch of SGD "
                f"(momentum {MOMENTUM}), {ctx.threads} threads, data: {source}; best of {rounds} "
                f"alternating runs; FMA peak {peak:.1f} GFLOP/s",
                ["batch", "run", "samples", "model-samples/s", "GFLOP/s", "% peak", "mean loss",
                 "fit_many ×"], rows)

    # K = 1 trains on fit's own loop; from 2 on, fit_many's loop, whose growth includes the call's
    # batches gathered once for every model (up to 16 MiB, a fixed cost): the cost of one more
    # model is the slope from 2 to K.
    mem = {k: _memory(k, n, 128, ctx.threads) for k in (1, 2, K_MAIN)}
    per_model = (mem[K_MAIN]["peak"] - mem[2]["peak"]) / (K_MAIN - 2)
    print_table(f"Memory of fit_many, batch 128 (RSS, child processes; data set {X.nbytes / 2**20:.1f} MiB "
                "shared by all models, not counted)",
                ["K", "models (MiB)", "fit_many peak growth (MiB)", "per model (MiB)", "parameters per model (MiB)"],
                [[k, fmt(m["models"] / 2**20, ".2f"), fmt(m["peak"] / 2**20, ".2f"),
                  fmt((m["models"] + m["peak"]) / k / 2**20, ".2f"), fmt(m["params"] / 2**20, ".2f")]
                 for k, m in mem.items()])
    print(f"each model past the second adds {per_model / 2**20:.2f} MiB to fit_many's peak (K = 2 includes "
          "the batches gathered once for all models: at most 16 MiB, kept for the next call)")

    # Samples per K: at least ~64k model-samples a run (short runs are all noise), at most n.
    budget = 16000 if ctx.quick else 64000
    sweep: Dict[int, Dict[str, float]] = {}
    rows = []
    for k in K_SWEEP:
        m = min(n, max(budget // k, 2000))
        best = _best([("fit_many", lambda: run_fit_many(k, X[:m], y[:m], 128), m),
                      ("fit", lambda: run_fits(k, X[:m], y[:m], 128), m)], rounds)
        sweep[k] = {name: k * m / s for name, (s, _) in best.items()}
        v = sweep[k]
        rows.append([k, f"{m:,}", fmt(v["fit_many"], ",.0f"), fmt(v["fit"], ",.0f"),
                     fmt(100 * fps * v["fit_many"] * 1e-9 / peak, ".0f") + "%",
                     fmt(v["fit_many"] / v["fit"], ".2f")])
    print_table("Model-samples/s against K (batch 128)",
                ["K", "samples", "fit_many", "K × fit", "fit_many % peak", "ratio"], rows)
    path = getattr(ctx, "plot_many", None)
    if path:
        _plot(sweep, path, peak * 1e9 / fps)


def _plot(sweep: Dict[int, Dict[str, float]], path: str, peak_speed: float) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    ks = sorted(sweep)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ks, [sweep[k]["fit_many"] for k in ks], "o-", label="fit_many")
    ax.plot(ks, [sweep[k]["fit"] for k in ks], "s--", label="K × fit")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("models K")
    ax.set_ylabel("model-samples/s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{'-'.join(map(str, SIZES))}, batch 128 (FMA peak: {peak_speed:,.0f} model-samples/s)",
                 fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--child":
    print(json.dumps(_memory_child(json.loads(sys.argv[2]))))
