"""scikit-learn estimators trained by blockprop: :class:`MLPClassifier` and :class:`MLPRegressor`.

They take the constructor parameters of ``sklearn.neural_network.MLPClassifier`` /
``MLPRegressor`` (solvers ``"sgd"`` and ``"adam"``; ``"lbfgs"`` is not offered) and train a
:class:`blockprop.nn.Sequential` of Dense layers with its ``fit``, one epoch per call, so plain
stacks run in C++ (``blockprop._fastpath``). Needs scikit-learn: ``pip install scikit-learn``
(``pip install '.[sklearn]'`` in a clone); ``import blockprop`` alone never imports it.

They learn as scikit-learn's MLPs with the same settings: the same ``random_state`` draws the same
initial weights and biases (Glorot-uniform, bound √(6/(in+out)), √(2/(in+out)) for logistic), the
same early-stopping split and the same per-epoch shuffles, in scikit-learn's order; batches are
``min(200, n)`` for ``"auto"``; each step follows scikit-learn's gradient, ``(output − y)/n`` plus
``alpha·W/n`` on the weights only (not the biases); ``loss_curve_``, ``tol`` / ``n_iter_no_change``
and the adaptive rate follow its rules. On scikit-learn's regression check data, R² after 5 / 10 /
20 / 40 epochs equals scikit-learn's to the third decimal (tests/integrations/test_sklearn_parity.py).
``sample_weight`` (``fit``, ``partial_fit``) has scikit-learn 1.7's meaning: each batch's loss is
the weighted mean, the L2 term ``alpha/2·ΣW²/Σw``; ``class_weight`` (classifier) multiplies it as in
``LogisticRegression``.

How they get there, and where they still differ:

- blockprop's losses are the plain means (squared error over every output, binary cross-entropy
  over every label): their gradient is c × scikit-learn's (c = 2/k for k regression targets, 1/k
  for k binary labels, 1 for softmax). The L2 term is each Dense layer's ``l2`` (c·alpha/(2·batch)),
  Adam runs with ``epsilon·c`` and SGD with ``learning_rate/c``, so each update is scikit-learn's;
  ``loss_curve_`` is the mean loss / c, scikit-learn's figure, except for several regression
  targets, where scikit-learn reports half the squared error averaged over targets but follows the
  gradient of its sum (``loss_curve_`` here: half the sum, so its data term is k times theirs).
- The L2 term is divided by the nominal batch size (× the mean sample weight), scikit-learn by each
  batch's own size (weight sum): they differ on the last, shorter batch of an epoch and, with
  weights, on batches whose weight sum is not the average; full batches agree.
- Adam adds ``epsilon`` to √v̂ (after the bias correction), scikit-learn to √v: the same unless
  gradients are as small as ``epsilon``.
- SGD momentum is PyTorch's form (``v = μ·v + g``, ``p −= lr·v``): scikit-learn's at a constant
  rate, not right after ``invscaling`` / ``adaptive`` change it.
- With ``early_stopping``, a ``warm_start`` fit starts its search for the best validation score
  afresh (scikit-learn keeps the best score and weights of the previous fits).
- ``class_weight="balanced"`` needs all the data: ``partial_fit`` refuses it (pass a dict).
- ``coefs_[i]`` is ``(in, out)`` as in scikit-learn; it is a transposed *view* of blockprop's
  ``model_.layers[k].W``, which is ``(out, in)`` as PyTorch's ``nn.Linear``. Writing into it (or
  assigning a list of arrays to ``coefs_`` / ``intercepts_``) changes the model.
- ``dtype`` (extra parameter, default ``"float32"``: the fast path) is the precision of the
  weights and the arithmetic (scikit-learn: that of X); predictions are returned as float64.
- ``precision`` (extra parameter, default ``"float32"``): ``"bfloat16"`` trains and predicts with
  bfloat16 products and float32 sums (float32 ``dtype`` only; see ``Sequential.fit``).
- Sparse input is refused (``TypeError``): convert it with ``X.toarray()`` if it fits in memory.
"""
from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Any, Dict, Generator, List, Optional, Tuple, cast

