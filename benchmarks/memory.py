"""Memory suite: peak resident memory of ``model.fit`` against the budget "parameters × the
optimizer's copies + one batch's activations × a small constant + the data set".

Every row runs in a fresh interpreter (``python memory.py --child SPEC``) that imports only NumPy
and blockprop (not PyTorch), so nothing left over from other suites or rows is counted:

1. warm-up: a throw-away model of the same layers, batch size and optimizer is fitted on 2 batches
   of random data, so one-time costs (imports, the thread pool, the per-thread GEMM packing
   buffers, tqdm) are paid before the baseline; then ``gc.collect()`` and ``malloc_trim(0)``.
2. baseline = VmRSS. The data set is made (random, MNIST-shaped: 30,000 × 784 in [0, 1), 10,000
   with --quick; labels int64), then the model and the optimizer; ``malloc_trim(0)`` again, so
   freed heap memory cannot be reused unseen by ``fit``.
3. the peak RSS is reset (``"5"`` written to ``/proc/self/clear_refs``; where that is refused, a
   thread samples VmRSS every millisecond instead), tracemalloc starts (NumPy reports its data
   buffers to it; the C++ core's ``std::vector`` buffers are not traced), and
   ``model.fit(X, y, epochs=1, batch_size=B, optimizer=opt, verbose=0)`` runs.

Reported per row (MiB = 2²⁰ bytes):

* budget = P + A + D with
  P = parameters × itemsize × K, K = 3 for SGD with momentum (weights, gradients, velocity) and
  K = 4 for Adam (weights, gradients, m, v);
  A = 4 × batch × Σ layer widths (input included) × itemsize;
  D = the data set as the caller passes it: X.nbytes + y.nbytes.
* footprint = peak VmRSS during fit − baseline: data set, model and everything fit adds.
* growth = peak VmRSS during fit − VmRSS just before fit: what fit itself allocates.
* NumPy peak = tracemalloc's peak during fit (optimizer state, shuffle order, any copy of X).
* excess = footprint − budget; within: footprint ≤ budget.
* X copied: whether the array fit trains on shares no memory with the caller's X (``as_inputs``
  is wrapped to see it); path: whether the C++ batch loop (``_fastpath``) ran.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, Dict, List

import numpy as np

MiB = float(1 << 20)
N_FEATURES, N_CLASSES = 784, 10


# --- the child: one measurement in a fresh interpreter --------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _rss() -> int:
    return _status_kib("VmRSS") * 1024


def _trim() -> None:
    """Give freed heap memory back to the kernel, so that reusing it would show as RSS growth."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _Sampler:
    """Fallback when the peak cannot be reset: the highest VmRSS seen every millisecond (fit's C++
    loop releases the GIL, so this thread runs during it)."""

    def __init__(self) -> None:
        import threading
        self.peak, self._stop = _rss(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, _rss())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _rss())


def _child(spec: Dict[str, Any]) -> Dict[str, Any]:
    import tracemalloc

    import blockprop as bp
    from blockprop import _fastpath
    from blockprop import training as training_module

    bp.set_num_threads(spec["threads"])
    sizes, batch, n = spec["sizes"], spec["batch"], spec["n"]
    xdtype = np.dtype(spec["x_dtype"])

    def make_model():
        return bp.nn.Sequential(*[bp.nn.Dense(i, o, "relu" if k < len(sizes) - 2 else None, seed=k)
                                  for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))])

    def make_optimizer():
        return bp.optim.Adam(1e-3) if spec["optimizer"] == "adam" else bp.optim.SGD(0.05, momentum=0.9)

    rng = np.random.default_rng(0)
    warm = make_model()
    warm.fit(rng.random((2 * batch, sizes[0])).astype(xdtype), rng.integers(0, sizes[-1], 2 * batch),
             epochs=1, batch_size=batch, optimizer=make_optimizer(), verbose=0, seed=0)
    del warm
    _trim()
    baseline = _rss()

    # random() draws float64 natively and float32 natively: no temporary of the other dtype
    X = rng.random((n, sizes[0]), dtype=np.float32 if xdtype == np.float32 else np.float64)
    y = rng.integers(0, sizes[-1], n)  # int64, what CrossEntropyLoss trains on: no conversion
    after_data = _rss()
    model, opt = make_model(), make_optimizer()
    _trim()
    before_fit = _rss()

    seen: Dict[str, Any] = {"x_copied": None, "fast": False}
    as_inputs, train_batches = training_module.as_inputs, _fastpath.train_batches

    def watched_as_inputs(model_: Any, X_: Any, name: str = "X", **kwargs: Any) -> np.ndarray:
        out = as_inputs(model_, X_, name, **kwargs)
        if name == "X":
            seen["x_copied"] = not (isinstance(X_, np.ndarray) and np.may_share_memory(out, X_))
        return out

    def watched_train_batches(*args: Any, **kwargs: Any) -> Any:
        seen["fast"] = True
        return train_batches(*args, **kwargs)

    training_module.as_inputs = watched_as_inputs
    _fastpath.train_batches = watched_train_batches

    reset = _reset_hwm()
    sampler = None if reset else _Sampler()
    tracemalloc.start()
    t0 = time.perf_counter()
    model.fit(X, y, epochs=1, batch_size=batch, optimizer=opt, verbose=0, seed=0)
    seconds = time.perf_counter() - t0
    numpy_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = _status_kib("VmHWM") * 1024 if reset else sampler.stop()  # type: ignore[union-attr]

    return {"baseline": baseline, "data": after_data - baseline, "before_fit": before_fit - baseline,
            "peak": peak - baseline, "growth": peak - before_fit, "numpy_peak": numpy_peak,
            "x_bytes": X.nbytes, "y_bytes": y.nbytes, "itemsize": np.dtype(model.dtype).itemsize,
            "params": sum(p.data.size for p in model.parameters().values()),
            "x_copied": seen["x_copied"], "fast": seen["fast"], "seconds": seconds,
            "peak_method": "VmHWM after clear_refs" if reset else "VmRSS sampled every 1 ms"}


