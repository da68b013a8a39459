"""Run-time controls: BLOCKPROP_ISA at import, set_isa, thread count (and OMP_NUM_THREADS), the
thread-count independence of results, and the GIL being released inside kernels. Threads and
threadpoolctl: the OpenMP runtime blockprop's kernels run on is the one threadpoolctl sees and
limits; ``set_num_threads`` overrides both until ``set_num_threads(0)``; the kernels really use
that count."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import blockprop
from blockprop import _core

ALL_ISAS = ("generic", "avx2", "avx512")
SUPPORTED = blockprop.supported_isas()


def run_python(code, tmp_path, **env):
    """Runs code in a fresh interpreter (same PYTHONPATH) with extra environment variables."""
    full = dict(os.environ)
    for key in ("BLOCKPROP_ISA", "BLOCKPROP_BF16_PATH", "OMP_NUM_THREADS"):
        full.pop(key, None)
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=full,
                          capture_output=True, text=True, timeout=60)


def test_supported_isas_shape():
    """supported_isas lists known names, lowest first, always including generic; isa() is one."""
    assert SUPPORTED[0] == "generic"
    assert all(s in ALL_ISAS for s in SUPPORTED)
    assert list(SUPPORTED) == sorted(SUPPORTED, key=ALL_ISAS.index)
    assert blockprop.isa() in SUPPORTED


def test_default_isa_is_best(tmp_path):
    """Without BLOCKPROP_ISA the best supported instruction set is active."""
    r = run_python("import blockprop; print(blockprop.isa())", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == SUPPORTED[-1]


@pytest.mark.parametrize("name", SUPPORTED)
def test_env_selects_isa(name, tmp_path):
    """BLOCKPROP_ISA=<name> (any case, surrounding blanks) makes blockprop.isa() report it."""
    for value in (name, f"  {name.upper()} "):
        r = run_python("import blockprop; print(blockprop.isa())", tmp_path, BLOCKPROP_ISA=value)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == name


def test_env_unknown_isa_fails_at_import(tmp_path):
    """An unknown name is an ImportError mentioning BLOCKPROP_ISA, the name and the valid ones."""
    r = run_python("import blockprop", tmp_path, BLOCKPROP_ISA="sse9")
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "BLOCKPROP_ISA" in r.stderr and "sse9" in r.stderr
    assert "generic" in r.stderr


@pytest.mark.parametrize("name", [n for n in ALL_ISAS if n not in SUPPORTED])
def test_env_unsupported_isa_fails_at_import(name, tmp_path):
    """A known but unsupported instruction set is an ImportError saying it is not supported.
    (No parameters, so not run, on a CPU that supports all of them.)"""
    r = run_python("import blockprop", tmp_path, BLOCKPROP_ISA=name)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "not supported" in r.stderr


def test_set_isa_errors_and_round_trip():
    """set_isa switches and reports; an unknown name is a ValueError and changes nothing."""
    before = blockprop.isa()
    try:
        for name in SUPPORTED:
            blockprop.set_isa(name)
            assert blockprop.isa() == name
        with pytest.raises(ValueError, match="unknown instruction set"):
            blockprop.set_isa("neon")
        assert blockprop.isa() == SUPPORTED[-1]
        for name in ALL_ISAS:
            if name not in SUPPORTED:
                with pytest.raises(ValueError, match="not supported"):
                    blockprop.set_isa(name)
    finally:
        blockprop.set_isa(before)


def test_isas_agree(dtype):
    """Every ISA computes the same gemm to within rounding."""
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (70, 300)).astype(dtype), rng.uniform(-1, 1, (300, 50)).astype(dtype)
    before = blockprop.isa()
    try:
        results = []
        for name in SUPPORTED:
            blockprop.set_isa(name)
            results.append(blockprop.gemm(a, b))
    finally:
        blockprop.set_isa(before)
    tol = 64 * np.finfo(dtype).eps * np.sqrt(300) * (np.abs(a) @ np.abs(b))
    for r in results[1:]:
        assert (np.abs(r - results[0]) <= tol).all()


def test_set_get_num_threads():
    """set_num_threads(n) is reported by get_num_threads; 0 restores the default; n < 0 fails."""
    default = blockprop.get_num_threads()
    assert default >= 1
    try:
        for n in (1, 2, 3):
            blockprop.set_num_threads(n)
            assert blockprop.get_num_threads() == n
        blockprop.set_num_threads(0)
        assert blockprop.get_num_threads() == default
        with pytest.raises(ValueError, match="set_num_threads"):
            blockprop.set_num_threads(-1)
    finally:
        blockprop.set_num_threads(0)


def test_thread_limit_caps_only_the_calling_thread_and_nests():
    thread_limit = blockprop.thread_limit
    blockprop.set_num_threads(2)
    try:
        seen = {}

        def other():
            seen["other"] = blockprop.get_num_threads()

        with thread_limit(1):
            assert blockprop.get_num_threads() == 1
            t = threading.Thread(target=other)
            t.start()
            t.join()
            with thread_limit(3):  # a cap, not a count: never more than set_num_threads
                assert blockprop.get_num_threads() == 2
            assert blockprop.get_num_threads() == 1
        assert seen["other"] == 2 and blockprop.get_num_threads() == 2
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(ValueError, match="thread_limit"):
                with thread_limit(bad):
                    pass
        assert _core.thread_limit() == 0
    finally:
        blockprop.set_num_threads(0)


def test_set_num_threads_takes_only_a_bounded_integer():
    """1.5 and "2" were silently taken (truncated, parsed) and 10**6 accepted, a large GEMM then
    starting hundreds of threads (issue 20): an integer in [0, max_threads()] or an error."""
    before = blockprop.get_num_threads()
    try:
        for bad in (1.5, 2.0, "2", True, None, np.float32(2)):
            with pytest.raises(TypeError, match="set_num_threads: n must be an integer"):
                blockprop.set_num_threads(bad)
        limit = blockprop._runtime.max_threads()
        assert limit >= 8
        for bad in (10 ** 6, limit + 1, -1):
            with pytest.raises(ValueError, match="set_num_threads"):
                blockprop.set_num_threads(bad)
        assert blockprop.get_num_threads() == before  # refused: unchanged
        blockprop.set_num_threads(np.int64(2))
        assert blockprop.get_num_threads() == 2
        blockprop.set_num_threads(limit)
        assert blockprop.get_num_threads() == limit
    finally:
        blockprop.set_num_threads(0)


@pytest.mark.parametrize("omp", ["1", "3"])
def test_omp_num_threads_is_the_default(omp, tmp_path):
    """get_num_threads follows OMP_NUM_THREADS until set_num_threads overrides it."""
    code = ("import blockprop; print(blockprop.get_num_threads()); "
            "blockprop.set_num_threads(2); print(blockprop.get_num_threads())")
    r = run_python(code, tmp_path, OMP_NUM_THREADS=omp)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [omp, "2"]


def _thread_results(fn):
    """fn() with 1 and with 2 threads."""
    out = []
    try:
        for n in (1, 2):
            blockprop.set_num_threads(n)
            out.append(fn())
    finally:
        blockprop.set_num_threads(0)
    return out


@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
def test_threads_bit_identical_gemm(trans_a, trans_b, isa, dtype):
    """gemm with 1 and 2 threads gives bit-identical results (each element summed by one thread
    in a fixed order), on shapes big enough to be split."""
    rng = np.random.default_rng(1)
    m, n, k = 301, 517, 400
    a = rng.uniform(-1, 1, (k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.uniform(-1, 1, (n, k) if trans_b else (k, n)).astype(dtype)
    c0 = rng.uniform(-1, 1, (m, n)).astype(dtype)
    one, two = _thread_results(
        lambda: blockprop.gemm(a, b, trans_a, trans_b, 0.5, 2.0, out=c0.copy()))
    np.testing.assert_array_equal(one, two)


def test_threads_bit_identical_dense(isa, dtype):
    """dense_forward and dense_backward are bit-identical with 1 and 2 threads."""
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (128, 784)).astype(dtype)
    W = (rng.uniform(-1, 1, (128, 784)) * 0.06).astype(dtype)
    b = rng.uniform(-1, 1, 128).astype(dtype)
    dy = rng.uniform(-1, 1, (128, 128)).astype(dtype)

    def run():
        y = blockprop.dense_forward(x, W, b, "tanh")
        return (y,) + tuple(blockprop.dense_backward(x, W, dy, y, "tanh"))

    one, two = _thread_results(run)
    for r1, r2 in zip(one, two):
        np.testing.assert_array_equal(r1, r2)


def _long_call(kind):
    """A kernel call lasting roughly 0.3-1 s here (sized by timing a smaller one)."""
    rng = np.random.default_rng(3)

    def make(n):
        if kind == "gemm":
            a, b = rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))
            return lambda: blockprop.gemm(a, b)
        x, W = rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))
        return lambda: blockprop.dense_forward(x, W, None, "sigmoid")

    n = 300
    while True:
        f = make(n)
        t = time.perf_counter()
        f()
        dt = time.perf_counter() - t
        if dt >= 0.3 or n >= 3000:
            return f, dt
        n = min(3000, int(n * max(1.3, min(3.0, (0.5 / max(dt, 1e-4)) ** (1 / 3)))))


@pytest.mark.parametrize("kind", ["gemm", "dense_forward"])
def test_gil_released(kind):
    """While one thread is inside a long kernel call, another thread running pure Python keeps
    making progress: it records timestamps throughout the call, with no gap of more than half the
    call's duration (with the GIL held it would record none inside the call)."""
    before = blockprop.isa()
    blockprop.set_isa("generic")
    blockprop.set_num_threads(1)
    try:
        call, _ = _long_call(kind)
        started, done = threading.Event(), threading.Event()
        span = []

        def worker():
            started.set()
            t0 = time.perf_counter()
            call()
            span.extend([t0, time.perf_counter()])
            done.set()

        stamps = []
        th = threading.Thread(target=worker)
        th.start()
        started.wait()
        while not done.is_set():
            stamps.append(time.perf_counter())
        th.join()
    finally:
        blockprop.set_num_threads(0)
        blockprop.set_isa(before)
    t0, t1 = span
    dur = t1 - t0
    inside = [t for t in stamps if t0 + 0.1 * dur < t < t1 - 0.1 * dur]
    assert len(inside) > 100, f"{kind}: only {len(inside)} Python steps during a {dur:.3f}s call"
    points = [t0] + inside + [t1]
    gap = max(b - a for a, b in zip(points, points[1:]))
    assert gap < 0.5 * dur, f"{kind}: the other thread stalled {gap:.3f}s of a {dur:.3f}s call"

