"""Instruction set and thread count of the compiled core."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, List

import numpy as np

from . import _core

ISA_ENV = "BLOCKPROP_ISA"
BF16_PATH_ENV = "BLOCKPROP_BF16_PATH"


def isa() -> str:
    """The instruction set the kernels run on: ``"avx512"``, ``"avx2"`` or ``"generic"``."""
    return _core.isa()


def supported_isas() -> List[str]:
    """Instruction sets this build can run on this CPU, lowest first."""
    return list(_core.supported_isas())


def set_isa(name: str) -> None:
    """Run the kernels on instruction set ``name`` (at most the best this CPU supports)."""
    _core.set_isa(name)


def bf16_path() -> str:
    """How ``precision="bfloat16"`` products run now: ``"amx"`` (AMX tiles), ``"avx512_bf16"``
    (VDPBF16PS) or ``"portable"`` (bfloat16-rounded operands through the float32 kernels of
    :func:`isa`). The AVX-512 paths need :func:`isa` to be ``"avx512"``; otherwise it is portable."""
    return _core.bf16_path()


def supported_bf16_paths() -> List[str]:
    """bfloat16 paths this build can run on this CPU (and OS, for AMX), lowest first."""
    return list(_core.supported_bf16_paths())


def set_bf16_path(name: str) -> None:
    """Run bfloat16 products on path ``name`` (at most the best this CPU supports; in effect while
    :func:`isa` is ``"avx512"``, else portable). The environment variable ``BLOCKPROP_BF16_PATH``
    sets it at import."""
    _core.set_bf16_path(name)


def max_threads() -> int:
    """The most threads :func:`set_num_threads` takes: 4 per CPU this process may run on, at
    least 8. More only adds OS threads contending for the same cores (10**6 was accepted and a
    large GEMM then started hundreds of threads)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(8, 4 * cpus)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in the kernels (``0``: back to OpenMP's default, e.g. ``OMP_NUM_THREADS``);
    ``n`` is an integer in ``[0, max_threads()]``."""
    # An integer (NumPy's too), never truncated or parsed: 1.5 and "2" are mistakes, not requests.
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads: n must be an integer, got {type(n).__name__} {n!r}")
    limit = max_threads()
    if not 0 <= n <= limit:
        raise ValueError(f"set_num_threads: n must be >= 1, or 0 for the default, and at most "
                         f"{limit} (4 per CPU), got {n}")
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads the kernels use (in calls from this thread: see :func:`thread_limit`)."""
    return _core.get_num_threads()


@contextlib.contextmanager
def thread_limit(n: int) -> Iterator[None]:
    """Within the block, kernels called from this thread use at most ``n`` threads (other threads
    are not affected): several threads that each train a model then do not contend for one thread
    pool. The previous limit returns on exit."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"thread_limit: n must be an integer >= 1, got {n!r}")
    before = _core.thread_limit()
    _core.set_thread_limit(int(n))
    try:
        yield
    finally:
        _core.set_thread_limit(before)


def _apply_isa_env() -> None:
    for env, choose in ((ISA_ENV, _core.set_isa), (BF16_PATH_ENV, _core.set_bf16_path)):
        name = os.environ.get(env, "").strip().lower()
        if name:
            try:
                choose(name)
            except ValueError as e:
                raise ImportError(f"blockprop: {env}={name!r}: {e}") from None
