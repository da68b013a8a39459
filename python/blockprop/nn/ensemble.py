"""``Ensemble``: several ``Sequential`` models trained together (:func:`blockprop.fit_many`) and
averaged: mean output, mean probability, and their spread across the members; saved as one file."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union, cast

import numpy as np

from .. import serialization, training
from ..many import fit_many
from ..model import History
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss, get_loss
from .sequential import Sequential
from .usage import using

__all__ = ["Ensemble", "load"]

# Probabilities are clipped here before their log: a member that is certain and wrong must not
# make the ensemble's loss infinite (the same floor as float64's smallest normal number).
_TINY = np.finfo(np.float64).tiny


class Ensemble:
    """Models with the same input and output widths, trained together and averaged:
    ``Ensemble([Sequential(...), Sequential(...), ...])``. Members may differ in everything
    else (depth, widths, activations, dtype, optimizer).

    ``fit`` trains every member as its own ``fit`` would, in one :func:`blockprop.fit_many` call;
    ``predict`` / ``predict_proba`` average the members' outputs / probabilities (with
    ``return_std=True`` also their standard deviation across members); ``evaluate`` scores the
    averaged prediction; ``save`` writes the members to one file that :func:`blockprop.load`
    reads back as an ``Ensemble``.
    """

    def __init__(self, models: Iterable[Sequential]):
        if isinstance(models, Sequential):
            raise TypeError("Ensemble takes a list of models, got one Sequential: Ensemble([model, ...])")
        try:
            members = list(models)
        except TypeError:
            raise TypeError(f"Ensemble takes a list of Sequential models, got {models!r}") from None
        if not members:
            raise ValueError("Ensemble needs at least one model, got an empty list")
        for i, m in enumerate(members):
            if not isinstance(m, Sequential):
                raise TypeError(f"Ensemble: member {i} is {type(m).__name__}, not a blockprop Sequential")
        seen: Dict[int, int] = {}
        for i, m in enumerate(members):
            if id(m) in seen:
                raise ValueError(f"Ensemble: members {seen[id(m)]} and {i} are the same model object "
                                 "(it would be trained twice); copy it: Sequential.astype or load_state_dict")
            seen[id(m)] = i
        first = members[0]
        for i, m in enumerate(members[1:], start=1):
            if m.in_features != first.in_features:
                raise ValueError(f"Ensemble: member {i} takes {m.in_features} input features but member 0 "
                                 f"takes {first.in_features}")
            if m.out_features != first.out_features:
                raise ValueError(f"Ensemble: member {i} gives {m.out_features} outputs but member 0 "
                                 f"gives {first.out_features}")
        self.models: List[Sequential] = members

    # --- the members --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self) -> Iterator[Sequential]:
        return iter(self.models)

    def __getitem__(self, i: int) -> Sequential:
        return self.models[i]

    @property
    def in_features(self) -> int:
        return self.models[0].in_features

    @property
    def out_features(self) -> int:
        return self.models[0].out_features

    # --- training -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, epochs: int = 1, batch_size: int = 32, loss: Any = None,
            optimizer: Any = None, schedule: Any = None, validation_data: Any = None,
            shuffle: bool = True, seed: Optional[int] = None, verbose: int = 1,
            callbacks: Optional[List[Any]] = None) -> List[History]:
        """Train every member on ``(X, y)``; one History per member. The arguments are
        ``Sequential.fit``'s; ``optimizer`` and ``schedule`` may also be lists, one per member
        (a single optimizer is copied for each). Each member ends as its own ``fit`` with these
        arguments would leave it (:func:`blockprop.fit_many`); give ``seed`` so that the members
        shuffle alike and share every batch (the fastest way)."""
        return fit_many(self.models, X, y, epochs=epochs, batch_size=batch_size, loss=loss,
                        optimizers=optimizer, schedules=schedule, seed=seed, shuffle=shuffle,
                        validation_data=validation_data, callbacks=callbacks, verbose=verbose)

    # --- inference ----------------------------------------------------------------------------
    def _stack(self, each: List[np.ndarray]) -> np.ndarray:
        return np.stack(each)  # (members, n, outputs); mixed dtypes: the wider

    def _mean(self, each: List[np.ndarray], return_std: bool) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        stacked = self._stack(each)
        mean = stacked.mean(axis=0)
        return (mean, stacked.std(axis=0)) if return_std else mean

    def predict(self, X: Any, batch_size: Optional[int] = None,
                return_std: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """The members' mean output (logits for classifiers; ``predict_proba`` averages
        probabilities). ``return_std``: also the standard deviation across members, per output."""
        return self._mean([m.predict(X, batch_size=batch_size) for m in self.models], return_std)

    def predict_proba(self, X: Any, batch_size: Optional[int] = None,
                      return_std: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """The members' mean class probabilities (each member's ``predict_proba``).
        ``return_std``: also their standard deviation across members, per class."""
        return self._mean([m.predict_proba(X, batch_size=batch_size) for m in self.models], return_std)

    def _binary(self) -> bool:
        """Independent sigmoid outputs (BCE or one output) rather than a softmax over classes."""
        return all(isinstance(m.loss, BCEWithLogitsLoss) or (m.loss is None and m.out_features == 1)
                   for m in self.models)

    def predict_classes(self, X: Any, batch_size: Optional[int] = None) -> np.ndarray:
        """The class of highest mean probability per row; for sigmoid outputs (BCE or one output)
        ``mean probability > 0.5`` (``(n,)`` for one output, ``(n, outputs)`` for multi-label)."""
        proba = cast(np.ndarray, self.predict_proba(X, batch_size=batch_size))
        if self._binary():
            classes = (proba > 0.5).astype(np.int64)
            return classes[:, 0] if classes.shape[1] == 1 else classes
        return proba.argmax(axis=1)

    def _loss(self, loss: Any) -> Loss:
        """The loss given, else the members' common one, else cross-entropy (as ``evaluate``)."""
        given = get_loss(loss)
        if given is not None:
            return given
        kinds = {type(m.loss) for m in self.models if m.loss is not None}
        if len(kinds) > 1:
            raise ValueError(f"Ensemble.evaluate: the members were trained with different losses "
                             f"({sorted(k.__name__ for k in kinds)}); pass loss=")
        return kinds.pop()() if kinds else CrossEntropyLoss()

    def evaluate(self, X: Any, y: Any, batch_size: Optional[int] = None, loss: Any = None) -> Dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` of the ensemble's prediction on ``(X, y)``:
        cross-entropy of the mean probability (for "cross_entropy" and "bce"), squared error of
        the mean output (for "mse"); accuracy for classification losses. ``loss``: the members'
        loss unless given. Also ``"member_loss"``: the members' own losses, averaged."""
        loss_fn = self._loss(loss)
        first = self.models[0]
        Xc = training.as_inputs(first, X, keep_float64=True)
        Y = training.as_targets(first, loss_fn, y, len(Xc))
        if isinstance(loss_fn, MSELoss):
            mean = cast(np.ndarray, self.predict(Xc, batch_size=batch_size)).astype(np.float64)
            scores = {"loss": float(np.mean((mean - Y) ** 2))}
        elif isinstance(loss_fn, CrossEntropyLoss):
            p = cast(np.ndarray, self._mean([_softmax(m, Xc, batch_size) for m in self.models], False))
            scores = {"loss": float(-np.mean(np.log(np.maximum(p[np.arange(len(Y)), Y], _TINY)))),
                      "accuracy": float(np.mean(p.argmax(axis=1) == Y))}
        elif isinstance(loss_fn, BCEWithLogitsLoss):
            p = cast(np.ndarray, self._mean([_sigmoid(m, Xc, batch_size) for m in self.models], False))
            t = Y.astype(np.float64)
            logs = t * np.log(np.maximum(p, _TINY)) + (1 - t) * np.log(np.maximum(1 - p, _TINY))
            scores = {"loss": float(-np.mean(logs)),
                      "accuracy": float(np.mean(np.all((p > 0.5) == (t > 0.5), axis=1)))}
        else:
            raise ValueError(f"Ensemble.evaluate: no ensemble score for {loss_fn!r}; "
                             "use 'cross_entropy', 'bce' or 'mse'")
        members = [m.evaluate(Xc, y, batch_size=batch_size, loss=type(loss_fn)())["loss"] for m in self.models]
        scores["member_loss"] = float(np.mean(members))
        return scores

    # --- persistence and display --------------------------------------------------------------
    def save(self, path: str) -> None:
        """All members (architecture, weights, training state) to ``path`` as one file, written
        atomically; :func:`blockprop.load` gives the Ensemble back. Refused (``RuntimeError``)
        while another thread uses a member, as ``Sequential.save`` is."""
        _holding(self.models, lambda: serialization.save_ensemble(list(self.models), path))

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): " + repr(m).replace("\n", "\n  ") for i, m in enumerate(self.models))
        return f"Ensemble({inner}\n)"


def _holding(models: List[Sequential], then: Callable[[], None]) -> None:
    """``then()`` while this thread reads every model of ``models`` (another thread training one
    of them is refused, as ``Sequential.save`` refuses it)."""
    with contextlib.ExitStack() as stack:
        for m in models:
            stack.enter_context(using(m, "save (of an Ensemble)", exclusive=False))
        then()


def _softmax(model: Sequential, X: np.ndarray, batch_size: Optional[int]) -> np.ndarray:
    """A member's probabilities over classes, float64 (softmax of its outputs)."""
    out = model.predict(X, batch_size=batch_size).astype(np.float64)
    z = np.exp(out - out.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _sigmoid(model: Sequential, X: np.ndarray, batch_size: Optional[int]) -> np.ndarray:
    """A member's independent probabilities per output, float64 (sigmoid of its outputs)."""
    out = model.predict(X, batch_size=batch_size).astype(np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * out))


def load(path: str) -> Union[Sequential, Ensemble]:
    """The model or ensemble saved at ``path`` (``Sequential.save`` / ``Ensemble.save``), with
    its training state; damage or a mismatch raises ``ValueError`` (see
    :mod:`blockprop.serialization`). Loading never unpickles."""
    return cast(Union[Sequential, Ensemble],
                serialization.load(path, lambda layers: Sequential(*layers),
                                   lambda members: Ensemble(cast(List[Sequential], members))))
