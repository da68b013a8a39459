"""Instruction set and thread count of the compiled core."""
from __future__ import annotations

import os
from typing import List

from . import _core

ISA_ENV = "BLOCKPROP_ISA"


def isa() -> str:
    """The instruction set the kernels run on: ``"avx512"``, ``"avx2"`` or ``"generic"``."""
    return _core.isa()


def supported_isas() -> List[str]:
    """Instruction sets this build can run on this CPU, lowest first."""
    return list(_core.supported_isas())


def set_isa(name: str) -> None:
    """Run the kernels on instruction set ``name`` (at most the best this CPU supports)."""
    _core.set_isa(name)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in the kernels (``0``: back to OpenMP's default, e.g. ``OMP_NUM_THREADS``)."""
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads the kernels use."""
    return _core.get_num_threads()


def _apply_isa_env() -> None:
    name = os.environ.get(ISA_ENV, "").strip().lower()
    if name:
        try:
            _core.set_isa(name)
        except ValueError as e:
            raise ImportError(f"blockprop: {ISA_ENV}={name!r}: {e}") from None
