"""The benchmark suites. Each prints one table; GEMM results are kept for the plot."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

import blockprop as bp
from common import best_times, bp_threads, fmt, numpy_threads, print_table, torch, torch_threads


@dataclass
class Context:
    threads: int
    quick: bool
    peak: Dict[Tuple[str, int], float] = field(default_factory=dict)  # (isa, threads) -> GFLOP/s
    gemm_points: List[Tuple[str, int, float, float, Optional[float]]] = field(default_factory=list)
    plot_many: Optional[str] = None  # the many suite's plot of model-samples/s against K

    def peak_for(self, isa: str, threads: int) -> float:
        key = (isa, threads)
        if key not in self.peak:
            saved = bp.isa()
            bp.set_isa(isa)
            # The best of three: the peak is what the cores can do, and a shared host lowers
            # some measurements, never raises them.
            self.peak[key] = max(bp._core.measure_fma_peak_gflops(False, threads, 0.2 if self.quick else 0.5)
                                 for _ in range(3))
            bp.set_isa(saved)
        return self.peak[key]


def suite_peak(ctx: Context) -> None:
    rows = []
    for isa in reversed(bp.supported_isas()):
        for t in sorted({1, ctx.threads}):
            rows.append([isa, t, fmt(ctx.peak_for(isa, t))])
    print_table("FMA peak (register-only loop, float32)", ["isa", "threads", "GFLOP/s"], rows)


def _gemm_operands(m: int, n: int, k: int, ta: bool, tb: bool, dtype) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def _time_gemm(m, n, k, ta, tb, dtype, threads, min_time) -> Tuple[float, float, Optional[float]]:
    """GFLOP/s of blockprop, NumPy and PyTorch for one GEMM."""
    a, b = _gemm_operands(m, n, k, ta, tb, dtype)
    out = np.empty((m, n), dtype)
    flops = 2.0 * m * n * k
    a_op, b_op = (a.T if ta else a), (b.T if tb else b)
    contenders = [(lambda: bp.gemm(a, b, ta, tb, out=out), lambda: bp_threads(threads)),
                  (lambda: np.matmul(a_op, b_op, out=out), lambda: numpy_threads(threads))]
    if torch is not None:
        ta_t, tb_t = torch.from_numpy(a), torch.from_numpy(b)
        at, bt = (ta_t.T if ta else ta_t), (tb_t.T if tb else tb_t)
        ot = torch.from_numpy(out)
        contenders.append((lambda: torch.matmul(at, bt, out=ot), lambda: torch_threads(threads)))
    t_bp, t_np, *t_rest = best_times(contenders, min_time)
    t_th = t_rest[0] if t_rest else None
    return flops / t_bp * 1e-9, flops / t_np * 1e-9, (flops / t_th * 1e-9 if t_th else None)


def suite_gemm(ctx: Context) -> None:
    isa = bp.isa()
    peak = ctx.peak_for(isa, ctx.threads)
    min_time = 0.1 if ctx.quick else 0.3
    # 3000³: a B too large to pack whole (shared a k slice at a time), and no power of two
    sizes = [128, 512, 1024, 2048] if ctx.quick else [64, 128, 256, 512, 768, 1024, 1536, 2048,
                                                       3000]
    cases = [("NN", False, False), ("NT", False, True), ("TN", True, False)]
    rows = []

    def row(label, m, n, k, ta, tb, dtype=np.float32, threads=ctx.threads, isa_=isa, pk=peak):
        saved = bp.isa()
        bp.set_isa(isa_)
        g_bp, g_np, g_th = _time_gemm(m, n, k, ta, tb, dtype, threads, min_time)
        bp.set_isa(saved)
        bp.set_num_threads(ctx.threads)
        rows.append([label, f"{m}×{n}×{k}", np.dtype(dtype).name, isa_, threads, fmt(g_bp), fmt(g_np),
                     fmt(g_th), fmt(g_bp / g_np, ".2f"), fmt(g_bp / g_th if g_th else None, ".2f"),
                     fmt(100 * g_bp / pk, ".0f") + "%"])
        return g_bp, g_np, g_th

    for s in sizes:
        for name, ta, tb in cases:
            g = row(name, s, s, s, ta, tb)
            ctx.gemm_points.append((name, s, *g))
    # The layer shapes of a 784-128-10 network (forward x·Wᵀ is NT, dx = δ·W is NN, dW = δᵀ·x is TN).
    for batch in (32, 128):
        row("fwd 784→128", batch, 128, 784, False, True)
        row("dx 128→784", batch, 784, 128, False, False)
        row("dW 128×784", 128, 784, batch, True, False)
        row("fwd 128→10", batch, 10, 128, False, True)
    s = 1024
    row("NN 1 thread", s, s, s, False, False, threads=1, pk=ctx.peak_for(isa, 1))
    if "avx2" in bp.supported_isas() and isa != "avx2":
        row("NN avx2", s, s, s, False, False, isa_="avx2", pk=ctx.peak_for("avx2", ctx.threads))
    row("NN float64", s, s, s, False, False, dtype=np.float64, pk=peak / 2)
    if not ctx.quick:  # a float64 B this large is shared a k slice at a time (over 16 MiB packed)
        row("NN float64", 2048, 2048, 2048, False, False, dtype=np.float64, pk=peak / 2)
    print_table(f"GEMM (GFLOP/s; peak {peak:.0f} GFLOP/s float32 on {ctx.threads} threads, {isa})",
                ["case", "m×n×k", "dtype", "isa", "thr", "blockprop", "numpy", "torch", "vs numpy",
                 "vs torch", "% peak"], rows)
    if ctx.threads > 1:
        _thread_scaling(ctx)


def _thread_scaling(ctx: Context) -> None:
    """GEMM on all threads against one thread, timed in alternation, beside the same ratio for the
    register-only FMA loop: the most the cores themselves scale (less than ×threads when the
    virtual CPUs share a physical core or the host is busy)."""
    t = ctx.threads
    rows = []
    for s in ([1024] if ctx.quick else [1024, 2048]):
        a, b = _gemm_operands(s, s, s, False, False, np.float32)
        out = np.empty((s, s), np.float32)
        one, many = best_times([(lambda: bp.gemm(a, b, out=out), lambda: bp_threads(1)),
                                (lambda: bp.gemm(a, b, out=out), lambda: bp_threads(t))],
                               0.5 if ctx.quick else 2.0)
        rows.append([f"GEMM NN {s}³", fmt(2e-9 * s ** 3 / one), fmt(2e-9 * s ** 3 / many),
                     fmt(one / many, ".2f")])
    peaks = [[], []]
    for _ in range(3):
        for i, threads in enumerate((1, t)):
            peaks[i].append(bp._core.measure_fma_peak_gflops(False, threads, 0.3))
    rows.append(["FMA loop (best of 3)", fmt(max(peaks[0])), fmt(max(peaks[1])),
                 fmt(max(peaks[1]) / max(peaks[0]), ".2f")])
    print_table(f"Thread scaling, 1 vs {t} threads (GFLOP/s, float32, {bp.isa()})",
                ["case", "1 thread", f"{t} threads", "ratio"], rows)


def _dense_numpy(x, W, b, dy):
    y = np.maximum(x @ W.T + b, 0)
    delta = dy * (y > 0)
    return y, delta @ W, delta.T @ x, delta.sum(0)


def _dense_torch(x, W, b, dy):
    y = torch.relu(torch.addmm(b, x, W.T))
    delta = dy * (y > 0)
    return y, delta @ W, delta.T @ x, delta.sum(0)


def _dense_blockprop(x, W, b, dy):
    y = bp.dense_forward(x, W, b, "relu")
    return (y, *bp.dense_backward(x, W, dy, y, "relu"))


def suite_layer(ctx: Context) -> None:
    """One dense layer (ReLU), forward + backward: 6·batch·in·out flops."""
    min_time = 0.1 if ctx.quick else 0.3
    shapes = [(32, 784, 128), (128, 784, 128), (128, 128, 10), (256, 1024, 1024), (1024, 1024, 1024)]
    rows = []
    rng = np.random.default_rng(0)
    peak = ctx.peak_for(bp.isa(), ctx.threads)
    for batch, n_in, n_out in shapes:
        x = rng.standard_normal((batch, n_in)).astype(np.float32)
        W = (rng.standard_normal((n_out, n_in)) * 0.05).astype(np.float32)
        b = rng.standard_normal(n_out).astype(np.float32)
        dy = rng.standard_normal((batch, n_out)).astype(np.float32)
        flops = 6.0 * batch * n_in * n_out
        contenders = [(lambda: _dense_blockprop(x, W, b, dy), lambda: bp_threads(ctx.threads)),
                      (lambda: _dense_numpy(x, W, b, dy), lambda: numpy_threads(ctx.threads))]
        if torch is not None:
            xt, Wt, bt, dyt = map(torch.from_numpy, (x, W, b, dy))
            contenders.append((lambda: _dense_torch(xt, Wt, bt, dyt),
                               lambda: torch_threads(ctx.threads)))
        t_bp, t_np, *t_rest = best_times(contenders, min_time)
        t_th = t_rest[0] if t_rest else None
        g = lambda t: flops / t * 1e-9 if t else None  # noqa: E731
        rows.append([f"{batch}×{n_in}→{n_out}", fmt(t_bp * 1e6, ".0f"), fmt(g(t_bp)), fmt(g(t_np)),
                     fmt(g(t_th)), fmt(t_np / t_bp, ".2f"), fmt(t_th / t_bp if t_th else None, ".2f"),
                     fmt(100 * g(t_bp) / peak, ".0f") + "%"])
    print_table("Dense layer, ReLU, forward + backward (float32)",
                ["batch×in→out", "µs", "blockprop GFLOP/s", "numpy", "torch", "vs numpy", "vs torch",
                 "% peak"], rows)


def plot_gemm(ctx: Context, path: str) -> None:
    if not ctx.gemm_points:
        print("(no GEMM results to plot: run the gemm suite)")
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for case, style in (("NN", "-"), ("NT", "--"), ("TN", ":")):
        pts = [p for p in ctx.gemm_points if p[0] == case]
        sizes = [p[1] for p in pts]
        ax.plot(sizes, [p[2] for p in pts], "C0" + style, marker="o", label=f"blockprop {case}")
        ax.plot(sizes, [p[3] for p in pts], "C1" + style, marker="s", label=f"numpy {case}")
        if all(p[4] for p in pts):
            ax.plot(sizes, [p[4] for p in pts], "C2" + style, marker="^", label=f"torch {case}")
    peak = ctx.peak_for(bp.isa(), ctx.threads)
    ax.axhline(peak, color="k", lw=0.8, label=f"FMA peak ({peak:.0f})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n (square n×n×n, float32)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"GEMM, {ctx.threads} threads, {bp.isa()}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


from training import suite_predict, suite_train  # noqa: E402,F401  (registered by name in run.py)
from memory import suite_memory  # noqa: E402,F401  (registered by name in run.py)
from serve import suite_serve  # noqa: E402,F401  (registered by name in run.py)
from bf16 import suite_bf16  # noqa: E402,F401  (registered by name in run.py)
from many import suite_many  # noqa: E402,F401  (registered by name in run.py)
from grid import suite_grid  # noqa: E402,F401  (registered by name in run.py)
