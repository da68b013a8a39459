"""blockprop.sklearn learns as scikit-learn's own MLPs with the same settings: the installed
scikit-learn, trained side by side, gives the same learning curves (R² for regression, accuracy and
log-loss for classification) after 5, 10, 20 and 40 epochs, within 0.05 as issue 21 asks; in
float64 they agree far closer, since the same random_state draws the same initial weights, the same
early-stopping split and the same shuffles."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install blockprop[sklearn])")

import sklearn.neural_network as sk  # noqa: E402
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.preprocessing import StandardScaler, scale  # noqa: E402
from sklearn.utils.estimator_checks import check_regressors_train  # noqa: E402

from blockprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

EPOCHS = (5, 10, 20, 40)


def _check_data():
    """scikit-learn's regression check data (estimator_checks._regression_dataset): 200 × 10."""
    X, y = make_regression(n_samples=200, n_features=10, n_informative=1, bias=5.0, noise=20,
                           random_state=42)
    return StandardScaler().fit_transform(X), scale(y)


def _curve(cls, X, y, score, **kw):
    return np.array([score(cls(max_iter=e, **kw).fit(X, y), X, y) for e in EPOCHS])


def _r2(est, X, y):
    return est.score(X, y)


def _report(name, ours, theirs):
    return f"{name}: blockprop {np.round(ours, 4)} scikit-learn {np.round(theirs, 4)}"


@pytest.mark.parametrize("random_state", [0, 1, 2])
def test_regressor_r2_curve_matches_sklearn_on_its_check_data(random_state):
    X, y = _check_data()
    theirs = _curve(sk.MLPRegressor, X, y, _r2, random_state=random_state)
    ours = _curve(MLPRegressor, X, y, _r2, random_state=random_state)
    assert np.all(np.abs(ours - theirs) < 0.05), _report("R²", ours, theirs)


@pytest.mark.parametrize("kw", [dict(), dict(activation="logistic"), dict(activation="tanh", alpha=0.1),
                                dict(solver="sgd", learning_rate_init=0.01),
                                dict(hidden_layer_sizes=(20, 10), batch_size=32)],
                         ids=["adam-relu", "logistic", "tanh-alpha", "sgd-nesterov", "deep-minibatch"])
def test_regressor_float64_follows_sklearn_closely(kw):
    # float64, as scikit-learn computes: what is left is rounding and Adam's ε (scikit-learn adds
    # it to √v before the bias correction, blockprop after it), far below 1e-3.
    X, y = _check_data()
    theirs = _curve(sk.MLPRegressor, X, y, _r2, random_state=0, **kw)
    ours = _curve(MLPRegressor, X, y, _r2, random_state=0, dtype="float64", **kw)
    assert np.all(np.abs(ours - theirs) < 1e-3), _report("R²", ours, theirs)


def _accuracy(est, X, y):
    return est.score(X, y)


def _log_loss(est, X, y):
    return log_loss(y, est.predict_proba(X))


@pytest.mark.parametrize("classes", [2, 3])
def test_classifier_accuracy_and_log_loss_curves_match_sklearn(classes):
    # 600 samples: three batches of 200 a epoch, so the shuffles matter too.
    X, y = make_classification(n_samples=600, n_features=12, n_informative=6, n_classes=classes,
                               random_state=1)
    X = StandardScaler().fit_transform(X)
    for score in (_accuracy, _log_loss):
        theirs = _curve(sk.MLPClassifier, X, y, score, random_state=0)
        ours = _curve(MLPClassifier, X, y, score, random_state=0)
        assert np.all(np.abs(ours - theirs) < 0.05), _report(score.__name__, ours, theirs)


def test_multilabel_classifier_matches_sklearn():
    X, Y = make_multilabel_classification(n_samples=300, n_features=10, n_classes=4, random_state=0)
    X = StandardScaler().fit_transform(X)
    theirs = _curve(sk.MLPClassifier, X, Y, _accuracy, random_state=0)
    ours = _curve(MLPClassifier, X, Y, _accuracy, random_state=0, dtype="float64")
    assert np.all(np.abs(ours - theirs) < 0.05), _report("accuracy", ours, theirs)


