"""The one rule for a compute precision: its names, and which arrays it applies to.

``"float32"`` (the default) computes as the arrays' dtype says. ``"bfloat16"`` rounds the operands of
each matrix product to bfloat16 (round to nearest, ties to even) and accumulates the products in
float32; inputs, outputs and everything outside the products (bias, activations, losses, the
optimizer, the master weights) stay float32. bfloat16 is for float32 arrays only.
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any, Iterator

PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: Any, fn: str) -> str:
    """``precision`` if it names a precision; otherwise a ValueError (TypeError if not a str)
    naming ``fn``."""
    if not isinstance(precision, str):
        raise TypeError(f"{fn}: precision must be a str, one of {', '.join(map(repr, PRECISIONS))}; "
                        f"got {type(precision).__name__}")
    if precision not in PRECISIONS:
        raise ValueError(f"{fn}: precision must be one of {', '.join(map(repr, PRECISIONS))}, "
                         f"got {precision!r}")
    return precision


def is_bfloat16(precision: Any, fn: str) -> bool:
    """Whether ``precision`` (checked) is ``"bfloat16"``."""
    return check_precision(precision, fn) == "bfloat16"


def check_dtype(precision: str, dtype: Any, fn: str) -> None:
    """bfloat16 compute takes float32 arrays only: a TypeError for any other dtype."""
    if precision == "bfloat16" and str(dtype) != "float32":
        raise TypeError(f"{fn}: precision='bfloat16' takes float32 arrays (bfloat16 products, "
                        f"float32 accumulation), got {dtype}")


def check(precision: Any, dtype: Any, fn: str) -> str:
    """``precision`` checked (:func:`check_precision`) for arrays of ``dtype`` (:func:`check_dtype`)."""
    check_dtype(check_precision(precision, fn), dtype, fn)
    return precision


# The precision the dense layers compute in now: set for the length of a fit, evaluate or predict
# call (per thread, as those calls are), read by nn.Dense and the C++ training loop.
_current: ContextVar[str] = ContextVar("blockprop_precision", default="float32")


def current() -> str:
    """The precision of the call in progress (``"float32"`` outside any)."""
    return _current.get()


@contextlib.contextmanager
def computing_in(precision: str) -> Iterator[str]:
    """Makes ``precision``, already checked (:func:`check`), :func:`current` for the block."""
    token = _current.set(precision)
    try:
        yield precision
    finally:
        _current.reset(token)
