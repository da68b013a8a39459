"""blockprop.sklearn: scikit-learn's own estimator checks, Pipeline / GridSearchCV, the fitted
attributes (sklearn's (in, out) layout), partial_fit / warm_start / early stopping, and training
that is exactly ``Sequential.fit``."""
from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install blockprop[sklearn])")

from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import blockprop  # noqa: E402
from blockprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Short fits in these tests stop at max_iter on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Checks left out of the run, with why. This one skips itself: it tests decision_function, which
# these estimators (like scikit-learn's MLPClassifier) do not have.
NOT_APPLICABLE = {"check_classifiers_multilabel_output_format_decision_function"}
# Checks run on the estimator in float64: this one compares weighted fits with fits on repeated or
# removed rows to rtol 1e-7, below float32's rounding (the default dtype differs by ~1e-5).
FLOAT64_CHECKS = {"check_sample_weight_equivalence_on_dense_data"}


def _estimator_checks():
    decorator = parametrize_with_checks([MLPClassifier(), MLPRegressor()])
    mark = decorator.mark
    argnames, values = mark.args[0], list(mark.args[1])
    return argnames, [v for v in values if _name(v) not in NOT_APPLICABLE], mark.kwargs


def _values(param):
    return param.values if hasattr(param, "values") else param  # a pytest.param or a plain tuple


def _name(param):
    check = _values(param)[1]
    return getattr(check, "func", check).__name__


_ARGNAMES, _CHECKS, _KW = _estimator_checks()


@pytest.mark.parametrize(_ARGNAMES, _CHECKS, **_KW)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # check_array_api_input runs only with array-API dispatch allowed; blockprop declares no array
    # API support, so the check verifies that NumPy input gives the same results with it enabled.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    if getattr(check, "func", check).__name__ in FLOAT64_CHECKS:
        estimator.set_params(dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_estimator_checks_cover_both_estimators():
    names = {type(_values(p)[0]).__name__ for p in _CHECKS}
    assert names == {"MLPClassifier", "MLPRegressor"}
    assert len(_CHECKS) > 90, len(_CHECKS)


# --- data ----------------------------------------------------------------------------------------
def _classification(n=240, classes=3, seed=0):
    X, y = make_classification(n_samples=n, n_features=8, n_informative=5, n_classes=classes,
                               n_clusters_per_class=1, class_sep=2.0, random_state=seed)
    return StandardScaler().fit_transform(X), y


def _regression(n=200, targets=1, seed=0):
    X, y = make_regression(n_samples=n, n_features=6, n_informative=4, n_targets=targets, noise=1.0,
                           random_state=seed)
    return StandardScaler().fit_transform(X), y / np.std(y)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- behaviour -----------------------------------------------------------------------------------
def test_import_blockprop_does_not_import_sklearn_or_torch():
    code = "import sys, blockprop; print(sorted(m for m in ('sklearn', 'torch', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_string_labels_probabilities_and_score():
    X, y = _classification()
    names = np.array(["ant", "bee", "cat"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, names)
    assert list(clf.classes_) == ["ant", "bee", "cat"]
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    pred = clf.predict(X)
    assert pred.dtype == names.dtype
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, names) > 0.9, clf.score(X, names)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 3 and clf.n_layers_ == 3
    assert clf.n_features_in_ == 8 and 1 <= clf.n_iter_ <= 300 and len(clf.loss_curve_) == clf.n_iter_
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 4, clf.loss_curve_[::20]


def test_coefs_are_sklearn_layout_views_of_blockprop_weights():
    X, y = _classification()
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), activation="tanh", max_iter=20,
                        random_state=1).fit(X, y)
    dense = [layer for layer in clf.model_.layers if isinstance(layer, blockprop.Dense)]
    assert [c.shape for c in clf.coefs_] == [(8, 16), (16, 8), (8, 3)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (8,), (3,)]
    for c, b, d in zip(clf.coefs_, clf.intercepts_, dense):
        assert d.W.shape == c.shape[::-1]  # blockprop: (out, in)
        np.testing.assert_array_equal(c, d.W.T)
        assert np.shares_memory(c, d.W) and np.shares_memory(b, d.b)
    # scikit-learn's forward pass written with coefs_ / intercepts_ gives predict_proba.
    h = X
    for c, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        h = np.tanh(h @ c.astype(np.float64) + b)
    want = _softmax(h @ clf.coefs_[-1].astype(np.float64) + clf.intercepts_[-1])
    np.testing.assert_allclose(clf.predict_proba(X), want, rtol=1e-4, atol=1e-5)