def test_loss_curve_tol_stopping_and_early_stopping_follow_sklearn():
    X, y = make_classification(n_samples=500, n_features=10, n_informative=5, n_classes=2, random_state=3)
    X = StandardScaler().fit_transform(X)
    kw = dict(hidden_layer_sizes=(16,), max_iter=300, random_state=0, tol=1e-3)
    ours = MLPClassifier(dtype="float64", **kw).fit(X, y)
    theirs = sk.MLPClassifier(**kw).fit(X, y)
    # 500 rows: batches of 200, 200, 100; scikit-learn divides the last one's L2 term by 100,
    # blockprop by 200 (docstring), which drifts the loss by ~1e-5 over 170 epochs.
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-4)
    assert ours.n_iter_ == theirs.n_iter_ and ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-4)
    kw.update(early_stopping=True, n_iter_no_change=5)
    ours = MLPClassifier(dtype="float64", **kw).fit(X, y)
    theirs = sk.MLPClassifier(**kw).fit(X, y)
    # the same split drawn from the same random_state: the same validation scores
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    assert ours.n_iter_ == theirs.n_iter_


def test_initial_weights_are_sklearns():
    # One Adam step moves each weight by at most about learning_rate_init: with a rate of 1e-12
    # the weights after one epoch are scikit-learn's initial ones.
    X, y = _check_data()
    for activation in ("relu", "logistic"):
        kw = dict(hidden_layer_sizes=(5, 4), activation=activation, learning_rate_init=1e-12,
                  max_iter=1, random_state=7)
        ours = MLPRegressor(dtype="float64", **kw).fit(X, y)
        theirs = sk.MLPRegressor(**kw).fit(X, y)
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(a, b, atol=1e-10)


def test_check_regressors_train_passes_with_few_epochs():
    # issue 21: check_estimator(MLPRegressor(max_iter=20)) failed here where scikit-learn's passes
    # (the estimator checks fix random_state=0).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_regressors_train("MLPRegressor", MLPRegressor(max_iter=20, random_state=0))


@pytest.mark.parametrize("early_stopping", [False, True])
def test_sample_weight_follows_sklearn(early_stopping):
    # scikit-learn 1.7+'s weighted mean loss, the same random_state: the same fit. 600 rows, so
    # mini-batches of 200 (their weight sums differ: blockprop scales the L2 term by the mean
    # weight, see the docstring) and, with early stopping, the weights split as scikit-learn does.
    X, y = make_classification(n_samples=600, n_features=12, n_informative=6, n_classes=3, random_state=1)
    X = StandardScaler().fit_transform(X)
    w = np.random.default_rng(0).uniform(0, 3, len(X))
    w[::7] = 0
    kw = dict(random_state=0, early_stopping=early_stopping, max_iter=40)
    theirs = sk.MLPClassifier(**kw).fit(X, y, sample_weight=w)
    ours = MLPClassifier(dtype="float64", **kw).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-3)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-3)
    if early_stopping:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)


def test_warm_start_and_partial_fit_follow_sklearn():
    # n_iter_ counts the last call's epochs; the tol count and best_loss_ carry over; partial_fit
    # redraws the same shuffle for an int random_state, as scikit-learn does.
    X, y = _check_data()
    # epsilon tiny: where Adam adds it is the one difference left (with 1e-8 the curves drift apart
    # by ~4e-5 over 100 epochs, every warm start restarting Adam's bias correction)
    kw = dict(hidden_layer_sizes=(16,), max_iter=30, tol=1e-3, n_iter_no_change=3, random_state=0,
              warm_start=True, epsilon=1e-13)
    ours, theirs = MLPRegressor(dtype="float64", **kw), sk.MLPRegressor(**kw)
    for _ in range(4):
        ours.fit(X, y)
        theirs.fit(X, y)
        assert ours.n_iter_ == theirs.n_iter_ and len(ours.loss_curve_) == len(theirs.loss_curve_)
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-9)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    ours = MLPRegressor(dtype="float64", random_state=0, epsilon=1e-13)
    theirs = sk.MLPRegressor(random_state=0, epsilon=1e-13)
    for _ in range(5):
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 1
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("n", [1, 7, 200])
def test_the_epoch_shuffle_is_scikit_learns_draw(n):
    """The estimators' shuffle takes from the RandomState exactly what sklearn.utils.shuffle does:
    the same orders, epoch after epoch, and the generator left in the same state."""
    from sklearn.utils import check_random_state, shuffle

    from blockprop.sklearn import _shuffled

    ours, theirs = check_random_state(5), check_random_state(5)
    a = b = np.arange(n)
    for _ in range(4):
        a, b = _shuffled(a, ours), shuffle(b, random_state=theirs)
        assert np.array_equal(a, b)
    assert ours.randint(1 << 30) == theirs.randint(1 << 30)