import numpy as np
from numpy.typing import ArrayLike

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("blockprop.sklearn needs scikit-learn >= 1.6: pip install 'scikit-learn>=1.6'"
                      f" ({e})") from e

from . import _precision
from . import kernels as K
from .model import History
from .nn.layers import Dense
from .nn.sequential import Sequential
from .optim import SGD, Adam, Optimizer
from .training import EpochOrders, as_sample_weight

__all__ = ["MLPClassifier", "MLPRegressor", "MLPGridSearchCV"]

# scikit-learn's activation names -> blockprop's fused activations.
_ACTIVATIONS = {"identity": None, "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SOLVERS = ("sgd", "adam")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")


def _shuffled(order: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """``sklearn.utils.shuffle(order, random_state=rng)``: the same draw from ``rng`` (a
    permutation of ``arange(n)`` shuffled in place), without its argument checks, which took
    0.35 ms an epoch: a third of a small fit's time in Python (digits, 64-128-10)."""
    perm = np.arange(len(order))
    rng.shuffle(perm)
    return order[perm]


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _real(name: str, value: Any, low: float, high: float = np.inf, low_open: bool = False,
          high_open: bool = False) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(float(value))
    if ok:
        v = float(value)
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be a number in {lo}{low}, {high}{hi}, got {value!r}")
    return float(value)


class _BaseMLP(BaseEstimator):
    """Shared parameters, checks and the epoch loop; subclasses define the output layer."""

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int = 10, dtype: str = "float32", precision: str = "float32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype
        self.precision = precision

    # --- what subclasses provide ---------------------------------------------------------------
    _loss = ""  # blockprop loss of the output layer (set by ``_targets``)

    def _targets(self, y: np.ndarray, first: bool, incremental: bool, classes: Any) -> np.ndarray:
        raise NotImplementedError

    def _validation_score(self, X: np.ndarray, y: np.ndarray, sw: Optional[np.ndarray]) -> float:
        raise NotImplementedError

    def _stratify(self, y: np.ndarray) -> Optional[np.ndarray]:
        """The labels to stratify the early-stopping split by (None: a plain split)."""
        return None

    # --- parameters ----------------------------------------------------------------------------
    def _check_params(self) -> Tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) and not isinstance(sizes, bool) else sizes
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}") from None
        for s in sizes:
            _positive_int("hidden_layer_sizes entries", s)
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if self.solver not in _SOLVERS:
            hint = " (blockprop offers no L-BFGS)" if self.solver == "lbfgs" else ""
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}{hint}")
        if self.learning_rate not in _LEARNING_RATES:
            raise ValueError(f"learning_rate must be one of {_LEARNING_RATES}, got {self.learning_rate!r}")
        if not (self.batch_size == "auto" if isinstance(self.batch_size, str) else True):
            raise ValueError(f"batch_size must be 'auto' or a positive integer, got {self.batch_size!r}")
        if not isinstance(self.batch_size, str):
            _positive_int("batch_size", self.batch_size)
        _real("alpha", self.alpha, 0.0)
        _real("learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        _real("power_t", self.power_t, 0.0)
        _positive_int("max_iter", self.max_iter)
        _real("tol", self.tol, 0.0)
        _real("momentum", self.momentum, 0.0, 1.0)
        _real("validation_fraction", self.validation_fraction, 0.0, 1.0, low_open=True, high_open=True)
        _real("beta_1", self.beta_1, 0.0, 1.0, high_open=True)
        _real("beta_2", self.beta_2, 0.0, 1.0, high_open=True)
        _real("epsilon", self.epsilon, 0.0, low_open=True)
        _positive_int("n_iter_no_change", self.n_iter_no_change)
        try:
            dtype_ok = np.dtype(self.dtype).name in ("float32", "float64")
        except TypeError:
            dtype_ok = False
        if not dtype_ok:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        _precision.check(self.precision, np.dtype(self.dtype).name, type(self).__name__)
        return sizes

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(f"batch_size={self.batch_size} is larger than the {n} samples; using {n}",
                          UserWarning, stacklevel=5)
        return min(int(self.batch_size), n)

    # --- model ---------------------------------------------------------------------------------
    def _build(self, sizes: Tuple[int, ...], n_in: int, n_out: int,
               rng: np.random.RandomState) -> Sequential:
        """The network with scikit-learn's initial weights: per layer, weights then biases drawn
        from ``rng.uniform(±√(f/(in+out)))`` (f = 6, or 2 for logistic), in scikit-learn's order,
        so a ``random_state`` gives the weights scikit-learn's MLP starts from."""
        widths = [n_in, *sizes, n_out]
        hidden = _ACTIVATIONS[self.activation]
        dtype = np.dtype(self.dtype).name
        factor = 2.0 if self.activation == "logistic" else 6.0
        layers = []
        for i in range(len(widths) - 1):
            fan_in, fan_out = widths[i], widths[i + 1]
            layer = Dense(fan_in, fan_out, activation=None if i == len(widths) - 2 else hidden,
                          init="zeros", dtype=dtype)
            bound = np.sqrt(factor / (fan_in + fan_out))
            layer.W = rng.uniform(-bound, bound, (fan_in, fan_out)).T
            layer.b = rng.uniform(-bound, bound, fan_out)
            layers.append(layer)
        model = Sequential(*layers)
        model.progress.seed = 0  # unused: the estimator shuffles each epoch itself, as scikit-learn
        return model

    def _scale(self) -> float:
        """c: blockprop's loss gradient is c × scikit-learn's (which is (output − y)/n for its
        three losses): 2/k for mean squared error over k outputs (scikit-learn halves it and sums
        over outputs), 1/k for binary cross-entropy over k outputs, 1 for softmax cross-entropy."""
        k = self.n_outputs_
        return {"mse": 2.0 / k, "bce": 1.0 / k}.get(self._loss, 1.0)

    def _new_optimizer(self) -> Optimizer:
        # Every gradient is c × scikit-learn's (the penalty too, see _penalize): Adam's update is
        # the same with eps·c; SGD's with lr / c.
        c = self._scale()
        if self.solver == "adam":
            return Adam(self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon * c)
        return SGD(self.learning_rate_init / c, momentum=self.momentum,
                   nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)

    def _penalize(self, batch: int, mean_weight: float) -> None:
        """scikit-learn's L2 term ``alpha/2·ΣW²/Σw`` (Σw: the batch's sample-weight sum, its size
        without weights) as each Dense layer's ``l2`` (weights only, not biases), times c. Σw is
        taken as batch × the mean sample weight: exact for full batches of uniform weight sums."""
        l2 = self._scale() * float(self.alpha) / (2.0 * batch * mean_weight)
        for d in self._dense:
            d.l2 = l2

    @property
    def _dense(self) -> List[Dense]:
        check_is_fitted(self)
        return [layer for layer in self.model_.layers if isinstance(layer, Dense)]

    @property
    def coefs_(self) -> List[np.ndarray]:
        """Weights per layer as ``(in, out)`` (scikit-learn's layout): views of the ``(out, in)``
        blockprop weights, transposed."""
        return [d.W.T for d in self._dense]

    @coefs_.setter
    def coefs_(self, values: List[ArrayLike]) -> None:
        dense = self._dense
        if len(values) != len(dense):
            raise ValueError(f"coefs_ needs {len(dense)} arrays, got {len(values)}")
        for d, w in zip(dense, values):
            d.W = np.asarray(w).T

    @property
    def intercepts_(self) -> List[np.ndarray]:
        """Biases per layer, ``(out,)``: the blockprop arrays themselves."""
        return [cast(np.ndarray, d.b) for d in self._dense]  # every layer here has a bias

    @intercepts_.setter
    def intercepts_(self, values: List[ArrayLike]) -> None:
        dense = self._dense
        if len(values) != len(dense):
            raise ValueError(f"intercepts_ needs {len(dense)} arrays, got {len(values)}")
        for d, b in zip(dense, values):
            d.b = np.asarray(b)

    # --- training ------------------------------------------------------------------------------
    def _sample_weight(self, sample_weight: Any, y: np.ndarray, n: int,
                       incremental: bool) -> Optional[np.ndarray]:
        """The checked sample weights (None: all 1); the classifier folds in ``class_weight``."""
        return None if sample_weight is None else as_sample_weight(sample_weight, n)

    def _fit(self, X: Any, y: Any, incremental: bool, classes: Any = None,
             sample_weight: Any = None) -> "_BaseMLP":
        steps = self._fit_steps(X, y, incremental, classes, sample_weight)
        try:
            request = next(steps)
            while True:
                request = steps.send(self.model_.fit(**request))
        except StopIteration:
            return self

    def _fit_steps(self, X: Any, y: Any, incremental: bool, classes: Any = None,
                   sample_weight: Any = None) -> Generator[Dict[str, Any], History, None]:
        """``fit`` / ``partial_fit`` as a generator: it yields the ``model_.fit`` arguments of
        each call (several epochs, see :meth:`_epochs_ahead`) and is sent back its History (of
        those epochs, or fewer), so that :class:`MLPGridSearchCV` can train many estimators'
        epochs together (``blockprop.fit_many``) on this same code path.
        Arguments at ``model_.fit``'s defaults are left out (``fit_many`` takes fewer)."""
        sizes = self._check_params()
        first = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, y = validate_data(self, X, y, reset=first, multi_output=True,
                             dtype=(np.float64, np.float32), y_numeric=not isinstance(self, ClassifierMixin))
        Y = self._targets(y, first, incremental, classes)
        sw = self._sample_weight(sample_weight, y, len(X), incremental)
        # One generator for the initial weights, the early-stopping split and every epoch's
        # shuffle, drawn in scikit-learn's order: the same random_state gives the same run.
        rng = check_random_state(self.random_state)
        if first:
            self.model_ = self._build(sizes, X.shape[1], Y.shape[1] if Y.ndim == 2 else len(self.classes_),
                                      rng)
            self.n_layers_ = len(sizes) + 2
            self.n_outputs_ = self.model_.out_features
            self.t_ = 0
            self.loss_curve_: List[float] = []
            self._no_improvement_count = 0  # kept across warm starts and partial_fit, as scikit-learn
            self._best_loss = np.inf
        self.n_iter_ = 0  # this call's epochs, as scikit-learn
        early = self.early_stopping and not incremental
        swv = None
        if early:
            X, Xv, Y, y, yv, sw, swv = self._validation_split(X, Y, y, sw, rng)
        batch = self._batch_size(len(X))
        if first or not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._new_optimizer()
        self._penalize(batch, 1.0 if sw is None else float(np.mean(sw)))
        c = self._scale()
        scores: List[float] = []
        best_score = -np.inf
        best_state = self.model_.state_dict() if early else {}
        X = np.ascontiguousarray(X, dtype=self.model_.dtype)  # converted once, not every epoch
        opt = self._optimizer
        order = np.arange(len(X))
        # Shuffles drawn (in scikit-learn's order) but not trained yet: a call trains several
        # epochs, as many as no rule of the loop below can act before the last of them.
        drawn: List[np.ndarray] = []
        extra: Dict[str, Any] = {} if sw is None else {"sample_weight": sw}
        if self.precision != "float32":
            extra["precision"] = self.precision
        total, stopped = 1 if incremental else int(self.max_iter), False
        done = 0
        while done < total and not stopped:
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                opt.lr = float(self.learning_rate_init) / (self.t_ + 1) ** float(self.power_t) / c
            ahead = self._epochs_ahead(total - done, early)
            while self.shuffle and len(drawn) < ahead:  # scikit-learn's draw: the last order, shuffled
                order = _shuffled(order, rng)
                drawn.append(order)
            history = yield dict(X=X, y=Y, epochs=ahead, batch_size=batch, loss=self._loss, optimizer=opt,
                                 shuffle=EpochOrders(drawn[:ahead]) if self.shuffle else False,
                                 verbose=0, **extra)
            trained = len(history.history["loss"])  # a grid search's group may train fewer
            del drawn[:trained]
            for value in history.history["loss"]:
                done += 1
                loss = float(value) / c  # in scikit-learn's scale
                # early stopping: one epoch a call, so the model is this epoch's
                score = self._validation_score(Xv, yv, swv) if early and np.isfinite(loss) else 0.0
                stop = self._end_epoch(loss, len(X), early, incremental, score, best_score, opt, c)
                if early:
                    scores.append(score)
                    if score > best_score:
                        best_score, best_state = score, self.model_.state_dict()
                if stop:
                    stopped = True
                    break
        if not stopped and not incremental:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                          "the optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
        if early:
            self.model_.load_state_dict(best_state)  # the weights of the best validation score
        self.best_loss_: Optional[float] = None if early else self._best_loss
        self.validation_scores_: Optional[List[float]] = scores if early else None
        self.best_validation_score_: Optional[float] = best_score if early else None

    def _epochs_ahead(self, left: int, early: bool) -> int:
        """Epochs to train in one call: all that are left, but no further than the first epoch at
        which the no-improvement count could pass n_iter_no_change (the stopping and adaptive rules
        act there); one at a time with rules that act every epoch (invscaling's rate, early
        stopping's validation score and best weights)."""
        if early or (self.solver == "sgd" and self.learning_rate == "invscaling"):
            return 1
        return max(1, min(left, int(self.n_iter_no_change) - self._no_improvement_count + 1))

    def _end_epoch(self, loss: float, n: int, early: bool, incremental: bool, score: float,
                   best_score: float, opt: Any, c: float) -> bool:
        """scikit-learn's bookkeeping after an epoch of ``n`` rows and training loss ``loss`` (in
        its scale; ``score``: the validation score, with early stopping, against the best before):
        n_iter_, t_, loss_curve_, the no-improvement count and its rules. True: stop training."""
        if not np.isfinite(loss):
            raise ValueError(f"{type(self).__name__}: the training loss became {loss} at epoch "
                             f"{self.n_iter_ + 1}; lower learning_rate_init or scale the inputs")
        self.n_iter_ += 1
        self.t_ += n
        self.loss_curve_.append(loss)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
        if early:
            if self.verbose:
                print(f"Validation score: {score:f}")
            improved = score >= best_score + self.tol
        else:
            improved = loss <= self._best_loss - self.tol
            self._best_loss = min(self._best_loss, loss)
        self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
        if self._no_improvement_count <= self.n_iter_no_change:
            return False
        what = "Validation score" if early else "Training loss"
        # scikit-learn's rule on its rate (opt.lr × c), partial_fit included
        if self.solver == "sgd" and self.learning_rate == "adaptive" and opt.lr * c > 1e-6:
            opt.lr /= 5.0
            self._no_improvement_count = 0
            if self.verbose:
                print(f"{what} did not improve more than tol={self.tol} for "
                      f"{self.n_iter_no_change} consecutive epochs. Setting learning rate to {opt.lr * c:f}")
            return False
        if incremental:
            return False
        if self.verbose:
            print(f"{what} did not improve more than tol={self.tol} for "
                  f"{self.n_iter_no_change} consecutive epochs. Stopping.")
        return True

    def _validation_split(self, X: np.ndarray, Y: np.ndarray, y: np.ndarray, sw: Optional[np.ndarray],
                          rng: Any) -> Tuple[Any, ...]:
        """scikit-learn's early-stopping split (the same draw from ``rng``): X, Xv, Y, y, yv, sw, swv."""
        arrays = [X, Y, y] + ([] if sw is None else [sw])
        parts = train_test_split(*arrays, random_state=rng, stratify=self._stratify(y),
                                 test_size=self.validation_fraction)
        X, Xv, Y, _, y, yv = parts[:6]
        if len(Xv) < 2:
            raise ValueError("The validation set is too small: raise validation_fraction or use more samples")
        sw, swv = (parts[6], parts[7]) if sw is not None else (None, None)
        return X, Xv, Y, y, yv, sw, swv

    # --- inference -----------------------------------------------------------------------------
    def _outputs(self, X: Any) -> np.ndarray:
        """Raw network outputs (logits for classifiers) for validated ``X``, as float64."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self._raw(X)

    def _raw(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X, precision=self.precision).astype(np.float64)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier (softmax output and cross-entropy; a logistic output for
    two classes and for multilabel indicator targets). Labels may be of any type (ints, strings…).

    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=50, random_state=0).fit(X, y)

    ``class_weight`` (extra, as ``LogisticRegression``'s): None, ``"balanced"`` (class c weighs
    ``Σw / (n_classes · Σ_{y=c} w)``) or a dict ``{label: weight}`` (other labels weigh 1); it
    multiplies ``sample_weight``. Not for multilabel targets.

    Fitted attributes as scikit-learn's: ``classes_``, ``coefs_``, ``intercepts_``, ``loss_curve_``,
    ``n_iter_``, ``n_features_in_``, ``n_layers_``, ``n_outputs_``, ``out_activation_``, ``t_``,
    ``best_loss_``, ``validation_scores_``, ``best_validation_score_``; plus ``model_``, the trained
    :class:`blockprop.nn.Sequential` (save it, export it to PyTorch, ...); its Dense layers carry the
    L2 term as ``l2``, which a further ``model_.fit`` keeps applying.
    """

    classes_: np.ndarray

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int = 10, dtype: str = "float32", precision: str = "float32",
                 class_weight: Any = None):
        super().__init__(hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
                         learning_rate=learning_rate, learning_rate_init=learning_rate_init,
                         power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
                         tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
                         nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, n_iter_no_change=n_iter_no_change, dtype=dtype,
                         precision=precision)
        self.class_weight = class_weight

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> "MLPClassifier":
        """Train from scratch (or, with ``warm_start``, from the current weights) for up to
        ``max_iter`` epochs. ``sample_weight``: one weight ≥ 0 per sample (the loss is their
        weighted mean; 0 leaves the sample out), multiplied by ``class_weight``'s."""
        self._fit(X, y, incremental=False, sample_weight=sample_weight)
        return self

    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None,
                    classes: Optional[ArrayLike] = None) -> "MLPClassifier":
        """One epoch over ``(X, y)``, continuing the weights and the optimizer state. The first call
        needs ``classes``, every label that will ever appear. Arguments in scikit-learn's order."""
        self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)
        return self

    def _sample_weight(self, sample_weight: Any, y: np.ndarray, n: int,
                       incremental: bool) -> Optional[np.ndarray]:
        """Sample weights × class weights (LogisticRegression's rule): ``"balanced"`` gives class c
        ``Σw / (n_classes · Σ_{y=c} w)`` (w: the sample weights, else 1); a dict maps labels to
        weights, labels it leaves out weigh 1."""
        sw = super()._sample_weight(sample_weight, y, n, incremental)
        cw = self.class_weight
        if cw is None:
            return sw
        if self._multilabel:
            raise ValueError("class_weight is not supported for multilabel targets")
        k = len(self.classes_)
        index = np.searchsorted(self.classes_, np.ravel(y))  # classes_ is sorted; y may be a column
        if isinstance(cw, str) and cw == "balanced":
            if incremental:
                raise ValueError("class_weight='balanced' needs every sample at once; partial_fit sees "
                                 "one batch: pass a dict, e.g. from sklearn.utils.class_weight."
                                 "compute_class_weight('balanced', classes=..., y=all_labels)")
            counts = np.bincount(index, weights=sw, minlength=k)
            present = counts > 0
            per_class = np.zeros(k)
            per_class[present] = counts.sum() / (present.sum() * counts[present])
        elif isinstance(cw, dict):
            known = set(self.classes_.tolist())
            unknown = [c for c in cw if c not in known]
            if unknown:
                raise ValueError(f"class_weight names labels that are not classes: {unknown!r} "
                                 f"(classes_: {self.classes_.tolist()!r})")
            per_class = np.array([_real(f"class_weight[{c!r}]", cw.get(c, 1.0), 0.0)
                                  for c in self.classes_.tolist()])
        else:
            raise ValueError(f"class_weight must be None, 'balanced' or a dict {{label: weight}}, got {cw!r}")
        w = per_class[index]
        w = w if sw is None else sw * w
        return as_sample_weight(w, n, name="sample_weight × class_weight")

    def _targets(self, y: np.ndarray, first: bool, incremental: bool, classes: Any) -> np.ndarray:
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind == "multiclass-multioutput":
            raise ValueError("MLPClassifier: multiclass-multioutput targets are not supported "
                             "(multilabel 0/1 indicator matrices are)")
        if first and incremental:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            fit_on = y if kind.startswith("multilabel") else np.asarray(classes)
            self._binarizer = LabelBinarizer().fit(fit_on)
        elif first:
            self._binarizer = LabelBinarizer().fit(y)
        else:
            new = set(unique_labels(y))
            if incremental:
                if classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
                    raise ValueError(f"classes={list(classes)!r} differs from the first call's "
                                     f"{list(self.classes_)!r}")
                if not new <= set(self.classes_):
                    raise ValueError(f"y holds labels not in classes_: {sorted(new - set(self.classes_))!r}"
                                     f" (classes_: {list(self.classes_)!r})")
            elif new != set(self.classes_):
                raise ValueError("warm_start can only continue with the classes of the previous fit: "
                                 f"previously {list(self.classes_)!r}, now {sorted(new)!r}")
        self.classes_ = self._binarizer.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"MLPClassifier needs at least 2 classes to learn, got 1 class: "
                             f"{self.classes_[0]!r}")
        Y = self._binarizer.transform(y)
        self._multilabel = self._binarizer.y_type_.startswith("multilabel")
        if self._multilabel or len(self.classes_) == 2:
            self._loss, self.out_activation_ = "bce", "logistic"
            return Y.astype(np.dtype(self.dtype))
        self._loss, self.out_activation_ = "cross_entropy", "softmax"
        return Y.argmax(axis=1)

    def _stratify(self, y: np.ndarray) -> Optional[np.ndarray]:
        return y if len(self.classes_) == 2 and not self._multilabel else None  # as scikit-learn

    def _validation_score(self, X: np.ndarray, y: np.ndarray, sw: Optional[np.ndarray]) -> float:
        return float(accuracy_score(y, self._decode(self._proba(self._raw(X))), sample_weight=sw))

    def _proba(self, out: np.ndarray) -> np.ndarray:
        if self._loss == "cross_entropy":
            p = K.softmax(out)
            return p / p.sum(axis=1, keepdims=True)
        p = K.sigmoid(out)
        return p if self._multilabel else np.hstack([1.0 - p, p])

    def _decode(self, proba: np.ndarray) -> np.ndarray:
        if self._multilabel:
            return self._binarizer.inverse_transform((proba > 0.5).astype(np.int64))
        return self.classes_[proba.argmax(axis=1)]

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The predicted label per sample (an indicator row for multilabel targets)."""
        return self._decode(self.predict_proba(X))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Probabilities ``(n_samples, n_classes)`` in the order of ``classes_`` (float64)."""
        return self._proba(self._outputs(X))

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: identity output and squared error, one or more targets.

    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=50, random_state=0).fit(X, y)

    Fitted attributes as :class:`MLPClassifier` (without ``classes_``).
    """

    _loss = "mse"

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> "MLPRegressor":
        """Train from scratch (or, with ``warm_start``, from the current weights) for up to
        ``max_iter`` epochs. ``sample_weight``: one weight ≥ 0 per sample (the loss is their
        weighted mean; 0 leaves the sample out)."""
        self._fit(X, y, incremental=False, sample_weight=sample_weight)
        return self

    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> "MLPRegressor":
        """One epoch over ``(X, y)``, continuing the weights and the optimizer state."""
        self._fit(X, y, incremental=True, sample_weight=sample_weight)
        return self

    def _targets(self, y: np.ndarray, first: bool, incremental: bool, classes: Any) -> np.ndarray:
        self.out_activation_ = "identity"
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not first and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} targets but the model was fitted with {self.n_outputs_}")
        return Y

    def _validation_score(self, X: np.ndarray, y: np.ndarray, sw: Optional[np.ndarray]) -> float:
        out = self._raw(X)
        return float(r2_score(y, out[:, 0] if y.ndim == 1 else out, sample_weight=sw))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions, float64: ``(n_samples,)`` for one target, else ``(n_samples, n_targets)``."""
        out = self._outputs(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


from .grid_search import MLPGridSearchCV  # noqa: E402,F401  (uses the estimators' _fit_steps)