def test_weights_from_sklearns_mlp_give_sklearns_predictions():
    from sklearn.neural_network import MLPClassifier as SkMLP
    X, y = _classification()
    theirs = SkMLP(hidden_layer_sizes=(12,), max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours = MLPClassifier(hidden_layer_sizes=(12,), max_iter=1, dtype="float64").fit(X, y)
    ours.coefs_, ours.intercepts_ = theirs.coefs_, theirs.intercepts_
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    with pytest.raises(ValueError, match="coefs_ needs 2 arrays"):
        ours.coefs_ = theirs.coefs_[:1]
    with pytest.raises(ValueError, match="shape"):
        ours.coefs_ = [c.T for c in theirs.coefs_]


def test_binary_and_multilabel_targets():
    X, y = _classification(classes=2)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, random_state=0).fit(X, y == 1)
    assert list(clf.classes_) == [False, True] and clf.out_activation_ == "logistic"
    assert clf.n_outputs_ == 1 and clf.predict_proba(X).shape == (len(X), 2)
    assert clf.score(X, y == 1) > 0.9
    Y = np.stack([y, 1 - y, (X[:, 0] > 0).astype(int)], axis=1)
    ml = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, Y)
    assert ml.predict(X).shape == (len(X), 3) and set(np.unique(ml.predict(X))) <= {0, 1}
    assert ml.predict_proba(X).shape == (len(X), 3)
    assert ml.score(X, Y) > 0.8, ml.score(X, Y)


def test_regressor_one_and_many_targets():
    X, y = _regression()
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=400, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (len(X),) and reg.predict(X).dtype == np.float64
    assert reg.score(X, y) > 0.95, reg.score(X, y)
    X2, Y2 = _regression(targets=3)
    reg2 = MLPRegressor(hidden_layer_sizes=(32,), max_iter=400, random_state=0).fit(X2, Y2)
    assert reg2.predict(X2).shape == (len(X2), 3) and reg2.score(X2, Y2) > 0.9


def test_pipeline_and_grid_search():
    X, y = _classification(n=300)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=100, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (32,)],
                               "mlpclassifier__alpha": [1e-4, 1e-2]}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_score_ > 0.85, grid.best_score_  # scikit-learn's own MLPClassifier: 0.873
    assert grid.score(X, y) > 0.9
    best = grid.best_estimator_[-1]
    assert isinstance(best, MLPClassifier) and best.hidden_layer_sizes in [(4,), (32,)]