# --- the suite -------------------------------------------------------------------------------------
def _run_child(spec: Dict[str, Any]) -> Dict[str, Any]:
    from common import run_child  # the parent only: the child imports nothing but NumPy first
    return run_child(__file__, spec, "memory")


def _mib(b: float) -> str:
    return f"{b / MiB:.1f}"


def suite_memory(ctx) -> None:
    from common import print_table

    n = 10000 if ctx.quick else 30000  # half of MNIST's training set: the suite stays under a minute
    small, large = [784, 128, 10], [784, 1024, 1024, 10]
    configs = [(small, 128, "sgd", "float32"), (small, 128, "adam", "float32"),
               (small, 32, "sgd", "float32"), (small, 32, "adam", "float32"),
               (large, 256, "sgd", "float32"), (large, 256, "adam", "float32"),
               (small, 128, "sgd", "float64"), (small, 128, "adam", "float64")]
    rows: List[List[str]] = []
    methods = set()
    for sizes, batch, opt, xdtype in configs:
        r = _run_child({"sizes": sizes, "batch": batch, "optimizer": opt, "x_dtype": xdtype,
                        "n": n, "threads": ctx.threads})
        methods.add(r["peak_method"])
        copies = 4 if opt == "adam" else 3
        P = r["params"] * r["itemsize"] * copies
        A = 4 * batch * sum(sizes) * r["itemsize"]
        D = r["x_bytes"] + r["y_bytes"]
        budget = P + A + D
        ratio = r["peak"] / budget
        label = "-".join(map(str, sizes)) + f" b{batch}"
        rows.append([label, {"sgd": "SGD m=0.9", "adam": "Adam"}[opt],
                     xdtype, f"{n:,}",
                     f"{r['params']:,}", _mib(P), _mib(A), _mib(D), _mib(budget),
                     _mib(r["before_fit"]), _mib(r["growth"]), _mib(r["peak"]), _mib(r["numpy_peak"]),
                     _mib(r["peak"] - budget), f"{ratio:.3f}", "yes" if ratio <= 1 else "NO",
                     {True: "yes", False: "no", None: "?"}[r["x_copied"]],
                     "C++" if r["fast"] else "Python", f"{r['seconds']:.1f}"])
    print_table(f"fit memory, one epoch, fresh process per row, {ctx.threads} threads (MiB; peak: "
                f"{', '.join(sorted(methods))})",
                ["config", "optimizer", "X dtype", "n", "params", "P", "A", "D", "budget",
                 "data+model", "growth in fit", "footprint", "NumPy peak", "excess", "footprint/budget",
                 "within", "X copied", "path", "fit s"], rows)
    print("\nP = params × itemsize × K (K = 3 SGD+momentum: weights, grads, velocity; 4 Adam: "
          "weights, grads, m, v); A = 4 × batch × Σ widths × itemsize; D = X.nbytes + y.nbytes as "
          "passed.\nbudget = P + A + D. footprint = peak RSS in fit − RSS before data and model "
          "(after a warm-up fit); growth in fit = peak RSS − RSS just before fit; NumPy peak = "
          "tracemalloc peak during fit; excess = footprint − budget.")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(json.loads(sys.argv[2]))))
    else:
        sys.exit("run through benchmarks/run.py --suite memory")