# Threads and threadpoolctl

@pytest.fixture
def threadpoolctl():
    """The threadpoolctl module: a test that takes it is skipped when it is not installed."""
    return pytest.importorskip("threadpoolctl", reason="threadpoolctl is not installed "
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


def test_threadpoolctl_lists_blockprops_openmp(threadpoolctl, default_threads):
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
def test_threadpool_limits_limit_blockprop(threadpoolctl, default_threads, kwargs):
    with threadpoolctl.threadpool_limits(limits=1, **kwargs):
        assert blockprop.get_num_threads() == 1
    assert blockprop.get_num_threads() == default_threads
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):  # NumPy's BLAS only
        assert blockprop.get_num_threads() == default_threads


def test_set_num_threads_overrides_threadpoolctl_until_reset(threadpoolctl, default_threads):
    with threadpoolctl.threadpool_limits(limits=1):
        blockprop.set_num_threads(3)
        assert blockprop.get_num_threads() == 3  # an explicit count wins
        blockprop.set_num_threads(0)
        assert blockprop.get_num_threads() == 1  # back to OpenMP's setting, which is limited
    assert blockprop.get_num_threads() == default_threads
    blockprop.set_num_threads(2)
    with threadpoolctl.threadpool_limits(limits=1):
        assert blockprop.get_num_threads() == 2