def test_fit_is_sequential_fit_with_sklearns_parameters():
    # SGD without momentum, no shuffling: the estimator's epochs are Sequential.fit's epochs, bit
    # for bit, with scikit-learn's L2 (alpha/2·ΣW²/batch, weights only) as each Dense layer's l2
    # and its gradient scale: mse's gradient is c = 2 times scikit-learn's halved squared error,
    # so the penalty is c times too, the rate 1/c, and loss_curve_ the mean loss / c.
    X, y = _regression(n=96)
    kw = dict(hidden_layer_sizes=(7,), solver="sgd", momentum=0.0, alpha=0.3, batch_size=16,
              learning_rate_init=0.05, shuffle=False, random_state=3, n_iter_no_change=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(max_iter=1, **kw).fit(X, y)
        start = [layer.astype("float32") for layer in reg.model_.layers]
        reg.set_params(warm_start=True, max_iter=4).fit(X, y)
    for layer in start:
        layer.l2 = 2 * 0.3 / (2 * 16)
    model = blockprop.Sequential(*start)
    history = model.fit(X.astype(np.float32), y.reshape(-1, 1).astype(np.float32), epochs=4,
                        batch_size=16, loss="mse", shuffle=False, verbose=0,
                        optimizer=blockprop.optim.SGD(0.05 / 2))
    for got, want in zip(reg.model_.state_dict().values(), model.state_dict().values()):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(reg.loss_curve_[1:], np.array(history.history["loss"]) / 2)


def test_random_state_reproducible_and_distinct():
    X, y = _classification()
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pa = a.fit(X, y).predict_proba(X)
        pb = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=7).fit(X, y).predict_proba(X)
        pc = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=8).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(pa, pb)
    assert not np.allclose(pa, pc)


def test_partial_fit():
    X, y = _classification()
    labels = np.array(["x", "y", "z"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, labels)
    clf.partial_fit(X[:100], labels[:100], classes=["z", "y", "x"])
    assert list(clf.classes_) == ["x", "y", "z"] and clf.n_iter_ == 1 and clf.t_ == 100
    for _ in range(60):
        clf.partial_fit(X, labels)
    assert clf.n_iter_ == 1 and clf.t_ == 100 + 60 * len(X)  # n_iter_: the last call's, as scikit-learn
    # scikit-learn's MLPClassifier, the same calls: 1.391 → 0.592, score 0.8125
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 2 and clf.score(X, labels) > 0.75
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X[:3], ["x", "w", "x"])
    with pytest.raises(ValueError, match="differs from the first call"):
        clf.partial_fit(X[:3], labels[:3], classes=["x", "y"])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :4], labels)


def test_warm_start_continues_and_checks_classes():
    X, y = _classification()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        first = clf.loss_curve_[-1]
        model = clf.model_
        clf.fit(X, y)
    assert clf.model_ is model and clf.n_iter_ == 3 and len(clf.loss_curve_) == 6  # n_iter_: this fit's
    assert clf.loss_curve_[-1] < first
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(X, np.where(y == 2, 1, y))


def test_tol_stops_training_and_max_iter_warns():
    X, y = _regression()
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=500, tol=10.0, n_iter_no_change=3,
                       random_state=0).fit(X, y)
    # epoch 1 improves on +inf; it stops once more than n_iter_no_change epochs in a row did not
    assert reg.n_iter_ == 1 + 3 + 1, reg.n_iter_
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(2\\)"):
        MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)


def test_early_stopping_keeps_the_best_weights():
    X, y = _classification(n=400)
    clf = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=5,
                        max_iter=300, random_state=0).fit(X, y)
    assert clf.n_iter_ < 300 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.8
    assert clf.best_loss_ is None
    plain = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain.fit(X, y)
    assert plain.validation_scores_ is None and plain.best_loss_ == min(plain.loss_curve_)


