"""Timing and table helpers shared by the benchmark suites."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

import blockprop as bp

try:  # optional: NumPy's BLAS thread count
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

try:  # optional: PyTorch side by side
    import torch
except ImportError:  # pragma: no cover
    torch = None


def best_time(fn: Callable[[], object], min_time: float = 0.3, min_repeats: int = 3,
              max_repeats: int = 200) -> float:
    """Best wall time of one call: the least noisy statistic on a shared machine."""
    fn()  # warm up: first-touch allocation, thread start-up (again after a thread-count change)
    best = float("inf")
    start = time.perf_counter()
    n = 0
    while n < min_repeats or (time.perf_counter() - start < min_time and n < max_repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        n += 1
    return best


# Pause before each contender is timed, so that the previous library's idle threads have gone to
# sleep: OpenBLAS's keep spinning (sched_yield) for ~2^28 cycles, about 0.1 s, after a call, and on
# 2 cores they took a quarter of the next library's time (measured: blockprop's GEMM NT 1024³
# 55% of peak right after NumPy, 72% after a 0.1 s pause; the same with 0.5 s).
SETTLE_SECONDS = 0.2


def best_times(contenders: Sequence[Tuple[Callable[[], object], Callable[[], ContextManager]]],
               min_time: float = 0.3, rounds: int = 5) -> List[float]:
    """Best wall time of each contender (fn, context factory), timed in interleaved rounds:
    blockprop, NumPy, PyTorch, blockprop, ... On a shared machine whose speed drifts over seconds
    (another tenant on the host), timing one library after the other would compare them at
    different speeds; interleaved, each best comes from the same stretches of time. Each round
    warms its contender up again: changing a library's thread count restarts its threads; and
    each starts after SETTLE_SECONDS, with the machine to itself, as a user's program would."""
    best = [float("inf")] * len(contenders)
    for _ in range(rounds):
        for i, (fn, context) in enumerate(contenders):
            time.sleep(SETTLE_SECONDS)
            with context():
                best[i] = min(best[i], best_time(fn, min_time / rounds, min_repeats=2))
    return best


@contextlib.contextmanager
def numpy_threads(n: int) -> Iterator[None]:
    """Limit NumPy's BLAS to n threads (when threadpoolctl is installed)."""
    if threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


@contextlib.contextmanager
def _thread_count(get: Callable[[], int], set_: Callable[[int], object], n: int) -> Iterator[None]:
    saved = get()
    set_(n)
    try:
        yield
    finally:
        set_(saved)


def bp_threads(n: int) -> ContextManager:
    """blockprop on n threads for the duration."""
    import blockprop as bp
    return _thread_count(bp.get_num_threads, bp.set_num_threads, n)


def torch_threads(n: int) -> ContextManager:
    """PyTorch on n threads for the duration (nothing without PyTorch)."""
    if torch is None:
        return contextlib.nullcontext()
    return _thread_count(torch.get_num_threads, torch.set_num_threads, n)


def fmt(x: Optional[float], spec: str = ".1f") -> str:
    return "-" if x is None or not np.isfinite(x) else format(x, spec)


def print_table(title: str, header: Sequence[str], rows: List[Sequence[str]]) -> None:
    """A GitHub-markdown table, readable in a terminal too."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]
    print(f"\n### {title}\n")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).rjust(w) for c, w in zip(r, widths)) + " |")


# --- the same network in NumPy and PyTorch, and measurements in a fresh process --------------------
def numpy_forward(layers: Sequence[Any], x: np.ndarray) -> np.ndarray:
    """The outputs of a chain of blockprop Dense layers with ReLU between them, in plain NumPy."""
    for k, layer in enumerate(layers):
        x = x @ layer.W.T + layer.b
        if k < len(layers) - 1:
            x = np.maximum(x, 0)
    return x


def torch_copy(layers: Sequence[Any]) -> Any:
    """A ``torch.nn.Sequential`` of Linear layers with blockprop's weights, ReLU between them."""
    mods: List[Any] = []
    for k, layer in enumerate(layers):
        lin = torch.nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.W))
            lin.bias.copy_(torch.from_numpy(layer.b))
        mods += [lin] + ([torch.nn.ReLU()] if k < len(layers) - 1 else [])
    return torch.nn.Sequential(*mods)


def run_child(script: str, spec: Dict[str, Any], what: str) -> Dict[str, Any]:
    """Runs ``script --child JSON(spec)`` in a fresh interpreter that imports this blockprop (so
    that its memory is its own) and returns the JSON of its last line of output."""
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(bp.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, os.path.abspath(script), "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} child {spec} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
