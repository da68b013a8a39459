"""Suite ``serve``: one 784-128-10 model answering requests of 64 rows from 1, 2 and 4 Python
threads at once (a threaded web service), in requests per second: blockprop's ``predict``,
NumPy's forward and PyTorch's module in ``inference_mode``, timed in interleaved rounds."""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

import blockprop as bp
from common import (SETTLE_SECONDS, bp_threads, fmt, numpy_forward, numpy_threads, print_table, torch,
                    torch_copy, torch_threads)
from training import mnist_like

SIZES = (784, 128, 10)
ROWS = 64  # one request
CLIENTS = (1, 2, 4)


def _requests_per_second(answer: Callable[[int, int], object], clients: int, seconds: float) -> float:
    """Requests answered per second by ``clients`` threads, each calling ``answer(client, k)``
    for its k-th request for ``seconds`` (all start together; the clock stops at the last one)."""
    counts, errors = [0] * clients, []
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(c: int) -> None:
        try:
            start.wait()
            k = 0
            while time.perf_counter() < deadline[0]:
                answer(c, k)
                k += 1
            counts[c] = k
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    answer(0, 0)  # warm up (first-touch allocation, thread start-up)
    t0 = time.perf_counter()
    deadline[0] = t0 + seconds
    start.wait()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts) / (time.perf_counter() - t0)


def suite_serve(ctx) -> None:
    X, _, source = mnist_like(ROWS * 64)
    batches = [X[i * ROWS:(i + 1) * ROWS] for i in range(64)]
    layers = [bp.nn.Dense(i, o, "relu" if k < len(SIZES) - 2 else None, seed=k)
              for k, (i, o) in enumerate(zip(SIZES[:-1], SIZES[1:]))]
    model = bp.nn.Sequential(*layers)

    def request(c: int, k: int) -> np.ndarray:
        return batches[(c * 17 + k) % len(batches)]

    contenders = [("blockprop", lambda c, k: model.predict(request(c, k)), lambda: bp_threads(ctx.threads)),
                  ("numpy", lambda c, k: numpy_forward(layers, request(c, k)), lambda: numpy_threads(ctx.threads))]
    if torch is not None:
        tm = torch_copy(layers).eval()
        tbatches = [torch.from_numpy(b) for b in batches]

        def torch_answer(c: int, k: int):
            with torch.inference_mode():  # thread-local in PyTorch: entered by each client
                return tm(tbatches[(c * 17 + k) % len(tbatches)])

        contenders.append(("torch", torch_answer, lambda: torch_threads(ctx.threads)))
    seconds, rounds = (0.3, 2) if ctx.quick else (1.0, 3)
    best = {(name, n): 0.0 for name, _, _ in contenders for n in CLIENTS}
    for _ in range(rounds):  # interleaved: each library meets the same drift of a shared host
        for n in CLIENTS:
            for name, answer, context in contenders:
                time.sleep(SETTLE_SECONDS)
                with context():
                    best[name, n] = max(best[name, n], _requests_per_second(answer, n, seconds))
    rows = []
    for n in CLIENTS:
        r_bp, r_np = best["blockprop", n], best["numpy", n]
        r_th = best.get(("torch", n))
        rows.append([n, f"{r_bp:,.0f}", f"{r_np:,.0f}", fmt(r_th, ",.0f"), fmt(r_bp / r_np, ".2f"),
                     fmt(r_bp / r_th if r_th else None, ".2f")])
    print_table(f"serve: {'-'.join(map(str, SIZES))} model, requests of {ROWS} rows ({source}) from "
                f"Python threads, {ctx.threads} library threads (requests/s, best of {rounds} rounds)",
                ["client threads", "blockprop predict", "numpy", "torch (inference_mode)", "vs numpy",
                 "vs torch"], rows)