def test_learning_rate_schedules_for_sgd():
    X, y = _regression(n=50)
    common = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=0.01, random_state=0)
    inv = MLPRegressor(learning_rate="invscaling", power_t=0.5, max_iter=3, **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        inv.fit(X, y)
    # the rate of the last epoch: lr_init / (samples seen before it + 1) ** power_t, in
    # scikit-learn's units (blockprop's optimizer runs at 1/c of it, c = 2 for squared error)
    assert inv._optimizer.lr * 2 == pytest.approx(0.01 / (2 * 50 + 1) ** 0.5)
    ada = MLPRegressor(learning_rate="adaptive", tol=1e6, n_iter_no_change=1, max_iter=1000,
                       **common).fit(X, y)
    # never "improves" by 1e6: the rate is divided by 5 every 2 epochs until it is ≤ 1e-6
    assert ada._optimizer.lr * 2 <= 1e-6 and ada.n_iter_ < 1000
    assert ada._optimizer.lr * 2 == pytest.approx(0.01 / 5 ** 6)


def test_pickle_round_trip_and_float64():
    X, y = _classification()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, dtype="float64", random_state=0).fit(X, y)
    assert clf.coefs_[0].dtype == np.float64
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("params, match", [
    ({"solver": "lbfgs"}, "L-BFGS"),
    ({"activation": "softplus"}, "activation"),
    ({"hidden_layer_sizes": (4, 0)}, "hidden_layer_sizes"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": "big"}, "batch_size"),
    ({"learning_rate_init": 0.0}, "learning_rate_init"),
    ({"momentum": 1.5}, "momentum"),
    ({"validation_fraction": 1.0}, "validation_fraction"),
    ({"beta_1": 1.0}, "beta_1"),
    ({"max_iter": 0}, "max_iter"),
    ({"n_iter_no_change": 0}, "n_iter_no_change"),
    ({"alpha": -1.0}, "alpha"),
    ({"dtype": "float16"}, "dtype"),
    ({"dtype": "nonsense"}, "dtype"),
    ({"learning_rate": "cosine"}, "learning_rate"),
])
def test_bad_parameters_name_themselves_at_fit(params, match):
    X, y = _classification(n=30)
    clf = MLPClassifier(**params)  # constructing never fails (scikit-learn's rule)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_bad_data():
    X, y = _classification(n=30)
    clf = MLPClassifier(max_iter=2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(np.where(X > 1, np.nan, X), y)
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, X[:, 0])
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="[Ss]parse"):
        clf.fit(scipy_sparse.csr_matrix(X), y)


# --- sample_weight and class_weight ----------------------------------------------------------------
def test_sample_weight_zero_is_the_sample_left_out():
    # Full batch (batch_size ≥ n): the batches line up, so a weight of 0 is the row left out;
    # float64, so the only difference is the order of a few sums.
    X, y = _regression(n=120)
    w = np.ones(len(X))
    w[::3] = 0
    kw = dict(hidden_layer_sizes=(8,), max_iter=30, random_state=0, dtype="float64")  # batch: all (n < 200)
    weighted = MLPRegressor(**kw).fit(X, y, sample_weight=w)
    left_out = MLPRegressor(**kw).fit(X[w > 0], y[w > 0])
    np.testing.assert_allclose(weighted.predict(X), left_out.predict(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.loss_curve_, left_out.loss_curve_, rtol=1e-9)
    Xc, yc = _classification(n=150)
    w = (np.arange(len(Xc)) % 4 != 0).astype(float)
    kw["hidden_layer_sizes"] = (6,)
    weighted = MLPClassifier(**kw).fit(Xc, yc, sample_weight=w)
    left_out = MLPClassifier(**kw).fit(Xc[w > 0], yc[w > 0])
    np.testing.assert_allclose(weighted.predict_proba(Xc), left_out.predict_proba(Xc), rtol=1e-9, atol=1e-12)


def test_sample_weight_changes_the_fit_and_partial_fit_takes_it():
    X, y = _classification()
    kw = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    plain = MLPClassifier(**kw).fit(X, y)
    w = np.where(y == 0, 5.0, 0.2)
    weighted = MLPClassifier(**kw).fit(X, y, sample_weight=w)
    assert not np.allclose(plain.predict_proba(X), weighted.predict_proba(X))
    # the heavily weighted class is found more often
    assert np.mean(weighted.predict(X)[y == 0] == 0) >= np.mean(plain.predict(X)[y == 0] == 0)
    inc = MLPRegressor(hidden_layer_sizes=(4,), random_state=0)
    Xr, yr = _regression()
    inc.partial_fit(Xr, yr, sample_weight=np.linspace(0, 2, len(Xr)))
    again = MLPRegressor(hidden_layer_sizes=(4,), random_state=0).partial_fit(Xr, yr)
    assert not np.array_equal(inc.predict(Xr), again.predict(Xr))


@pytest.mark.parametrize("weights,match", [
    (np.ones(10), "shape"),
    (-np.ones(240), "≥ 0"),
    (np.r_[np.nan, np.ones(239)], "NaN or infinity"),
    (np.r_[np.inf, np.ones(239)], "NaN or infinity"),
    (np.zeros(240), "zero for every sample"),
])
def test_bad_sample_weight_is_refused_by_name(weights, match):
    X, y = _classification()
    for est in (MLPClassifier(max_iter=2), MLPRegressor(max_iter=2)):
        with pytest.raises(ValueError, match=match):
            est.fit(X, y, sample_weight=weights)
        with pytest.raises(ValueError, match=match):
            est.partial_fit(X, y, sample_weight=weights, **({"classes": [0, 1, 2]} if hasattr(est, "predict_proba") else {}))


def test_weighted_score_is_sklearns_weighted_metric():
    from sklearn.metrics import accuracy_score, r2_score
    X, y = _classification()
    w = np.linspace(0.1, 3, len(X))
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0).fit(X, y)
    assert clf.score(X, y, sample_weight=w) == accuracy_score(y, clf.predict(X), sample_weight=w)
    Xr, yr = _regression()
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=10, random_state=0).fit(Xr, yr)
    w = np.linspace(0.1, 3, len(Xr))
    assert reg.score(Xr, yr, sample_weight=w) == r2_score(yr, reg.predict(Xr), sample_weight=w)


