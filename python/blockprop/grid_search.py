"""``MLPGridSearchCV``: scikit-learn's ``GridSearchCV`` for blockprop's MLP estimators, with each
fold's candidates trained together by :func:`blockprop.fit_many`.

Every candidate runs the estimator's own ``fit`` (``_BaseMLP._fit_steps``: the same checks,
initialisation, learning-rate rules and stopping rules), one epoch at a time; the candidates of a
fold that are still training and share their data, batch size, loss and shuffling train each
epoch as one ``fit_many`` group, so they share that fold's batches and the first layer's GEMMs;
the folds train in parallel threads.
Each candidate therefore ends with the weights its own ``fit`` gives (``fit_many``'s contract), and
the scores, ranks and ``best_params_`` are those of ``sklearn.model_selection.GridSearchCV`` on the
same estimator, grid and folds.

Needs scikit-learn (imported by :mod:`blockprop.sklearn`, which exports this class).
"""
from __future__ import annotations

import inspect
import numbers
import time
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Generator, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from numpy.ma import MaskedArray
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.utils import indexable
from sklearn.utils.validation import check_is_fitted

from ._runtime import get_num_threads, thread_limit
from .many import fit_many
from .model import History
from .training import EpochOrders

__all__ = ["MLPGridSearchCV"]

_Steps = Generator[Dict[str, Any], History, None]


class _Candidate:
    """One (parameters, fold) fit in progress: the estimator, its fit generator, the epoch it
    asks for next (``request``), the time spent on it so far, and how it ended."""

    def __init__(self, index: int, estimator: Any) -> None:
        self.index, self.estimator = index, estimator
        self.steps: Optional[_Steps] = None
        self.request: Optional[Dict[str, Any]] = None
        self.seconds = 0.0
        self.error: Optional[BaseException] = None

    def advance(self, send: Callable[[], Dict[str, Any]]) -> None:
        """Run the estimator's fit up to its next epoch (or its end, or its error)."""
        start = time.perf_counter()
        try:
            self.request = send()
        except StopIteration:
            self.request = None
        except Exception as e:  # noqa: BLE001 - reported as GridSearchCV does (error_score)
            self.request, self.error = None, e
        self.seconds += time.perf_counter() - start


def _same_data(a: Any, b: Any) -> bool:
    """Whether two candidates train on the same array: the same memory (the usual case, see
    ``_shared_inputs``), else the same values."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.ctypes.data == b.ctypes.data and a.strides == b.strides:
        return True
    return bool(np.array_equal(a, b))


# Request entries that differ from candidate to candidate in one fit_many call: its own model,
# optimizer and schedule; and the epochs, of which the group trains the fewest any member asks for.
_OWN = ("optimizer", "schedule", "epochs")
# fit_many's keywords that a group shares (besides X and y); a request with any other entry (a
# model_.fit argument fit_many does not take) trains alone.
_SHARED = {name for name, p in inspect.signature(fit_many).parameters.items()
           if p.kind is inspect.Parameter.KEYWORD_ONLY} - {"optimizers", "schedules", "epochs"}


def _shared_entries(request: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in request.items() if k not in _OWN}


def _same_request(q: Mapping[str, Any], r: Mapping[str, Any]) -> bool:
    """Whether two epochs' requests read the same batches with the same shared settings."""
    a, b = _shared_entries(q), _shared_entries(r)
    if a.keys() != b.keys():
        return False
    for key, value in a.items():
        other = b[key]
        if isinstance(value, EpochOrders) and isinstance(other, EpochOrders):
            # the epochs trained together: as many as the one asking for the fewest wants
            n = min(len(value), len(other))
            if value[:n] != other[:n]:
                return False
        elif isinstance(value, np.ndarray) or isinstance(other, np.ndarray):
            if not _same_data(value, other):
                return False
        elif type(value) is not type(other) or value != other:
            return False
    return True


