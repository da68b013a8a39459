"""blockprop.sklearn.MLPGridSearchCV against sklearn.model_selection.GridSearchCV: the same
scores, ranks and best_params_ on the same estimator, grid and folds; each fold's candidates
train together through blockprop.fit_many; bad input is refused before any training."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning, NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import (GridSearchCV, GroupKFold, KFold, ShuffleSplit,  # noqa: E402
                                     StratifiedKFold)
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402

from blockprop import grid_search  # noqa: E402
from blockprop.sklearn import MLPClassifier, MLPGridSearchCV, MLPRegressor  # noqa: E402

TOL = 1e-6


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:360] / 16.0, y[:360]


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=150, n_features=6, noise=0.1, random_state=0)
    return X, y / y.std()


def _both(estimator, grid, X, y, groups=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPGridSearchCV(estimator, grid, **kw).fit(X, y, groups=groups)
        theirs = GridSearchCV(estimator, grid, **kw).fit(X, y, groups=groups)
    return ours, theirs


def _assert_same_results(ours, theirs):
    a, b = ours.cv_results_, theirs.cv_results_
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    assert a["params"] == b["params"]
    for key in b:
        if key == "params" or key.endswith("_time"):
            continue
        va, vb = a[key], b[key]
        if key.startswith("param_"):
            assert va.dtype == vb.dtype, (key, va.dtype, vb.dtype)
            assert list(np.ma.getmaskarray(va)) == list(np.ma.getmaskarray(vb)), key
            assert [x for x in va.compressed()] == [x for x in vb.compressed()], key
            continue
        va, vb = np.asarray(va, dtype=float), np.asarray(vb, dtype=float)
        assert np.array_equal(np.isnan(va), np.isnan(vb)), (key, va, vb)
        ok = ~np.isnan(vb)
        err = float(np.max(np.abs(va[ok] - vb[ok]), initial=0.0))
        assert err <= TOL, f"{key}: max error {err:.3g} (ours {va}, GridSearchCV {vb})"
    for key in ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"):
        assert a[key].shape == b[key].shape and np.all(a[key] >= 0), key
    assert ours.best_params_ == theirs.best_params_
    assert ours.best_index_ == theirs.best_index_
    assert ours.best_score_ == pytest.approx(theirs.best_score_, abs=TOL)
    assert ours.n_splits_ == theirs.n_splits_


def test_classifier_matches_gridsearchcv(digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=8, random_state=0)
    grid = {"hidden_layer_sizes": [(8,), (16,), (12, 8)], "alpha": [1e-4, 1e-1]}
    ours, theirs = _both(est, grid, X, y, cv=3)
    _assert_same_results(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=TOL)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=TOL)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert ours.best_estimator_.get_params() == theirs.best_estimator_.get_params()


def test_regressor_matches_gridsearchcv_with_a_shuffled_kfold(regression):
    X, y = regression
    est = MLPRegressor(hidden_layer_sizes=(8,), max_iter=10, learning_rate_init=0.01, random_state=1)
    grid = {"learning_rate_init": [0.003, 0.01], "activation": ["relu", "tanh"]}
    ours, theirs = _both(est, grid, X, y, cv=KFold(3, shuffle=True, random_state=0))
    _assert_same_results(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=TOL)


@pytest.mark.parametrize("cv", [StratifiedKFold(2, shuffle=True, random_state=3), ShuffleSplit(3, test_size=0.3, random_state=0),
                                "pairs", "groups"], ids=["stratified", "shufflesplit", "pairs", "groupkfold"])
def test_splitters_match_gridsearchcv(digits, cv):
    X, y = digits
    groups = None
    if cv == "pairs":  # an iterable of (train, test) index arrays
        rows = np.arange(len(X))
        cv = [(rows[rows % 3 != k], rows[rows % 3 == k]) for k in range(3)]
    elif cv == "groups":
        groups, cv = np.arange(len(X)) % 4, GroupKFold(4)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, random_state=0)
    ours, theirs = _both(est, {"alpha": [1e-4, 1e-2]}, X, y, groups=groups, cv=cv)
    _assert_same_results(ours, theirs)


def test_list_of_grids_stopping_rules_and_scoring_match(digits):
    """Sub-grids with different parameters (masked param_ columns), candidates that stop early
    (validation or tolerance), SGD learning-rate rules and a probability scorer."""
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=12, random_state=2, n_iter_no_change=2, tol=1e-2)
    grid = [{"solver": ["sgd"], "learning_rate": ["invscaling", "adaptive"], "learning_rate_init": [0.05]},
            {"early_stopping": [True], "validation_fraction": [0.2], "beta_1": [0.8, 0.9]}]
    ours, theirs = _both(est, grid, X, y, cv=3, scoring="neg_log_loss", return_train_score=True)
    _assert_same_results(ours, theirs)
    assert "mean_train_score" in ours.cv_results_


def test_a_folds_candidates_that_read_the_same_batches_train_as_one_fit_many_group(digits, monkeypatch):
    """The estimators shuffle in scikit-learn's order, from the random_state's stream after the
    initial weights: candidates of one architecture (here: the two alphas) read the same batches.
    An estimator asks for all 3 epochs at once (its stopping rule cannot act before the 11th)."""
    X, y = digits
    calls = []
    real = grid_search.fit_many

    def spy(models, *args, **kwargs):
        calls.append((len(models), kwargs["epochs"]))
        assert len({tuple(m._output_widths()) for m in models}) == 1
        return real(models, *args, **kwargs)

    monkeypatch.setattr(grid_search, "fit_many", spy)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPGridSearchCV(est, {"hidden_layer_sizes": [(8,), (16,), (4, 4)], "alpha": [1e-4, 1e-2]},
                        cv=2).fit(X, y)
    assert calls == [(2, 3)] * (2 * 3), calls  # 2 folds × 3 architectures, 3 epochs a call


class _WithDiagnostics(MLPClassifier):
    """An estimator whose epochs ask model_.fit for an argument fit_many does not take."""

    def _fit_steps(self, X, y, incremental, *args, **kwargs):
        steps = super()._fit_steps(X, y, incremental, *args, **kwargs)
        try:
            request = next(steps)
            while True:
                request = steps.send((yield dict(request, diagnostics=False)))
        except StopIteration:
            return


def test_epochs_that_fit_many_cannot_take_train_alone(digits, monkeypatch):
    X, y = digits
    monkeypatch.setattr(grid_search, "fit_many", lambda *a, **k: pytest.fail("fit_many was called"))
    est = _WithDiagnostics(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    ours, theirs = _both(est, {"alpha": [1e-4, 1e-2]}, X, y, cv=2)
    _assert_same_results(ours, theirs)


def test_refit_false_and_callable(digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = MLPGridSearchCV(est, {"alpha": [1e-4, 1e-2]}, cv=2, refit=False).fit(X, y)
        assert not hasattr(search, "best_estimator_") and search.best_params_ in search.cv_results_["params"]
        with pytest.raises(AttributeError, match="refit"):
            search.predict(X)
        picked = MLPGridSearchCV(est, {"alpha": [1e-4, 1e-2]}, cv=2, refit=lambda r: 1).fit(X, y)
    assert picked.best_index_ == 1 and picked.best_params_ == {"alpha": 1e-2}
    assert picked.best_estimator_.alpha == 1e-2


# The diverging candidate's fit warns of the NaN loss (as fit does) before the estimator raises.
@pytest.mark.filterwarnings("ignore::blockprop.diagnostics.TrainingDiagnosticWarning")
def test_failed_fits_score_error_score_as_gridsearchcv(digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, solver="sgd", momentum=0.0)
    grid = {"learning_rate_init": [0.01, 1e12]}  # the second diverges: the estimator raises
    with pytest.warns(FitFailedWarning), pytest.warns(UserWarning, match="non-finite"), \
            pytest.warns(UserWarning, match="1 of the 2 candidates have a NaN mean test score"):
        ours, theirs = _both(est, grid, X, y, cv=2)  # each search warns of its NaN score
    _assert_same_results(ours, theirs)
    assert np.isnan(ours.cv_results_["mean_test_score"][1])
    with pytest.raises(ValueError, match="training loss"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            MLPGridSearchCV(est, grid, cv=2, error_score="raise").fit(X, y)


@pytest.mark.parametrize("grid, error, match", [
    ({}, None, None),  # one candidate, the estimator's own parameters: allowed, as in scikit-learn
    ([], ValueError, "param_grid is empty"),
    ({"alpha": []}, ValueError, r"param_grid\['alpha'\] is empty"),
    ({"alhpa": [0.1]}, ValueError, "no parameter 'alhpa'"),
    ({"alpha": 0.1}, TypeError, "list of values"),
    ({"solver": ["lbfgs"]}, ValueError, "solver must be one of"),
    ("alpha", TypeError, "dict or a list of dicts"),
])
def test_bad_grids_are_refused_before_training(digits, grid, error, match, monkeypatch):
    X, y = digits
    trained = []
    monkeypatch.setattr(grid_search, "fit_many", lambda *a, **k: trained.append(1))
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    search = MLPGridSearchCV(est, grid, cv=2)
    if error is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            assert search.fit(X, y).best_params_ == {}
        return
    with pytest.raises(error, match=match):
        search.fit(X, y)
    assert not trained


@pytest.mark.parametrize("estimator", [SkMLPClassifier(), LogisticRegression()])
def test_other_estimators_are_refused(digits, estimator):
    X, y = digits
    with pytest.raises(TypeError, match="MLPGridSearchCV searches blockprop.sklearn"):
        MLPGridSearchCV(estimator, {"alpha": [0.1]}).fit(X, y)


def test_multimetric_scoring_is_refused(digits):
    X, y = digits
    with pytest.raises(ValueError, match="one metric"):
        MLPGridSearchCV(MLPClassifier(), {"alpha": [0.1]}, scoring=["accuracy", "f1_macro"]).fit(X, y)


def test_unfitted_search_refuses_predict(digits):
    with pytest.raises(NotFittedError):
        MLPGridSearchCV(MLPClassifier(), {"alpha": [0.1]}).predict(digits[0])


def test_a_failing_fit_many_call_fails_its_candidates(digits, monkeypatch):
    X, y = digits

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(grid_search, "fit_many", broken)
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="all 4 fits failed; the first error: RuntimeError: boom"):
        with pytest.warns(FitFailedWarning, match="boom"):
            MLPGridSearchCV(est, {"alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
    with pytest.raises(RuntimeError, match="boom"):
        MLPGridSearchCV(est, {"alpha": [1e-4, 1e-2]}, cv=2, error_score="raise").fit(X, y)


def test_candidates_with_class_weights_still_train_as_one_group(digits, monkeypatch):
    """class_weight makes every epoch's request carry sample weights (the same for a fold's
    candidates): fit_many takes them, so the candidates still share batches, and the results are
    GridSearchCV's."""
    X, y = digits
    calls = []
    real = grid_search.fit_many

    def spy(models, *args, **kwargs):
        calls.append((len(models), kwargs.get("sample_weight") is not None))
        return real(models, *args, **kwargs)

    monkeypatch.setattr(grid_search, "fit_many", spy)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, random_state=0, class_weight="balanced")
    ours, theirs = _both(est, {"alpha": [1e-4, 1e-2, 1e-1]}, X[:400], y[:400], cv=2)
    _assert_same_results(ours, theirs)
    assert calls and all(c == (3, True) for c in calls), calls