def test_class_weight_dict_is_per_class_sample_weights():
    X, y = _classification()
    labels = np.array(["a", "b", "c"])[y]
    kw = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    by_class = MLPClassifier(class_weight={"a": 3.0, "c": 0.5}, **kw).fit(X, labels)
    by_sample = MLPClassifier(**kw).fit(X, labels, sample_weight=np.array([3.0, 1.0, 0.5])[y])
    np.testing.assert_array_equal(by_class.predict_proba(X), by_sample.predict_proba(X))
    # both together multiply
    sw = np.linspace(0.5, 1.5, len(X))
    both = MLPClassifier(class_weight={"a": 3.0, "c": 0.5}, **kw).fit(X, labels, sample_weight=sw)
    product = MLPClassifier(**kw).fit(X, labels, sample_weight=sw * np.array([3.0, 1.0, 0.5])[y])
    np.testing.assert_array_equal(both.predict_proba(X), product.predict_proba(X))


def test_class_weight_balanced_is_logistic_regressions_rule():
    from sklearn.utils.class_weight import compute_class_weight
    X, y = _classification(n=300)
    keep = (y != 2) | (np.arange(len(y)) % 5 == 0)  # class 2 rare
    X, y = X[keep], y[keep]
    sw = np.linspace(0.5, 2, len(X))
    kw = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0, dtype="float64")
    for weights in (None, sw):
        want = compute_class_weight("balanced", classes=np.unique(y), y=y, sample_weight=weights)
        balanced = MLPClassifier(class_weight="balanced", **kw).fit(X, y, sample_weight=weights)
        manual = MLPClassifier(**kw).fit(X, y, sample_weight=want[y] * (1 if weights is None else weights))
        np.testing.assert_allclose(balanced.predict_proba(X), manual.predict_proba(X), rtol=1e-12)
    plain = MLPClassifier(**kw).fit(X, y)
    balanced = MLPClassifier(class_weight="balanced", **kw).fit(X, y)
    recall = [np.mean(m.predict(X)[y == 2] == 2) for m in (plain, balanced)]
    assert recall[1] > recall[0], recall