def _groups(candidates: Sequence[_Candidate]) -> List[List[_Candidate]]:
    """The candidates that can train together as one ``fit_many`` call: the same model dtype and
    the same shared request entries (inputs and targets, batch size, loss, shuffling...); the
    shuffling seeds are ``fit_many``'s concern (it shares batches among the models that have the
    same). A request with an entry ``fit_many`` does not take trains alone."""
    alone: List[List[_Candidate]] = []
    groups: List[List[_Candidate]] = []
    for c in candidates:
        r = c.request
        assert r is not None
        if not set(r) - {"X", "y", *_OWN} <= _SHARED:
            alone.append([c])
            continue
        for group in groups:
            q = group[0].request
            assert q is not None
            if group[0].estimator.model_.dtype == c.estimator.model_.dtype and _same_request(q, r):
                group.append(c)
                break
        else:
            groups.append([c])
    return groups + alone


def _train_epochs(group: List[_Candidate]) -> None:
    """The next epochs of every candidate of ``group`` in one ``fit_many`` call (a lone candidate:
    its own ``model_.fit``), as many as the one asking for the fewest wants (an estimator's fit
    asks for as many as its stopping and learning-rate rules let run without a look; the shuffles
    of those epochs agree among the group). Then each one's own fit goes on (its rules) up to its
    next request."""
    requests = [c.request for c in group if c.request is not None]
    first = requests[0]
    start = time.perf_counter()
    if len(group) == 1:
        try:
            histories = [group[0].estimator.model_.fit(**first)]
        except Exception as e:  # noqa: BLE001 - reported as GridSearchCV does (error_score)
            group[0].request, group[0].error = None, e
            group[0].seconds += time.perf_counter() - start
            return
    else:
        shared = {k: v for k, v in _shared_entries(first).items() if k not in ("X", "y")}
        epochs = min(r["epochs"] for r in requests)
        if isinstance(shared.get("shuffle"), EpochOrders):
            shared["shuffle"] = shared["shuffle"][:epochs]
        try:
            histories = fit_many([c.estimator.model_ for c in group], first["X"], first["y"],
                                 epochs=epochs,
                                 optimizers=[r["optimizer"] for r in requests],
                                 schedules=[r.get("schedule") for r in requests], **shared)
        except Exception as e:  # noqa: BLE001 - every member's fit failed (error_score), none retried:
            for c in group:     # some may have trained part of the epochs already
                c.request, c.error = None, e
                c.seconds += (time.perf_counter() - start) / len(group)
            return
    share = (time.perf_counter() - start) / len(group)  # the group's time, split evenly
    for c, history in zip(group, histories):
        c.seconds += share
        steps = c.steps
        assert steps is not None
        c.advance(lambda: steps.send(history))


def _param_arrays(candidates: Sequence[Mapping[str, Any]]) -> Dict[str, MaskedArray]:
    """``param_<name>`` of ``cv_results_``: one masked array per parameter, masked where a
    candidate (of another sub-grid) does not set it; numeric dtype when the values allow, else
    object (strings and sequences stay whole), as scikit-learn's."""
    values: Dict[str, Dict[int, Any]] = defaultdict(dict)
    for i, params in enumerate(candidates):
        for name, value in params.items():
            values[f"param_{name}"][i] = value
    out = {}
    for key, by_index in values.items():
        try:
            probe = np.array(list(by_index.values()))
            dtype = probe.dtype if probe.ndim == 1 and probe.dtype.kind != "U" else np.dtype(object)
        except ValueError:  # sequences of different lengths
            dtype = np.dtype(object)
        column = MaskedArray(np.empty(len(candidates), dtype=dtype), mask=True)
        for i, value in by_index.items():
            column[i] = value
        out[key] = column
    return out


def _ranks(means: np.ndarray) -> np.ndarray:
    """1 for the best mean score, ties share the lowest rank, NaN (failed fits) rank last."""
    if np.isnan(means).all():
        return np.ones(len(means), dtype=np.int32)
    filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
    # rank = 1 + how many candidates score strictly better
    return (1 + (filled[None, :] > filled[:, None]).sum(axis=1)).astype(np.int32)


class MLPGridSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Exhaustive search over ``param_grid`` for :class:`blockprop.sklearn.MLPClassifier` /
    :class:`~blockprop.sklearn.MLPRegressor`, scored by cross-validation: the interface and the
    results of ``sklearn.model_selection.GridSearchCV`` (``cv_results_``, ``best_params_``,
    ``best_score_``, ``best_estimator_``, ``best_index_``, ``predict``, ``score``...), trained
    faster: each fold's candidates train together (:func:`blockprop.fit_many`).

    ``cv``: an int (stratified folds for a classifier, as scikit-learn's ``check_cv``), a
    scikit-learn splitter or an iterable of (train, test) index pairs. ``scoring``: None (the
    estimator's ``score``), a scorer name or a callable ``scorer(estimator, X, y)``; one metric.
    ``refit``: retrain the best candidate on the whole data (``best_estimator_``), or a callable
    ``cv_results_ -> best_index_``. ``error_score``: the score of a candidate whose fit raised
    (a ``FitFailedWarning`` says why) or ``"raise"``. ``fit_time`` of a candidate counts its own
    work plus an even share of the epochs it trained together with others.
    """

    def __init__(self, estimator: Any, param_grid: Any, *, scoring: Any = None, refit: Any = True,
                 cv: Any = 5, verbose: int = 0, error_score: Any = np.nan,
                 return_train_score: bool = False):
        self.estimator = estimator
        self.param_grid = param_grid
        self.scoring = scoring
        self.refit = refit
        self.cv = cv
        self.verbose = verbose
        self.error_score = error_score
        self.return_train_score = return_train_score

    # --- checks ------------------------------------------------------------------------------
    def _check(self) -> List[Dict[str, Any]]:
        """The candidates, after checking everything that can be checked before training."""
        est = self.estimator
        if not callable(getattr(est, "_fit_steps", None)) or not hasattr(est, "get_params"):
            raise TypeError("MLPGridSearchCV searches blockprop.sklearn.MLPClassifier or MLPRegressor, "
                            f"got {type(est).__name__}; use sklearn.model_selection.GridSearchCV "
                            "for other estimators")
        grid = self.param_grid
        if isinstance(grid, Mapping):
            grid = [grid]
        if not isinstance(grid, (list, tuple)) or not all(isinstance(g, Mapping) for g in grid):
            raise TypeError(f"param_grid must be a dict or a list of dicts, got {self.param_grid!r}")
        if not grid:
            raise ValueError("param_grid is empty: give at least one dict of parameter lists")
        valid = est.get_params(deep=False)
        for g in grid:
            for name, values in g.items():
                if name not in valid:
                    raise ValueError(f"param_grid: {type(est).__name__} has no parameter {name!r}; "
                                     f"valid parameters: {sorted(valid)}")
                if isinstance(values, (str, bytes)) or not isinstance(values, Iterable) \
                        or isinstance(values, Mapping):
                    raise TypeError(f"param_grid[{name!r}] must be a list of values, got {values!r}")
                if len(list(values)) == 0:
                    raise ValueError(f"param_grid[{name!r}] is empty: give at least one value")
        candidates = list(ParameterGrid(list(grid)))
        if not candidates:
            raise ValueError("param_grid is empty: give at least one dict of parameter lists")
        if not (self.error_score == "raise" or isinstance(self.error_score, numbers.Number)):
            raise ValueError(f"error_score must be 'raise' or a number, got {self.error_score!r}")
        if isinstance(self.scoring, (list, tuple, set, dict)):
            raise ValueError("MLPGridSearchCV takes one metric: scoring must be None, a scorer name or "
                             f"a callable, got {self.scoring!r}")
        if not (isinstance(self.refit, bool) or callable(self.refit)):
            raise TypeError(f"refit must be True, False or a callable, got {self.refit!r}")
        for params in candidates:  # set_params refuses a bad value only at fit: checked now
            clone(est).set_params(**params)._check_params()
        return candidates

    # --- the search --------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, groups: Any = None) -> "MLPGridSearchCV":
        """Score every candidate of ``param_grid`` on every fold, then (``refit``) train the best
        one on all of ``(X, y)``."""
        candidates = self._check()
        X, y, groups = indexable(X, y, groups)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y, groups))
        if not splits:
            raise ValueError(f"cv={self.cv!r} gives no folds")
        scorer = check_scoring(self.estimator, scoring=self.scoring)
        n_c, n_s = len(candidates), len(splits)
        test = np.full((n_c, n_s), np.nan)
        train = np.full((n_c, n_s), np.nan)
        fit_time, score_time = np.zeros((n_c, n_s)), np.zeros((n_c, n_s))
        if self.verbose:
            print(f"Fitting {n_s} folds for each of {n_c} candidates, totalling {n_c * n_s} fits")
        first_error: Optional[BaseException] = None
        failures = 0
        data = _shared_inputs(X, {np.dtype(p.get("dtype", self.estimator.dtype)).name for p in candidates})
        for s, fold in enumerate(self._fit_folds(candidates, data, y, splits)):
            tr, te = splits[s]
            X_te, y_te = _take(X, te), _take(y, te)
            y_tr = _take(y, tr)
            for c in fold:
                fit_time[c.index, s] = c.seconds
                if c.error is not None:
                    first_error, failures = first_error or c.error, failures + 1
                    if self.error_score == "raise":
                        raise c.error
                    warnings.warn(f"MLPGridSearchCV: fitting candidate {c.index} "
                                  f"({candidates[c.index]}) on fold {s} failed, its score is "
                                  f"error_score={self.error_score!r}: {type(c.error).__name__}: {c.error}",
                                  FitFailedWarning, stacklevel=2)
                    test[c.index, s] = train[c.index, s] = float(self.error_score)
                    continue
                start = time.perf_counter()
                test[c.index, s] = scorer(c.estimator, X_te, y_te)
                score_time[c.index, s] = time.perf_counter() - start
                if self.return_train_score:
                    train[c.index, s] = scorer(c.estimator, _take(X, tr), y_tr)
        if failures == n_c * n_s:
            raise ValueError(f"MLPGridSearchCV: all {failures} fits failed; the first error: "
                             f"{type(first_error).__name__}: {first_error}") from first_error
        self._store(candidates, test, train, fit_time, score_time, n_s)
        self.scorer_ = scorer
        self.n_splits_ = n_s
        self.multimetric_ = False
        if self.refit is not False:
            self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_)
            start = time.perf_counter()
            self.best_estimator_.fit(X, y)
            self.refit_time_ = time.perf_counter() - start
            if hasattr(self.best_estimator_, "classes_"):
                self.classes_ = self.best_estimator_.classes_
            self.n_features_in_ = self.best_estimator_.n_features_in_
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        return self

    def _fit_folds(self, candidates: List[Dict[str, Any]], X: Any, y: Any,
                   splits: List[Tuple[Any, Any]]) -> List[List[_Candidate]]:
        """Every fold's candidates trained, the folds in parallel threads (two, or up to six
        while blockprop runs fewer threads): the C++ loop releases the GIL, so one fold's epochs run while
        another's Python work (the estimators' checks and rules) goes on. The results are those
        of one fold after the other (each fold's models are its own; the kernels give the same
        bits on any thread count). Ctrl-C: the running folds finish, the others do not start."""
        # Two folds at a time overlap one's Python work with another's C++ loop; a third helps
        # only while the kernels run on so few threads that they leave cores idle (2 threads:
        # 0.40 s against 0.35 s on the digits grid), and on many threads would oversubscribe.
        threads = max(1, get_num_threads())
        workers = min(len(splits), max(2, 6 // threads))
        # Each fold's kernels on its share of the threads: folds sharing the one thread pool ran
        # alone whenever another held it, while its helpers spun for work (the digits grid of the
        # benchmark, 2 threads: 0.52 s → 0.48–0.51 s).
        share = max(1, threads // workers)

        def run(split: Tuple[Any, Any]) -> List[_Candidate]:
            with thread_limit(share):
                return self._fit_fold(candidates, _take(X, split[0]), _take(y, split[0]))

        if workers <= 1:
            return [run(split) for split in splits]
        pool = ThreadPoolExecutor(workers, thread_name_prefix="MLPGridSearchCV")
        try:
            return list(pool.map(run, splits))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _fit_fold(self, candidates: List[Dict[str, Any]], X: Any, y: Any) -> List[_Candidate]:
        """Every candidate's fit on one fold, the epochs of those that can share them trained
        together; returns them finished (or failed)."""
        fold = [_Candidate(i, clone(self.estimator).set_params(**params))
                for i, params in enumerate(candidates)]
        for c in fold:
            est = c.estimator

            def begin(est: Any = est, c: _Candidate = c) -> Dict[str, Any]:
                c.steps = est._fit_steps(X, y, incremental=False)
                return next(c.steps)

            c.advance(begin)
        while True:
            active = [c for c in fold if c.request is not None]
            if not active:
                return fold
            for group in _groups(active):
                _train_epochs(group)
                failed = next((c.error for c in group if c.error is not None), None)
                if failed is not None and self.error_score == "raise":
                    raise failed

    def _store(self, candidates: List[Dict[str, Any]], test: np.ndarray, train: np.ndarray,
               fit_time: np.ndarray, score_time: np.ndarray, n_splits: int) -> None:
        results: Dict[str, Any] = {
            "mean_fit_time": fit_time.mean(axis=1), "std_fit_time": fit_time.std(axis=1),
            "mean_score_time": score_time.mean(axis=1), "std_score_time": score_time.std(axis=1),
        }
        results.update(_param_arrays(candidates))
        results["params"] = candidates
        sets = [("test", test)] + ([("train", train)] if self.return_train_score else [])
        for kind, scores in sets:
            for s in range(n_splits):
                results[f"split{s}_{kind}_score"] = scores[:, s]
            results[f"mean_{kind}_score"] = scores.mean(axis=1)
            results[f"std_{kind}_score"] = scores.std(axis=1)
            if kind == "test":
                results["rank_test_score"] = _ranks(results["mean_test_score"])
        if np.isnan(test).any():
            failed = int(np.isnan(results["mean_test_score"]).sum())
            warnings.warn(f"MLPGridSearchCV: {failed} of the {len(candidates)} candidates have a NaN "
                          "mean test score", UserWarning, stacklevel=3)
        self.cv_results_ = results
        if callable(self.refit):
            index = self.refit(results)
            if isinstance(index, bool) or not isinstance(index, numbers.Integral) \
                    or not 0 <= int(index) < len(candidates):
                raise ValueError(f"refit returned {index!r}, not a candidate index in [0, {len(candidates)})")
            self.best_index_ = int(index)
        else:
            self.best_index_ = int(results["rank_test_score"].argmin())
            self.best_score_ = float(results["mean_test_score"][self.best_index_])
        self.best_params_ = candidates[self.best_index_]

    # --- the refitted best estimator ---------------------------------------------------------
    def _best(self, what: str) -> Any:
        check_is_fitted(self, "cv_results_")
        if self.refit is False:
            raise AttributeError(f"MLPGridSearchCV.{what} needs refit=True (no best_estimator_ was trained)")
        return self.best_estimator_

    def predict(self, X: Any) -> np.ndarray:
        """``best_estimator_.predict(X)``."""
        return self._best("predict").predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``best_estimator_.predict_proba(X)`` (classifiers)."""
        return self._best("predict_proba").predict_proba(X)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``best_estimator_.predict_log_proba(X)`` (classifiers)."""
        return self._best("predict_log_proba").predict_log_proba(X)

    def score(self, X: Any, y: Any = None) -> float:
        """The search's scorer on ``(X, y)`` with ``best_estimator_``."""
        return float(self.scorer_(self._best("score"), X, y))

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "cv_results_")

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.target_tags = inner.target_tags
        tags.input_tags = inner.input_tags
        return tags


def _shared_inputs(X: Any, dtypes: set) -> Any:
    """``X`` converted once to the candidates' dtype when it is a plain numeric array and they
    all train in one dtype: every candidate's fit then takes the fold's array as it is (the same
    values its own conversion gives), so the candidates share it in memory and in ``fit_many``.
    Anything else (DataFrames, lists, mixed dtypes) as given: each estimator converts it."""
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype.kind not in "biuf" or len(dtypes) != 1:
        return X
    if X.dtype.kind != "f":  # as the estimators' validate_data: float64 first
        X = X.astype(np.float64)
    return X.astype(next(iter(dtypes)), copy=False)


def _take(data: Any, rows: np.ndarray) -> Any:
    if data is None:
        return None
    if hasattr(data, "iloc"):
        return data.iloc[rows]
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data[rows])
    return np.asarray(data)[rows]  # a list
