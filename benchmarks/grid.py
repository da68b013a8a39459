"""Suite ``grid``: a hyperparameter search on scikit-learn's digits, three ways, side by side in
one run: ``blockprop.sklearn.MLPGridSearchCV`` (each fold's candidates trained together by
``blockprop.fit_many``), ``sklearn.model_selection.GridSearchCV`` on blockprop's
``MLPClassifier``, and ``GridSearchCV`` on scikit-learn's own ``MLPClassifier``.

The same grid (3 hidden sizes × 2 alphas), the same 3 stratified folds, 30 epochs per fit (the
stopping rule is disabled, n_iter_no_change=30, so that every fit runs all 30 in all three), Adam,
batch 200 ("auto"), then a refit of the best candidate. Timed in interleaved rounds (ours, theirs
on blockprop, theirs on scikit-learn, ours, ...), the best of each with the range of all.
"""
from __future__ import annotations

import os
import platform
import time
import warnings
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from common import SETTLE_SECONDS, bp_threads, fmt, numpy_threads, print_table

GRID = {"hidden_layer_sizes": [(32,), (64,), (128,)], "alpha": [1e-4, 1e-2]}
FOLDS, EPOCHS = 3, 30


def _searches() -> Tuple[List[Tuple[str, Callable[[], Any]]], np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    from blockprop.sklearn import MLPClassifier, MLPGridSearchCV

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    cv = StratifiedKFold(FOLDS)
    common: Dict[str, Any] = dict(max_iter=EPOCHS, n_iter_no_change=EPOCHS, random_state=0)
    ours = MLPClassifier(**common)
    theirs = SkMLPClassifier(**common)
    return [("MLPGridSearchCV (blockprop MLPClassifier)", lambda: MLPGridSearchCV(ours, GRID, cv=cv).fit(X, y)),
            ("GridSearchCV (blockprop MLPClassifier)", lambda: GridSearchCV(ours, GRID, cv=cv).fit(X, y)),
            ("GridSearchCV (sklearn MLPClassifier)", lambda: GridSearchCV(theirs, GRID, cv=cv).fit(X, y))], X, y


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def suite_grid(ctx) -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("\n(scikit-learn is not installed: no grid suite)")
        return
    from sklearn.exceptions import ConvergenceWarning

    contenders, X, y = _searches()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rounds = 2 if ctx.quick else 3
    times: List[List[float]] = [[] for _ in contenders]
    results: List[Any] = [None] * len(contenders)
    with warnings.catch_warnings(), bp_threads(ctx.threads), numpy_threads(ctx.threads):
        warnings.simplefilter("ignore", ConvergenceWarning)  # 30 epochs: none of them converges
        for _ in range(rounds):
            for i, (_, run) in enumerate(contenders):
                time.sleep(SETTLE_SECONDS)
                start = time.perf_counter()
                results[i] = run()
                times[i].append(time.perf_counter() - start)
    best = [min(t) for t in times]
    fits = len(results[0].cv_results_["params"]) * FOLDS + 1
    rows = []
    for (name, _), t, b, r in zip(contenders, times, best, results):
        rows.append([name, fmt(b, ".2f"), f"{min(t):.2f}–{max(t):.2f}", fmt(b / best[0], ".1f") + "×",
                     fmt(fits / b, ".1f"), str(r.best_params_), fmt(r.best_score_, ".4f")])
    print_table(f"Grid search on digits ({len(X)} samples, 64 features): {len(results[0].cv_results_['params'])} "
                f"candidates × {FOLDS} folds + refit, {EPOCHS} epochs each, {ctx.threads} threads, "
                f"{rounds} interleaved rounds",
                ["search", "best s", "range s", "time / MLPGridSearchCV", "fits/s", "best_params_", "best_score_"],
                rows)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nCPU: {_cpu_model()}; 1-minute load average {load_before:.1f} before, {load_after:.1f} after "
          f"(on {os.cpu_count()} CPUs: above that, the contenders shared the cores with other work)")
    a, b = results[0].cv_results_, results[1].cv_results_
    diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in b if k.startswith("split") or k == "mean_test_score")
    same = a["params"] == b["params"] and results[0].best_params_ == results[1].best_params_
    print(f"\nMLPGridSearchCV vs GridSearchCV on the same blockprop estimator: same best_params_: "
          f"{'yes' if same else 'NO'}; max |score difference| over every split: {diff:.2g}")
