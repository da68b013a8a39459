"""Threads: the OpenMP runtime blockprop's kernels run on is the one threadpoolctl sees and limits;
``set_num_threads`` overrides both until ``set_num_threads(0)``; the kernels really use that count."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading

import pytest

import blockprop
from blockprop import _core

threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl is not installed "
                                                            "(pip install blockprop[test])")


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _blockprops_openmp_library() -> str:
    """The file of the OpenMP runtime blockprop._core resolves omp_get_max_threads from (dlsym on
    the module searches the libraries it was linked with; dladdr names the one that has it)."""
    core = ctypes.CDLL(_core.__file__)
    address = ctypes.cast(core.omp_get_max_threads, ctypes.c_void_p)
    info = _DlInfo()
    assert ctypes.CDLL(None).dladdr(address, ctypes.byref(info)) != 0
    return os.path.realpath(info.dli_fname.decode())


@pytest.fixture
def default_threads():
    blockprop.set_num_threads(0)
    yield blockprop.get_num_threads()
    blockprop.set_num_threads(0)


def test_threadpoolctl_lists_blockprops_openmp(default_threads):
    lib = _blockprops_openmp_library()
    assert "gomp" in os.path.basename(lib), lib
    entries = [e for e in threadpoolctl.threadpool_info() if os.path.realpath(e["filepath"]) == lib]
    assert len(entries) == 1, (lib, threadpoolctl.threadpool_info())
    assert entries[0]["user_api"] == "openmp" and entries[0]["internal_api"] == "openmp"
    assert entries[0]["num_threads"] == default_threads


def test_repaired_wheel_uses_its_bundled_openmp():
    """An auditwheel-repaired install has blockprop.libs/ beside the package: the runtime the
    kernels use must be the copy in there, not whatever libgomp the system has."""
    libs = os.path.join(os.path.dirname(os.path.dirname(blockprop.__file__)), "blockprop.libs")
    bundled = [f for f in os.listdir(libs) if f.startswith("libgomp")] if os.path.isdir(libs) else []
    lib = _blockprops_openmp_library()
    if bundled:
        assert os.path.dirname(lib) == os.path.realpath(libs), (lib, bundled)
    else:  # a development build links the toolchain's libgomp
        assert not os.path.isdir(libs), (libs, os.listdir(libs))


@pytest.mark.parametrize("kwargs", [{}, {"user_api": "openmp"}])
def test_threadpool_limits_limit_blockprop(default_threads, kwargs):
    with threadpoolctl.threadpool_limits(limits=1, **kwargs):
        assert blockprop.get_num_threads() == 1
    assert blockprop.get_num_threads() == default_threads
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):  # NumPy's BLAS only
        assert blockprop.get_num_threads() == default_threads


def test_set_num_threads_overrides_threadpoolctl_until_reset(default_threads):
    with threadpoolctl.threadpool_limits(limits=1):
        blockprop.set_num_threads(3)
        assert blockprop.get_num_threads() == 3  # an explicit count wins
        blockprop.set_num_threads(0)
        assert blockprop.get_num_threads() == 1  # back to OpenMP's setting, which is limited
    assert blockprop.get_num_threads() == default_threads
    blockprop.set_num_threads(2)
    with threadpoolctl.threadpool_limits(limits=1):
        assert blockprop.get_num_threads() == 2


def test_openmp_limit_is_per_calling_thread_but_set_num_threads_is_global(default_threads):
    # OpenMP keeps the thread count per thread: threadpool_limits changes the calling thread's.
    seen = {}

    def worker(key):
        seen[key] = blockprop.get_num_threads()

    with threadpoolctl.threadpool_limits(limits=1):
        t = threading.Thread(target=worker, args=("limited",))
        t.start()
        t.join()
        blockprop.set_num_threads(1)
        t = threading.Thread(target=worker, args=("set",))
        t.start()
        t.join()
    assert seen == {"limited": default_threads, "set": 1}


_COUNT_THREADS = r"""
import os, numpy as np, blockprop, threadpoolctl
tasks = lambda: len(os.listdir("/proc/self/task"))
a = np.ones((384, 384), np.float32)
before = tasks()
with threadpoolctl.threadpool_limits(limits=1):
    blockprop.gemm(a, a)
limited = tasks()
blockprop.gemm(a, a)
print(before, limited, tasks(), blockprop.get_num_threads())
"""


def test_kernels_use_the_limited_thread_count():
    """OS threads of a fresh process: a GEMM under threadpool_limits(1) starts no OpenMP worker,
    one without it starts OMP_NUM_THREADS - 1 of them."""
    env = dict(os.environ, OMP_NUM_THREADS="4")
    out = subprocess.run([sys.executable, "-c", _COUNT_THREADS], capture_output=True, text=True,
                         env=env, check=True)
    before, limited, after, threads = map(int, out.stdout.split())
    assert threads == 4
    assert limited == before, out.stdout
    assert after == before + 3, out.stdout
