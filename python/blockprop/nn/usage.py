"""Which threads are inside a model: any number may read it at once (inference, saving, copying
the weights), one may change it (training), never both; a refused call raises ``RuntimeError``
naming what the other thread is doing. The record (``_owner``, ``_task``, ``_depth``,
``_readers``) lives on the model and is left out of its copies and pickles (``USAGE``)."""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Dict, Iterator, TypeVar, cast

_LOCK = threading.Lock()  # guards every model's record of use (_owner, _task, _depth, _readers)
USAGE = ("_owner", "_task", "_depth", "_readers")  # that record: not copied or pickled with the model


_Method = TypeVar("_Method", bound=Callable[..., Any])


def enter(model: Any, name: str, exclusive: bool) -> None:
    """Record a call on ``model``, or refuse it: a training call (``exclusive``) while another
    thread uses the model at all, inference while another thread trains it. Re-entry from the
    thread in the model is fine (a callback of fit may predict)."""
    me = threading.get_ident()
    with _LOCK:
        readers: Dict[int, int] = vars(model).setdefault("_readers", {})
        if model._owner is not None and model._owner != me:
            raise RuntimeError(f"Sequential.{name}: this model is being used by another thread (in "
                               f"Sequential.{model._task}, which changes it); train one model per "
                               "thread, and predict from a copy (copy.deepcopy(model)) while the "
                               "original trains")
        others = sum(n for thread, n in readers.items() if thread != me)
        if exclusive and others:
            raise RuntimeError(f"Sequential.{name}: this model is being used by another thread "
                               f"({others} call{'s' if others > 1 else ''} reading it in progress: "
                               "inference, save, state_dict); train a copy (copy.deepcopy(model)) "
                               "and swap it in")
        if exclusive:
            if model._depth == 0:
                model._task = name
            model._owner, model._depth = me, model._depth + 1
        else:
            readers[me] = readers.get(me, 0) + 1


def leave(model: Any, exclusive: bool) -> None:
    me = threading.get_ident()
    with _LOCK:
        if exclusive:
            model._depth -= 1
            if model._depth == 0:
                model._owner = None
        else:
            readers = model._readers
            readers[me] -= 1
            if readers[me] == 0:
                del readers[me]


@contextlib.contextmanager
def using(model: Any, name: str, exclusive: bool) -> Iterator[None]:
    """A call on ``model``: a training call (``exclusive``: one thread at a time, and only while
    no other thread runs inference) or one that only reads the model (any number of threads at
    once, but not while another trains; see :func:`enter`). Inference through a custom layer
    without ``infer`` runs ``forward`` in evaluation mode, so it too takes the model exclusively."""
    alone = exclusive or model._inference() is None
    enter(model, name, alone)
    try:
        yield
    finally:
        leave(model, alone)


def _guarded(exclusive: bool) -> Callable[[_Method], _Method]:
    """Decorator of a method that runs :func:`using` the model."""
    def decorate(method: _Method) -> _Method:  # typed: the decorated methods keep their signatures
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            with using(self, method.__name__, exclusive):
                return method(self, *args, **kwargs)
        return cast(_Method, guarded)
    return decorate


exclusive, shared = _guarded(True), _guarded(False)