def test_class_weight_refuses_what_it_cannot_mean():
    X, y = _classification()
    with pytest.raises(ValueError, match=r"not classes: \[7\]"):
        MLPClassifier(class_weight={0: 1.0, 7: 2.0}, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="class_weight must be"):
        MLPClassifier(class_weight="balance", max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match=r"class_weight\[1\]"):
        MLPClassifier(class_weight={1: -2.0}, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    Y = np.c_[y == 0, y == 1].astype(int)
    with pytest.raises(ValueError, match="multilabel"):
        MLPClassifier(class_weight={0: 2.0}, max_iter=2).fit(X, Y)
    clf = MLPClassifier(class_weight={2: 4.0}, random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    assert clf.get_params()["class_weight"] == {2: 4.0}
    with pytest.warns(sklearn.exceptions.DataConversionWarning):  # y as a column, as scikit-learn
        column = MLPClassifier(class_weight="balanced", max_iter=2, random_state=0).fit(X, y.reshape(-1, 1))
    row = MLPClassifier(class_weight="balanced", max_iter=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(column.predict_proba(X), row.predict_proba(X))
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_precision_bfloat16():
    """precision="bfloat16": trained and scored with bfloat16 products, close to float32; bad values
    are refused at fit with the estimator's name."""
    from blockprop.sklearn import MLPClassifier
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 10))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    kw = dict(hidden_layer_sizes=(32,), max_iter=60, learning_rate_init=0.01, random_state=0)
    c16 = MLPClassifier(precision="bfloat16", **kw).fit(X, y)
    c32 = MLPClassifier(**kw).fit(X, y)
    assert c16.get_params()["precision"] == "bfloat16" and c32.get_params()["precision"] == "float32"
    assert not np.array_equal(c16.predict_proba(X), c32.predict_proba(X))
    assert abs(c16.score(X, y) - c32.score(X, y)) < 0.03 and c32.score(X, y) > 0.9
    with pytest.raises(ValueError, match="MLPClassifier: precision must be one of"):
        MLPClassifier(precision="bf16", **kw).fit(X, y)
    with pytest.raises(TypeError, match="precision='bfloat16' takes float32"):
        MLPClassifier(precision="bfloat16", dtype="float64", **kw).fit(X, y)


@pytest.mark.parametrize("kw", [
    dict(solver="adam", max_iter=40, n_iter_no_change=10),
    dict(solver="adam", max_iter=60, tol=1e-2, n_iter_no_change=2),
    dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=2, max_iter=40),
    dict(solver="sgd", shuffle=False, max_iter=25, n_iter_no_change=4, tol=1e-3),
])
def test_several_epochs_a_call_give_the_one_at_a_time_run(kw, monkeypatch):
    """fit trains as many epochs a call as the stopping and adaptive-rate rules allow (they cannot
    act before the last of them), with the shuffles drawn in scikit-learn's order ahead: the same
    weights, loss_curve_, n_iter_, rate and random state as asking for one epoch at a time."""
    X, y = make_classification(n_samples=300, n_features=12, n_informative=6, n_classes=3,
                               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ahead = MLPClassifier(hidden_layer_sizes=(16,), random_state=np.random.RandomState(3), **kw).fit(X, y)
        asked = []
        real = MLPClassifier._epochs_ahead
        monkeypatch.setattr(MLPClassifier, "_epochs_ahead",
                            lambda self, *a: asked.append(real(self, *a)) or 1)
        single = MLPClassifier(hidden_layer_sizes=(16,), random_state=np.random.RandomState(3), **kw).fit(X, y)
    assert max(asked) > 1  # the default run did ask for several at once
    assert ahead.loss_curve_ == single.loss_curve_ and ahead.n_iter_ == single.n_iter_
    assert all(np.array_equal(a, b) for a, b in zip(ahead.coefs_ + ahead.intercepts_,
                                                    single.coefs_ + single.intercepts_))
    assert ahead._optimizer.lr == single._optimizer.lr
    assert ahead.random_state.randint(1 << 30) == single.random_state.randint(1 << 30)