def test_openmp_limit_is_per_calling_thread_but_set_num_threads_is_global(threadpoolctl, default_threads):
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


def test_kernels_use_the_limited_thread_count(threadpoolctl):
    """OS threads of a fresh process: a GEMM under threadpool_limits(1) starts no OpenMP worker,
    one without it starts OMP_NUM_THREADS - 1 of them."""
    env = dict(os.environ, OMP_NUM_THREADS="4")
    out = subprocess.run([sys.executable, "-c", _COUNT_THREADS], capture_output=True, text=True,
                         env=env, check=True)
    before, limited, after, threads = map(int, out.stdout.split())
    assert threads == 4
    assert limited == before, out.stdout
    assert after == before + 3, out.stdout


# --- bfloat16 paths --------------------------------------------------------------------------------

def test_bf16_paths_shape():
    paths = blockprop.supported_bf16_paths()
    assert paths[0] == "portable" and paths == [p for p in ("portable", "avx512_bf16", "amx") if p in paths]
    assert ("avx512_bf16" in paths) <= ("avx512" in blockprop.supported_isas())


def test_default_bf16_path_is_best(tmp_path):
    r = run_python("import blockprop; print(blockprop.bf16_path(), blockprop.supported_bf16_paths()[-1])",
                   tmp_path)
    got, best = r.stdout.split()
    assert got == best


@pytest.mark.parametrize("name", ["portable", "avx512_bf16", "amx"])
def test_env_selects_bf16_path(name, tmp_path):
    """BLOCKPROP_BF16_PATH=<name> selects it at import when supported, else import fails naming it."""
    r = run_python("import blockprop; print(blockprop.bf16_path())", tmp_path,
                   BLOCKPROP_BF16_PATH=f" {name.upper()} ")
    if name in blockprop.supported_bf16_paths():
        assert r.returncode == 0 and r.stdout.strip() == name, r.stderr
    else:
        assert r.returncode != 0 and "BLOCKPROP_BF16_PATH" in r.stderr and name in r.stderr


def test_set_bf16_path_errors_and_isa_cap():
    """Unknown or unsupported names are ValueErrors that change nothing; below avx512 the path
    that runs is portable, and the one asked for comes back with avx512."""
    before_isa, before = blockprop.isa(), blockprop.bf16_path()
    with pytest.raises(ValueError, match="unknown bfloat16 path 'fp8'"):
        blockprop.set_bf16_path("fp8")
    assert blockprop.bf16_path() == before
    for name in ("avx512_bf16", "amx"):
        if name not in blockprop.supported_bf16_paths():
            with pytest.raises(ValueError, match="not supported on this CPU"):
                blockprop.set_bf16_path(name)
    best = blockprop.supported_bf16_paths()[-1]
    try:
        blockprop.set_bf16_path(best)
        for isa in blockprop.supported_isas():
            blockprop.set_isa(isa)
            assert blockprop.bf16_path() == (best if isa == "avx512" else "portable")
    finally:
        blockprop.set_isa(before_isa)
        blockprop.set_bf16_path(best)
