"""The robustness battery's cases and their runner (used by test_battery.py, run as a script).

``python battery_cases.py GROUP START`` runs the cases of GROUP from index START and prints one
line per case: ``START <i>`` before it, then ``RESULT <json>`` after. A case passes when it
returns a correct result, or raises a clear error: an exception of an expected type whose message
names the problem (for generated cases: the argument that was made bad). It fails on an unclear
exception (IndexError, AttributeError, ...), a wrong result or a changed model after a refused
call; a crash, abort or hang kills the process, which the parent sees as a START without RESULT.
"""
from __future__ import annotations

import faulthandler
import io
import json
import math
import os
import sys
import tempfile
import traceback
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

CASE_TIMEOUT = 120  # seconds before the watchdog dumps the stacks and kills the process (a hang)

# Exceptions that count as a clear refusal (with a non-trivial message).
CLEAR = (TypeError, ValueError, MemoryError, OverflowError, RuntimeError, OSError, SystemExit)


class WrongAnswer(AssertionError):
    """A call returned, but not the correct result."""


Case = Tuple[str, Callable[[], Any], Tuple[str, ...]]  # (name, thunk, words the message must hold)


# --- bad values -----------------------------------------------------------------------------
def _huge(dtype, ndim: int) -> np.ndarray:
    """A zero-stride view with an enormous logical size (2^59 elements) in one element of memory."""
    base = np.ones(1, dtype)
    shape = (2 ** 29, 2 ** 30) if ndim == 2 else (2 ** 59,)
    return np.lib.stride_tricks.as_strided(base, shape=shape, strides=(0,) * ndim, writeable=False)


def _unaligned(v: np.ndarray) -> np.ndarray:
    buf = np.zeros(v.nbytes + 1, np.uint8)
    u = buf[1:].view(v.dtype).reshape(v.shape)
    u[...] = v
    return u


def bad_arrays(v: np.ndarray) -> Iterator[Tuple[str, Any, bool]]:
    """(label, value, plausible) variants of a valid array ``v``; ``plausible`` values may
    legitimately be accepted (then the result must be right), the others must be refused."""
    yield "None", None, False
    yield "str", "abc", False
    yield "bytes", b"\x00\x01", False
    yield "dict", {"a": 1}, False
    yield "scalar", 1.5, v.ndim == 0
    yield "list", v.tolist(), True
    for dt in ("int32", "int64", "bool", "uint8", "float16", "complex64", "complex128"):
        yield f"dtype-{dt}", v.astype(dt), dt in ("int32", "int64", "uint8", "bool")
    yield "dtype-object", v.astype(object), False
    yield "object-strings", np.full(v.shape, "x", dtype=object), False
    yield "str-array", np.full(v.shape, "x"), False
    yield "big-endian", v.astype(v.dtype.newbyteorder(">")), True
    yield "other-float", v.astype(np.float64 if v.dtype == np.float32 else np.float32), True
    if v.ndim >= 1:
        yield "ndim-1", v[0], False
        yield "ndim+1", v[None], False
        yield "ndim+1-end", v[..., None], False
        yield "empty-rows", v[:0], True
        yield "one-row-fewer", v[:-1], False
        yield "reversed", v[::-1], True
        yield "stride-2", np.repeat(v, 2, axis=0)[::2], True
        yield "unaligned", _unaligned(v), True
        yield "readonly", _readonly(v), True
        yield "huge", _huge(v.dtype, v.ndim), False
        yield "subclass-lying-copy", v.view(_LyingArray), True
    if v.ndim == 2:
        yield "ndim-0", v[0, 0], False
        yield "ndim-3", v[None, None], False
        yield "empty-cols", v[:, :0], True
        yield "one-col-fewer", v[:, :-1], False
        yield "transposed", v.T, v.shape[0] == v.shape[1]
        yield "fortran", np.asfortranarray(v), True
        yield "col-stride-2", np.repeat(v, 2, axis=1)[:, ::2], True
        yield "zero-stride-rows", np.broadcast_to(v[:1], v.shape), True
        yield "byte-stride-odd", _odd_strides(v), True
    for label, fill in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        if v.dtype.kind == "f" and v.size:
            w = v.copy()
            w.flat[0] = fill
            yield label, w, True
    if v.dtype == np.float32 and v.size:
        # Finite as given, infinite once converted to the float32 of the call (y of an MSE fit
        # trained on inf: checked before the conversion, not after).
        w = v.astype(np.float64)
        w.flat[0] = 1e39
        yield "float64-beyond-float32", w, True
    if v.dtype.kind == "f" and v.size:
        yield "max-float", np.full_like(v, np.finfo(v.dtype).max), True
        yield "subnormal", np.full_like(v, np.finfo(v.dtype).smallest_subnormal), True


class _LyingArray(np.ndarray):
    """An ndarray subclass whose copy/astype/reshape/__array__ hand back an array of another dtype
    and shape: a binding that trusts them reads or writes out of bounds (gemm once aborted with
    heap corruption). The data itself is valid, so the result must be the correct one."""

    def copy(self, *args, **kwargs):
        return np.zeros((1, 1), np.float16)

    def astype(self, *args, **kwargs):
        return np.zeros((1,), np.int8)

    def reshape(self, *args, **kwargs):
        return np.zeros((1,), np.float64)

    def __array__(self, *args, **kwargs):
        return np.zeros((1, 1), np.float64)


HUGE_ROWS = 2 ** 33  # rows of a zero-stride view whose copy (≥ 32 GiB) cannot be allocated under AS_LIMIT


def _huge_rows(v: np.ndarray) -> np.ndarray:
    return np.broadcast_to(v[:1], (HUGE_ROWS, *v.shape[1:]))


def _readonly(v: np.ndarray) -> np.ndarray:
    w = v.copy()
    w.setflags(write=False)
    return w


def _odd_strides(v: np.ndarray) -> np.ndarray:
    """A view whose byte strides are not a multiple of the item size (a packed record field)."""
    rec = np.zeros(v.shape, dtype=[("pad", "u1"), ("f", v.dtype)])
    rec["f"] = v
    return rec["f"]


BAD_NUMBERS: List[Tuple[str, Any]] = [
    ("nan", float("nan")), ("inf", float("inf")), ("-inf", -float("inf")), ("negative", -1.0),
    ("zero", 0.0), ("huge-int", 2 ** 70), ("1e308", 1e308), ("str", "0.1"), ("None", None),
    ("list", [0.1]), ("complex", 1j), ("bool", True), ("np-nan32", np.float32("nan")),
    ("array", np.ones(3)),
]
BAD_FLAGS: List[Tuple[str, Any]] = [("str", "yes"), ("two", 2), ("None", None), ("np-bool", np.bool_(True)),
                                    ("array", np.ones(2)), ("float-nan", float("nan"))]
BAD_NAMES: List[Tuple[str, Any]] = [("upper", "RELU"), ("empty", ""), ("softmax", "softmax"), ("None", None),
                                    ("int", 3), ("bytes", b"relu"), ("list", ["relu"])]
# precision= of the kernels: names that are not one, and bfloat16 for float64 arrays (added per dtype).
BAD_PRECISIONS: List[Tuple[str, Any]] = [("bf16", "bf16"), ("upper", "BFLOAT16"), ("empty", ""),
                                         ("None", None), ("int", 16), ("bytes", b"bfloat16"),
                                         ("dtype", np.float32), ("list", ["bfloat16"])]


# --- comparing to the reference ---------------------------------------------------------------
def _same(got: Any, want: Any, what: str, work: Any = None) -> None:
    """got == want up to the rounding of the working precision ``work`` (default: got's dtype).
    A NaN reference may come out as ±inf: both say that the input overflowed."""
    if isinstance(want, tuple):
        if not isinstance(got, tuple) or len(got) != len(want):
            raise WrongAnswer(f"{what}: got {type(got).__name__}, want a tuple of {len(want)}")
        for i, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{what}[{i}]", work)
        return
    if want is None or got is None:
        if (want is None) != (got is None):
            raise WrongAnswer(f"{what}: got {got!r}, want {want!r}")
        return
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        raise WrongAnswer(f"{what}: shape {g.shape}, want {w.shape}")
    if g.size == 0:
        return
    dtype = np.dtype(work) if work is not None else np.asarray(got).dtype
    tol = 1e-4 if dtype == np.float32 else 1e-9
    big = np.maximum(np.abs(w), 1.0)
    ok = (np.isclose(g, w, rtol=tol, atol=0, equal_nan=True) | (np.abs(g - w) <= tol * big)
          | (np.isinf(w) & (g == w)) | (np.isnan(w) & ~np.isfinite(g)))
    # float32 overflow of a huge-but-finite float64 reference value is the same answer.
    if dtype == np.float32:
        ok |= np.isinf(g) & (np.abs(w) > np.finfo(np.float32).max / 2) & (np.sign(g) == np.sign(w))
    if not ok.all():
        i = np.flatnonzero(~ok.reshape(-1))[0]
        raise WrongAnswer(f"{what}: shape {g.shape} dtype {dtype}: element {i} is {g.reshape(-1)[i]!r}, "
                          f"want {w.reshape(-1)[i]!r} ({int((~ok).sum())} differ)")


def _snapshot(args: List[Any], kwargs: Dict[str, Any]):
    """Copies of the arguments as the kernel saw them (the reference must not see later writes)."""
    copy = lambda a: np.array(a) if isinstance(a, np.ndarray) else a
    return [copy(a) for a in args], {k: copy(v) for k, v in kwargs.items()}


# --- kernels ------------------------------------------------------------------------------------
def _kernel_specs(dtype) -> List[Tuple[str, List[str], Dict[str, Any], List[int], Dict[str, List]]]:
    """(kernel, array-argument names, valid arguments, indices written in place, scalar variants)."""
    rng = np.random.default_rng(0)
    r = lambda *s: rng.standard_normal(s).astype(dtype)
    x, W, b, dy = r(4, 3), r(5, 3), r(5), r(4, 5)
    y = np.tanh(r(4, 5))
    p = lambda *s: np.abs(r(*s)) + 0.1
    labels = np.array([0, 4, 2, 1], np.int64)
    t = (rng.random((4, 5)) > 0.5).astype(dtype)
    precisions = BAD_PRECISIONS + ([("bfloat16-float64", "bfloat16")] if dtype == np.float64 else [])
    flags = {"trans_a": BAD_FLAGS, "trans_b": BAD_FLAGS, "alpha": BAD_NUMBERS, "beta": BAD_NUMBERS,
             "precision": precisions}
    return [
        ("gemm", ["a", "b"], {"a": r(4, 3), "b": r(3, 5)}, [], flags),
        ("gemm", ["a", "b", "out"], {"a": r(4, 3), "b": r(3, 5), "out": r(4, 5), "beta": 0.5}, [2], {}),
        ("dense_forward", ["x", "W", "b"], {"x": x, "W": W, "b": b, "activation": "relu"}, [],
         {"activation": BAD_NAMES, "precision": precisions}),
        ("dense_backward", ["x", "W", "dy", "y"], {"x": x, "W": W, "dy": dy, "y": y, "activation": "tanh"}, [],
         {"activation": BAD_NAMES, "need_dx": BAD_FLAGS, "precision": precisions}),
        ("relu", ["x"], {"x": r(4, 5)}, [], {}),
        ("relu_backward", ["dy", "y"], {"dy": dy, "y": np.maximum(y, 0)}, [], {}),
        ("sigmoid", ["x"], {"x": r(4, 5)}, [], {}),
        ("sigmoid_backward", ["dy", "y"], {"dy": dy, "y": 1 / (1 + np.exp(-y))}, [], {}),
        ("tanh", ["x"], {"x": r(4, 5)}, [], {}),
        ("tanh_backward", ["dy", "y"], {"dy": dy, "y": y}, [], {}),
        ("softmax", ["x"], {"x": r(4, 5)}, [], {}),
        ("softmax_backward", ["dy", "y"], {"dy": dy, "y": np.full((4, 5), 0.2, dtype)}, [], {}),
        ("mse_loss", ["pred", "target"], {"pred": r(4, 5), "target": r(4, 5)}, [], {}),
        ("softmax_cross_entropy", ["logits", "labels"], {"logits": r(4, 5), "labels": labels}, [], {}),
        ("binary_cross_entropy", ["logits", "targets"], {"logits": r(4, 5), "targets": t}, [], {}),
        ("sgd_step", ["param", "grad", "velocity"],
         {"param": r(5, 3), "grad": r(5, 3), "velocity": r(5, 3), "lr": 0.1, "momentum": 0.9}, [0, 2],
         {"lr": BAD_NUMBERS, "momentum": BAD_NUMBERS, "nesterov": BAD_FLAGS, "weight_decay": BAD_NUMBERS}),
        ("count_nonfinite", ["x"], {"x": r(4, 5)}, [], {}),
        ("adam_step", ["param", "grad", "m", "v"],
         {"param": r(5, 3), "grad": r(5, 3), "m": r(5, 3), "v": p(5, 3), "step": 3, "lr": 0.01}, [0, 2, 3],
         {"step": BAD_NUMBERS + [("step-0", 0), ("float-step", 1.5), ("int64-max", 2 ** 63 - 1)],
          "lr": BAD_NUMBERS, "beta1": BAD_NUMBERS, "beta2": BAD_NUMBERS, "eps": BAD_NUMBERS,
          "weight_decay": BAD_NUMBERS, "decoupled_weight_decay": BAD_FLAGS}),
    ]


def _copy_for_reference(v: Any) -> Any:
    """A copy the kernel cannot write through; None for views too large to copy (no reference)."""
    if not isinstance(v, np.ndarray):
        return v
    if v.size > 1 << 20:
        raise MemoryError("too large to copy for the reference")
    # In float64 (as the kernel tests do), so that the reference's own float32 overflow does not
    # count against a kernel that accumulates in double.
    return np.array(v, dtype=np.float64) if v.dtype.kind == "f" else np.array(v)


# Inputs at the edge of the float range: where an intermediate overflows depends on the order of
# operations (float32 products, g² in Adam, ...), so the answer is not compared, only survived.
OVERFLOW_LABELS = ("max-float", "huge-int", "1e308")


def _call_kernel(name: str, kwargs: Dict[str, Any], written: List[str], compare: bool = True) -> Any:
    """Run kernel ``name`` and its reference on the same inputs; check the result if both give one."""
    import blockprop.kernels as K
    import blockprop.reference as R
    try:
        ref_kwargs: Optional[Dict[str, Any]] = {k: _copy_for_reference(v) for k, v in kwargs.items()}
    except MemoryError:
        ref_kwargs = None
    got = getattr(K, name)(**kwargs)
    if ref_kwargs is None or not compare:
        return "kernel-only"
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if name == "relu_backward":
                # The kernel selects (dx = y > 0 ? dy : 0, as PyTorch's threshold_backward), the
                # reference multiplies by the mask: they differ only for a NaN/inf dy where y <= 0.
                want = np.where(np.asarray(ref_kwargs["y"]) > 0, ref_kwargs["dy"], 0)
            else:
                want = getattr(R, name)(**ref_kwargs)
    except Exception:
        return "kernel-only"  # the reference cannot state an answer (e.g. a dtype it rejects)
    arrays = [np.asarray(v) for v in kwargs.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    work = np.float32 if any(a.dtype == np.float32 for a in arrays) else np.float64
    _same(got, want, name, work)
    for key in written:
        if isinstance(kwargs.get(key), np.ndarray):
            _same(kwargs[key], ref_kwargs[key], f"{name}: {key} after the update", work)
    return "ok"


def kernel_cases() -> Iterator[Case]:
    import blockprop
    for dtype in (np.float32, np.float64):
        dn = np.dtype(dtype).name
        for name, arrays, valid, written_idx, scalars in _kernel_specs(dtype):
            written = [arrays[i] for i in written_idx]
            yield (f"{name}/{dn}/valid", _kernel_thunk(name, dict(valid), written), ())
            for arg in arrays:
                base = valid[arg]
                variants = list(bad_arrays(base))
                if arg == "labels":
                    variants = list(_bad_labels(base, 5))
                for label, value, plausible in variants:
                    kw = dict(valid)
                    kw[arg] = value
                    if arg in written and isinstance(value, np.ndarray) and label in ("list",):
                        continue
                    # A refusal must name the argument, or the one it does not match, or say
                    # that the result cannot be allocated.
                    yield (f"{name}/{dn}/{arg}={label}", _kernel_thunk(name, kw, written, label),
                           (arg, *arrays, "allocate"))
            for arg, values in scalars.items():
                for label, value in values:
                    kw = dict(valid)
                    kw[arg] = value
                    yield (f"{name}/{dn}/{arg}={label}", _kernel_thunk(name, kw, written, label), (arg,))
            yield from _alias_cases(name, dn, valid, written)
            # Every argument sharing the batch dimension made huge together, so the shapes agree
            # and the call gets past the shape checks to a conversion that cannot be allocated
            # (softmax_cross_entropy's labels once read through the null array it returned).
            if name == "gemm" and "out" in arrays:
                # out overlapping a subclass whose copy() lies: the copy made to break the overlap
                # must be NumPy's own, of the right dtype and shape (this aborted with heap corruption).
                sq = np.random.default_rng(1).standard_normal((4, 4)).astype(dtype)
                kw = {"a": sq.view(_LyingArray), "b": sq.T.copy(), "out": sq, "beta": 0.5}
                yield (f"gemm/{dn}/out-overlaps-lying-subclass", _kernel_thunk(name, kw, ["out"]), ())
            rows = valid[arrays[0]].shape[0]
            kw = {k: (_huge_rows(v) if k in arrays and v.shape[0] == rows else v) for k, v in valid.items()}
            yield (f"{name}/{dn}/all-huge-rows", _kernel_thunk(name, kw, written),
                   (*arrays, "allocate", "read-only", "zero stride", "broadcast"))
        for isa in blockprop.supported_isas():
            yield (f"set_isa/{isa}", lambda isa=isa: blockprop.set_isa(isa), ())
            for name in ("relu", "softmax", "dense_forward", "mse_loss"):
                spec = [s for s in _kernel_specs(dtype) if s[0] == name][0]
                for label, value, _ in bad_arrays(spec[2][spec[1][0]]):
                    kw = dict(spec[2])
                    kw[spec[1][0]] = value
                    yield (f"{name}/{dn}/isa={isa}/{spec[1][0]}={label}",
                           _isa_thunk(isa, name, kw, label), (*spec[1], "allocate"))
    yield from _numpy_scalar_cases()
    for label, value in [("bogus", "sse9"), ("None", None), ("int", 3), ("empty", "")]:
        yield (f"set_isa={label}", lambda v=value: blockprop.set_isa(v), ())
    for label, value in [("bogus", "fp8"), ("None", None), ("int", 3), ("empty", ""), ("upper", "AMX")]:
        yield (f"set_bf16_path={label}", lambda v=value: blockprop.set_bf16_path(v), ())
    for label, value in [("negative", -1), ("huge", 2 ** 40), ("str", "2"), ("nan", float("nan")),
                         ("None", None), ("zero", 0), ("one", 1), ("int64-max", 2 ** 63 - 1)]:
        yield (f"set_num_threads={label}", lambda v=value: blockprop.set_num_threads(v), ())
    # Refused, not truncated, parsed or obeyed with hundreds of OS threads
    for label, value in [("float", 1.5), ("float-whole", 2.0), ("str", "2"), ("bool", True),
                         ("million", 10 ** 6), ("np-float", np.float64(2)), ("array", np.array([2]))]:
        yield (f"set_num_threads={label}/refused",
               lambda v=value: _refused(lambda: blockprop.set_num_threads(v)), ("set_num_threads",))
    yield ("set_num_threads=np.int64", lambda: _accepted(lambda: blockprop.set_num_threads(np.int64(2))), ())
    yield ("set_num_threads=restore", lambda: blockprop.set_num_threads(0), ())


def _numpy_scalar_cases() -> Iterator[Case]:
    """Every number argument given as a NumPy scalar must be taken as the same Python number
    (leaky_relu(x, np.float32(0.5)) raised TypeError). Values are exact in float32."""
    rng = np.random.default_rng(2)
    r = lambda *s: rng.standard_normal(s).astype(np.float32)
    x, p3 = r(4, 5), lambda: (r(5, 3), r(5, 3), r(5, 3), np.abs(r(5, 3)))
    table = [("leaky_relu", {"x": x}, {"negative_slope": 0.25}),
             ("leaky_relu_backward", {"dy": x, "y": x}, {"negative_slope": 0.25}),
             ("elu", {"x": x}, {"alpha": 0.5}), ("elu_backward", {"dy": x, "y": x}, {"alpha": 0.5}),
             ("gemm", {"a": r(4, 3), "b": r(3, 5), "out": r(4, 5)}, {"alpha": 0.5, "beta": 0.25}),
             ("sgd_step", dict(zip(("param", "grad", "velocity"), p3()[:3])),
              {"lr": 0.125, "momentum": 0.5, "weight_decay": 0.0625}),
             ("adam_step", dict(zip(("param", "grad", "m", "v"), p3())),
              {"step": 3, "lr": 0.125, "beta1": 0.5, "beta2": 0.75, "eps": 2.0 ** -20, "weight_decay": 0.0625})]
    for name, arrays, numbers in table:
        for arg, value in numbers.items():
            kinds = (np.int64, np.int32, np.uint8) if isinstance(value, int) else (np.float32, np.float64)
            for kind in kinds:
                yield (f"{name}/{arg}=np.{kind.__name__}",
                       lambda name=name, arrays=arrays, numbers=numbers, arg=arg, v=kind(value):
                       _same_with_numpy_scalar(name, arrays, numbers, arg, v), ())
    from blockprop import nn, optim, schedules
    makers = [("LeakyReLU", nn.LeakyReLU, {"negative_slope": 0.25}), ("ELU", nn.ELU, {"alpha": 0.5}),
              ("Dense", lambda **k: nn.Dense(3, 4, seed=0, **k), {"l1": 0.125, "l2": 0.25}),
              ("Dropout", lambda **k: nn.Dropout(seed=0, **k), {"p": 0.5}),
              ("BatchNorm1d", lambda **k: nn.BatchNorm1d(4, **k), {"eps": 2.0 ** -10, "momentum": 0.25}),
              ("SGD", optim.SGD, {"lr": 0.125, "momentum": 0.5, "weight_decay": 0.25}),
              ("Adam", optim.Adam, {"lr": 0.125, "eps": 2.0 ** -20, "weight_decay": 0.25}),
              ("StepDecay", lambda **k: schedules.StepDecay(**{"step_epochs": 2.0, **k}),
               {"step_epochs": 4.0, "gamma": 0.5}),
              ("CosineDecay", lambda **k: schedules.CosineDecay(**{"total_epochs": 8.0, **k}),
               {"total_epochs": 16.0, "min_factor": 0.25})]
    for cls_name, make, numbers in makers:
        for arg, value in numbers.items():
            def same(make=make, arg=arg, value=value):
                want, got = make(**{arg: value}), make(**{arg: np.float32(value)})
                if repr(want) != repr(got):
                    raise WrongAnswer(f"{got!r} != {want!r}")
                return "ok"
            yield (f"{cls_name}/{arg}=np.float32", lambda same=same: _accepted(same), ())


def _accepted(thunk: Callable[[], Any]) -> Any:
    try:
        return thunk()
    except CLEAR as e:
        raise WrongAnswer(f"a valid call was refused: {type(e).__name__}: {e}") from None


def _same_with_numpy_scalar(name: str, arrays: Dict[str, np.ndarray], numbers: Dict[str, Any], arg: str,
                            value: Any) -> str:
    import blockprop.kernels as K

    def run(v):
        a = {k: w.copy() for k, w in arrays.items()}
        out = _accepted(lambda: getattr(K, name)(**a, **dict(numbers, **{arg: v})))
        return out, a
    want, want_arrays = run(numbers[arg])
    got, got_arrays = run(value)
    if not (np.array_equal(np.asarray(want), np.asarray(got)) if want is not None else got is None):
        raise WrongAnswer(f"{name}({arg}={value!r}) differs from {arg}={numbers[arg]!r}")
    for k in want_arrays:
        if not np.array_equal(want_arrays[k], got_arrays[k]):
            raise WrongAnswer(f"{name}({arg}={value!r}) wrote {k} differently")
    return "ok"


def _kernel_thunk(name, kw, written, label=""):
    return lambda: _call_kernel(name, kw, written, compare=label not in OVERFLOW_LABELS)


def _isa_thunk(isa, name, kw, label):
    def run():
        import blockprop
        before = blockprop.isa()
        blockprop.set_isa(isa)
        try:
            return _call_kernel(name, kw, [], compare=label not in OVERFLOW_LABELS)
        finally:
            blockprop.set_isa(before)
    return run


def _bad_labels(labels: np.ndarray, classes: int) -> Iterator[Tuple[str, Any, bool]]:
    yield "None", None, False
    yield "str", "abc", False
    yield "too-big", np.array([0, classes, 1, 2]), False
    yield "negative", np.array([0, -1, 1, 2]), False
    yield "int64-max", np.array([0, 2 ** 63 - 1, 1, 2]), False
    yield "uint64-max", np.array([0, 2 ** 64 - 1, 1, 2], np.uint64), False
    yield "float", labels.astype(np.float64), False
    yield "float-frac", labels + 0.5, False
    yield "nan", np.array([0, np.nan, 1, 2]), False
    yield "bool", labels.astype(bool), False
    yield "int8", labels.astype(np.int8), True
    yield "uint16", labels.astype(np.uint16), True
    yield "2d", labels[:, None], False
    yield "one-fewer", labels[:-1], False
    yield "empty", labels[:0], False
    yield "reversed", labels[::-1], True
    yield "object", labels.astype(object), False
    yield "list", labels.tolist(), True
    yield "huge", np.lib.stride_tricks.as_strided(labels[:1], shape=(2 ** 59,), strides=(0,)), False


def _alias_cases(name: str, dn: str, valid: Dict[str, Any], written: List[str]) -> Iterator[Case]:
    """out= / in-place arguments sharing memory with an input: the result must be as if they did not."""
    dtype = np.dtype(dn)
    rng = np.random.default_rng(1)
    if name == "gemm" and "out" in valid:
        def alias(which, trans):
            def run():
                import blockprop.kernels as K
                import blockprop.reference as R
                a = rng.standard_normal((6, 6)).astype(dtype)
                b = rng.standard_normal((6, 6)).astype(dtype)
                want = R.gemm(a.copy(), b.copy(), trans, False, 1.0, 0.5, (a if which == "a" else b).copy())
                out = a if which == "a" else b
                got = K.gemm(a, b, trans, False, 1.0, 0.5, out)
                _same(got, want, f"gemm out={which} trans_a={trans}")
                return "ok"
            return run
        for which in ("a", "b"):
            for trans in (False, True):
                yield (f"gemm/{dn}/out-aliases-{which}/trans_a={trans}", alias(which, trans), ())

        def shifted():
            import blockprop.kernels as K
            import blockprop.reference as R
            buf = rng.standard_normal(60).astype(dtype)
            a = buf[:36].reshape(6, 6)
            out = buf[3:39].reshape(6, 6)  # overlaps a, shifted by 3 elements
            b = rng.standard_normal((6, 6)).astype(dtype)
            want = R.gemm(a.copy(), b, False, False, 1.0, 1.0, out.copy())
            got = K.gemm(a, b, False, False, 1.0, 1.0, out)
            _same(got, want, "gemm out overlapping a (shifted)")
            return "ok"
        yield (f"gemm/{dn}/out-overlaps-a-shifted", shifted, ())
    if name == "sgd_step":
        def same_buffer():
            import blockprop.kernels as K
            p = rng.standard_normal(12).astype(dtype)
            want = p - 0.1 * p
            K.sgd_step(p, p, lr=0.1)
            _same(p, want, "sgd_step grad is param")
            return "ok"

        def shifted():
            import blockprop.kernels as K
            buf = rng.standard_normal(13).astype(dtype)
            p, g = buf[1:], buf[:-1]
            want = p - 0.1 * g
            K.sgd_step(p, g, lr=0.1)
            _same(p, want, "sgd_step grad overlapping param (shifted)")
            return "ok"
        yield (f"sgd_step/{dn}/grad-is-param", same_buffer, ())
        yield (f"sgd_step/{dn}/grad-overlaps-param", shifted, ())
    if name == "adam_step":
        def m_is_v():
            import blockprop.kernels as K
            p = rng.standard_normal(8).astype(dtype)
            m = np.zeros(8, dtype)
            K.adam_step(p, np.ones(8, dtype), m, m, 1, lr=0.1)
            return "ok"  # no single right answer: it must only not crash or corrupt memory
        yield (f"adam_step/{dn}/m-is-v", m_is_v, ())


# --- nn layers, losses, Sequential --------------------------------------------------------------
def _models():
    from blockprop.nn import layers as L
    from blockprop.nn import normalization as N
    from blockprop.nn import Sequential
    from blockprop import optim

    def trained(dt="float32"):
        # Running statistics, Adam moments, a seed and a history: a refused call must keep them all.
        m = Sequential(L.Dense(3, 8, seed=1, dtype=dt), N.BatchNorm1d(8, dtype=dt), L.ReLU(),
                       L.Dense(8, 4, seed=2, dtype=dt))
        X = np.random.default_rng(5).standard_normal((8, 3))
        m.fit(X, np.arange(8) % 4, epochs=1, batch_size=4, optimizer=optim.Adam(0.01), seed=7, verbose=0)
        return m
    return {
        "fusable": lambda dt="float32": Sequential(L.Dense(3, 8, "relu", seed=1, dtype=dt), L.Dense(8, 4, seed=2, dtype=dt)),
        "python": lambda dt="float32": Sequential(L.Dense(3, 8, seed=1, dtype=dt), L.Tanh(), L.ReLU(),
                                                  L.Dense(8, 4, seed=2, dtype=dt), L.Softmax()),
        "batchnorm-adam": trained,
    }


def _weights(model) -> Dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.state_dict().items()}


def _model_snapshot(model) -> Dict[str, Any]:
    """Everything a call could change: weights and buffers (running statistics), optimizer state,
    which loss/optimizer/schedule/history objects the model holds, progress, mode."""
    opt = model.optimizer
    return {"weights": _weights(model),
            "optimizer-state": None if opt is None else opt.state_dict(),
            "objects": (id(model.loss), id(opt), id(model.schedule), id(model.history)),
            "progress": (model.progress.epochs, model.progress.updates, model.progress.seed),
            "training": model.training}


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b, equal_nan=True)
    return a == b


def _check_untouched(before: Dict[str, Any], model, method: str) -> None:
    after = _model_snapshot(model)
    for part in before:
        if part == "weights":
            for k in before[part]:
                if not np.array_equal(before[part][k], after[part][k], equal_nan=True):
                    raise WrongAnswer(f"{method} refused the input but changed {k}")
        elif not _same_state(before[part], after[part]):
            raise WrongAnswer(f"{method} refused the input but changed the model's {part}")


def _model_thunk(make, method: str, kwargs: Dict[str, Any], refused_untouched: bool = True,
                 check_finite: bool = True):
    """Call model.method(**kwargs); on a refusal the model must be exactly as before (a snapshot
    of everything it holds) and usable."""
    def run():
        model = make()
        before = _model_snapshot(model)
        try:
            getattr(model, method)(**kwargs)
        except CLEAR:
            if refused_untouched:
                _check_untouched(before, model, method)
            model.predict(np.zeros((2, 3), np.float32))  # still usable
            raise
        if method in ("fit", "train_step") and check_finite:
            for k, v in model.state_dict().items():
                if not np.isfinite(v).all():
                    raise WrongAnswer(f"{method} returned but left non-finite values in {k}")
        return "ok"
    return run


def nn_cases() -> Iterator[Case]:
    from blockprop import callbacks, nn, optim, schedules
    from blockprop.nn import layers as L
    from blockprop.nn import losses as Lo
    X = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    # Layer constructors
    counts = [("zero", 0), ("negative", -1), ("float", 1.5), ("str", "3"), ("bool", True), ("None", None),
              ("2**40", 2 ** 40), ("2**63", 2 ** 63), ("np-int", np.int64(3)), ("nan", float("nan"))]
    for arg in ("in_features", "out_features"):
        for label, v in counts:
            kw = {"in_features": 3, "out_features": 4, arg: v}
            yield (f"Dense/{arg}={label}", lambda kw=kw: L.Dense(**kw), (arg, "Dense"))
    for label, (i, o) in {"2**40x2**40": (2 ** 40, 2 ** 40), "2**20x2**20": (2 ** 20, 2 ** 20),
                          "2**17x2**17": (2 ** 17, 2 ** 17), "1x2**62": (1, 2 ** 62)}.items():
        yield (f"Dense/huge/{label}", lambda i=i, o=o: L.Dense(i, o), ("Dense",))
    for arg, values in {"activation": BAD_NAMES, "init": BAD_NAMES,
                        "dtype": [("int32", "int32"), ("complex", "complex64"), ("object", object),
                                  ("float16", "float16"), ("bogus", "bogus"), ("None", None)],
                        "seed": [("negative", -1), ("str", "x"), ("float", 1.5), ("huge", 2 ** 200)]}.items():
        for label, v in values:
            yield (f"Dense/{arg}={label}", lambda arg=arg, v=v: L.Dense(3, 4, **{arg: v}), ())
    # Layer forward/backward with bad inputs
    for layer_name, make in {"Dense": lambda: L.Dense(3, 4, "relu", seed=0), "ReLU": L.ReLU, "Tanh": L.Tanh,
                             "Sigmoid": L.Sigmoid, "Softmax": L.Softmax}.items():
        yield (f"{layer_name}/backward-before-forward",
               lambda make=make: make().backward(np.ones((8, 4), np.float32)), ())
        for label, v, _ in bad_arrays(X):
            def fwd(make=make, v=v):
                layer = make()
                out = layer.forward(v)
                layer.backward(np.ones_like(np.asarray(out)))
                return "ok"
            yield (f"{layer_name}/forward+backward/x={label}", fwd, ())
    d = L.Dense(3, 4, seed=0)
    for label, v, _ in bad_arrays(d.W.copy()):
        yield (f"Dense/W={label}", lambda v=v: setattr(L.Dense(3, 4, seed=0), "W", v), ("W",))
    for label, v, _ in bad_arrays(d.b.copy()):
        yield (f"Dense/b={label}", lambda v=v: setattr(L.Dense(3, 4, seed=0), "b", v), ("b",))
    # Sequential construction
    for label, args in {"empty": (), "not-a-layer": (3,), "only-activation": (L.ReLU(),),
                        "mismatch": (L.Dense(3, 4), L.Dense(5, 2)),
                        "mixed-dtype": (L.Dense(3, 4), L.Dense(4, 2, dtype="float64")),
                        "nested": ([L.Dense(3, 4)], L.Dense(4, 2)), "None": (None,)}.items():
        yield (f"Sequential/{label}", lambda args=args: nn.Sequential(*args), ())
    # Losses on their own
    for loss_name in ("cross_entropy", "mse", "bce", "CrossEntropy", "bogus", None, 3):
        yield (f"get_loss={loss_name!r}", lambda n=loss_name: Lo.get_loss(n), ())
    # fit / train_step / evaluate / predict*, with one argument made bad at a time
    models = _models()
    for model_name, make in models.items():
        yield (f"{model_name}/fit/valid", _model_thunk(make, "fit", {"X": X, "y": y, "epochs": 2, "verbose": 0,
                                                                     "seed": 0, "batch_size": 3}), ())
        for label, v, _ in bad_arrays(X):
            for method in ("fit", "train_step", "evaluate", "predict", "predict_proba", "predict_classes"):
                kw = {"X": v}
                if method in ("fit", "train_step", "evaluate"):
                    kw["y"] = y[:len(v)] if isinstance(v, np.ndarray) and v.ndim == 2 and len(v) <= len(y) else y
                if method == "fit":
                    kw.update(verbose=0, seed=0)
                # Inputs near the float max overflow the forward pass: training diverges (the
                # history shows it) as with any library; only surviving is checked.
                yield (f"{model_name}/{method}/X={label}",
                       _model_thunk(make, method, kw, check_finite=label not in OVERFLOW_LABELS), ("X",))
        for label, v, _ in list(_bad_labels(y, 4)) + [("onehot-wrong-width", np.eye(8, 3), False),
                                                      ("onehot", np.eye(4)[y], True)]:
            for method in ("fit", "train_step", "evaluate"):
                kw = {"X": X, "y": v}
                if method == "fit":
                    kw.update(verbose=0, seed=0)
                yield (f"{model_name}/{method}/y={label}", _model_thunk(make, method, kw), ("y",))
        for label, v in [("mse-wrong-width", np.zeros((8, 3))), ("mse-nan", np.full((8, 4), np.nan)),
                         ("bce-2", np.full((8, 4), 2.0))]:
            loss = "mse" if label.startswith("mse") else "bce"
            yield (f"{model_name}/fit/{label}", _model_thunk(make, "fit", {"X": X, "y": v, "loss": loss,
                                                                          "verbose": 0}), ("y", "target"))
        # MSE targets (and validation targets) that overflow only in the model's dtype
        for label, v, _ in bad_arrays(np.zeros((8, 4), np.float32)):
            if label in ("float64-beyond-float32", "max-float", "other-float", "big-endian", "reversed"):
                for method, kw in [("fit", {"X": X, "y": v, "loss": "mse", "verbose": 0}),
                                   ("evaluate", {"X": X, "y": v, "loss": "mse"}),
                                   ("train_step", {"X": X, "y": v, "loss": "mse"}),
                                   ("fit", {"X": X, "y": np.zeros((8, 4)), "loss": "mse", "verbose": 0,
                                            "validation_data": (X, v)})]:
                    val = "validation_data" in kw
                    yield (f"{model_name}/{method}{'/val' if val else ''}/mse-y={label}",
                           _model_thunk(make, method, kw, check_finite=label != "max-float"),
                           ("y_val",) if val else ("y",))
        fit_args = {
            "epochs": [("negative", -1), ("float", 1.5), ("str", "2"), ("None", None), ("nan", float("nan")),
                       ("bool", True), ("zero", 0)],
            "batch_size": [("zero", 0), ("negative", -3), ("float", 2.5), ("huge", 2 ** 62), ("None", None),
                           ("str", "8"), ("bool", True)],
            "loss": [("bogus", "bogus"), ("int", 3), ("class", Lo.MSELoss)],
            "optimizer": [("bogus", "rmsprop"), ("int", 3), ("class", optim.SGD), ("None", None)],
            "schedule": [("int", 3), ("str", "cosine"), ("nan-returning", lambda e: float("nan")),
                         ("negative-returning", lambda e: -1.0), ("raising", _raising_schedule),
                         ("str-returning", lambda e: "x"),
                         # fail only after some updates: refused before the first one all the same
                         ("nan-in-epoch-2", lambda e: 1.0 if e < 1.5 else float("nan")),
                         ("ExponentialDecay(1e300)", schedules.ExponentialDecay(1e300)),
                         ("StepDecay(5e-324)", schedules.StepDecay(5e-324)),
                         ("StepDecay(1e-3,gamma=10)", schedules.StepDecay(1e-3, gamma=10))],
            "validation_data": [("single", (X,)), ("wrong-features", (X[:, :2], y)), ("None-pair", (None, None)),
                                ("str", "val"), ("wrong-labels", (X, y + 10)), ("triple", (X, y, y))],
            "seed": [("negative", -1), ("str", "x"), ("float", 1.5), ("huge", 2 ** 200), ("nan", float("nan"))],
            "verbose": [("str", "yes"), ("negative", -1), ("big", 7)],
            "shuffle": [("str", "no"), ("None", None)],
        }
        for arg, values in fit_args.items():
            for label, v in values:
                kw = {"X": X, "y": y, "verbose": 0, "seed": 0, arg: v}
                if arg == "schedule":
                    kw["epochs"] = 3
                expect = {"schedule": ("schedule", "learning rate", "lr"), "verbose": (), "shuffle": (),
                          "optimizer": ("optimizer",), "loss": ("loss",),
                          "validation_data": ("validation_data", "X_val", "y_val")}.get(arg, (arg,))
                yield (f"{model_name}/fit/{arg}={label}", _model_thunk(make, "fit", kw), expect)
        for label, v in BAD_NUMBERS:
            yield (f"{model_name}/train_step/lr={label}",
                   _model_thunk(make, "train_step", {"X": X, "y": y, "lr": v},
                                check_finite=label not in OVERFLOW_LABELS), ("lr",))
            yield (f"{model_name}/fit/optimizer=SGD(lr={label})",
                   lambda v=v: optim.SGD(lr=v), ("lr",))
        for method in ("evaluate", "predict", "predict_proba", "predict_classes"):
            for label, v in [("zero", 0), ("negative", -1), ("float", 1.5), ("None", None)]:
                kw = {"X": X, "batch_size": v}
                if method == "evaluate":
                    kw["y"] = y
                yield (f"{model_name}/{method}/batch_size={label}", _model_thunk(make, method, kw), ("batch_size",))
        yield (f"{model_name}/load_state_dict/bad", lambda make=make: make().load_state_dict({"0.W": 1}), ())
        for label in ("str", "complex", "object", "wrong-shape"):
            # only the last entry is bad: the earlier ones must not have been written
            def bad_last(make=make, label=label):
                sd = {k: v + 1 for k, v in make().state_dict().items()}
                last = list(sd)[-1]
                obj = sd[last].astype(object)
                obj.flat[-1] = None
                sd[last] = {"str": np.full(sd[last].shape, "x"), "complex": sd[last] + 1j, "object": obj,
                            "wrong-shape": sd[last][..., :1]}[label]
                return sd
            yield (f"{model_name}/load_state_dict/bad-last={label}",
                   _model_thunk(make, "load_state_dict", {"state": bad_last()}), ())
        yield (f"{model_name}/fit/ModelCheckpoint-missing-dir",
               _model_thunk(make, "fit", {"X": X, "y": y, "verbose": 0, "seed": 3, "optimizer": optim.SGD(0.1),
                                          "callbacks": [callbacks.ModelCheckpoint("/nonexistent-dir/m.npz")]}),
               ("ModelCheckpoint",))
        yield (f"{model_name}/load_state_dict/wrong-shape",
               lambda make=make: make().load_state_dict({k: np.zeros(3) for k in make().state_dict()}), ())
        yield (f"{model_name}/astype=int", lambda make=make: make().astype("int32"), ())
    # float64 models take float32 data (converted) and vice versa
    for dt in ("float32", "float64"):
        for model_name, make in models.items():
            yield (f"{model_name}/{dt}/fit/X=float64", _model_thunk(lambda make=make, dt=dt: make(dt), "fit",
                                                                   {"X": X.astype(np.float64), "y": y, "verbose": 0}), ())
    # Optimizers and schedules on their own
    for label, v in BAD_NUMBERS:
        yield (f"SGD/momentum={label}", lambda v=v: optim.SGD(momentum=v), ("momentum",))
        yield (f"SGD/weight_decay={label}", lambda v=v: optim.SGD(weight_decay=v), ("weight_decay",))
        yield (f"Adam/lr={label}", lambda v=v: optim.Adam(lr=v), ("lr",))
        yield (f"Adam/eps={label}", lambda v=v: optim.Adam(eps=v), ("eps",))
        yield (f"Adam/beta1={label}", lambda v=v: optim.Adam(betas=(v, 0.999)), ("beta1",))
        yield (f"SGD.step/lr={label}", lambda v=v: optim.SGD().step({}, lr=v), ("lr",))
    for label, v in [("one", (1.0, 0.999)), ("short", (0.9,)), ("str", "ab"), ("None", None), ("int", 3)]:
        yield (f"Adam/betas={label}", lambda v=v: optim.Adam(betas=v), ("beta",))
    yield ("SGD/nesterov-no-momentum", lambda: optim.SGD(nesterov=True), ("nesterov",))
    for label, v in [("not-mapping", 3), ("not-param", {"w": np.ones(3)}), ("None", None)]:
        yield (f"SGD.step/params={label}", lambda v=v: optim.SGD().step(v), ())
    for label, sd in [("empty", {}), ("wrong-type", {"type": "Adam", "hyperparameters": {}, "state": {}}),
                      ("bad-hp", {"type": "SGD", "hyperparameters": {"lr": -1}, "state": {}}),
                      ("unknown-hp", {"type": "SGD", "hyperparameters": {"foo": 1}, "state": {}}),
                      ("state-not-dict", {"type": "SGD", "hyperparameters": {}, "state": 3})]:
        yield (f"SGD.load_state_dict/{label}", lambda sd=sd: optim.SGD().load_state_dict(sd), ())
    for label, v in BAD_NUMBERS:
        yield (f"StepDecay/step_epochs={label}", lambda v=v: schedules.StepDecay(v), ())
        yield (f"ExponentialDecay/gamma={label}", lambda v=v: schedules.ExponentialDecay(v), ())
        yield (f"CosineDecay/total_epochs={label}", lambda v=v: schedules.CosineDecay(v), ())
        yield (f"Warmup/warmup_epochs={label}", lambda v=v: schedules.Warmup(schedules.Constant(), v), ())
        yield (f"CosineDecay(10)(epoch={label})", lambda v=v: _finite(schedules.CosineDecay(10)(v), v), ())
    yield ("Warmup/not-a-schedule", lambda: schedules.Warmup(3, 1), ())
    for label, cfg in [("empty", {}), ("unknown", {"type": "Foo"}), ("bad-config", {"type": "StepDecay", "config": 3}),
                       ("missing-arg", {"type": "StepDecay", "config": {}}),
                       ("warmup-no-inner", {"type": "Warmup", "config": {"warmup_epochs": 1}}),
                       ("not-dict", 3), ("list", [1])]:
        yield (f"schedules.from_config/{label}", lambda cfg=cfg: schedules.from_config(cfg), ())


def _raising_schedule(epoch: float) -> float:
    raise ValueError("this schedule fails on purpose: the user's own error must come through")


def _finite(value: float, epoch: Any = 0.0) -> float:
    """A schedule's factor: finite for a finite epoch (NaN in, NaN out is fine)."""
    try:
        given = float(epoch)
    except (TypeError, ValueError):
        given = 0.0
    if not math.isfinite(value) and not math.isnan(given):
        raise WrongAnswer(f"schedule returned {value!r} with no error")
    return value


# --- files, data, gradcheck, CLI -----------------------------------------------------------------
def io_cases() -> Iterator[Case]:
    import blockprop
    from blockprop import data, gradcheck
    tmp = tempfile.mkdtemp(prefix="bp-battery-")
    model = _models()["fusable"]()
    good = os.path.join(tmp, "good.npz")
    model.save(good)
    paths = {"missing": os.path.join(tmp, "nope.npz"), "directory": tmp, "empty": _write(tmp, "empty", b""),
             "garbage": _write(tmp, "garbage", os.urandom(300)), "npy": _npy(tmp),
             "zip-no-header": _npz(tmp, "nohdr", a=np.ones(3)), "None": None, "int": 3,
             "pickle-npz": _pickle_npz(tmp), "dev-null": "/dev/null",
             "header-not-json": _npz(tmp, "badjson", __header__=np.frombuffer(b"{nope", np.uint8)),
             "header-str-array": _npz(tmp, "strhdr", __header__=np.array("x")),
             "header-2d": _npz(tmp, "hdr2d", __header__=np.zeros((2, 2), np.uint8)),
             "truncated": _write(tmp, "trunc", open(good, "rb").read()[:200])}
    for label, p in paths.items():
        yield (f"load/{label}", lambda p=p: blockprop.load(p), ())
    for label, p in _forged_models(tmp).items():  # each describes no valid model: must be refused
        yield (f"load/{label}", lambda p=p: _refused(lambda: blockprop.load(p)), (os.path.basename(p),))
    for label, p in [("directory", tmp), ("missing-dir", os.path.join(tmp, "no", "x.npz")), ("None", None),
                     ("int", 3)]:
        yield (f"save/{label}", lambda p=p: _models()["fusable"]().save(p), ())
    # IDX
    idx = {"missing": os.path.join(tmp, "nope.idx"), "directory": tmp, "empty": _write(tmp, "e.idx", b""),
           "magic": _write(tmp, "m.idx", b"\x01\x00\x08\x01\x00\x00\x00\x01\x05"),
           "type": _write(tmp, "t.idx", b"\x00\x00\x07\x01\x00\x00\x00\x01\x05"),
           "ndim0": _write(tmp, "n0.idx", b"\x00\x00\x08\x00"),
           "huge-dims": _write(tmp, "h.idx", b"\x00\x00\x0e\x03" + b"\xff\xff\xff\xff" * 3),
           "truncated": _write(tmp, "tr.idx", b"\x00\x00\x08\x01\x00\x00\x00\x09\x05"),
           "trailing": _write(tmp, "tg.idx", b"\x00\x00\x08\x01\x00\x00\x00\x01\x05\x06"),
           "zero-size": _write(tmp, "z.idx", b"\x00\x00\x08\x02\x00\x00\x00\x00\x00\x00\x00\x05"),
           "gzip-garbage": _write(tmp, "g.idx.gz", b"\x1f\x8b" + os.urandom(50)),
           "gzip-bomb-header": _gzip(tmp, b"\x00\x00\x08\x01\xff\xff\xff\xff"),
           "dev-null": "/dev/null", "None": None, "int": 3}
    for label, p in idx.items():
        yield (f"load_idx/{label}", lambda p=p: data.load_idx(p), ())
    for label, a in [("object", np.array([object()])), ("complex", np.ones(3, complex)), ("0-d", np.array(1.0)),
                     ("bool", np.ones(3, bool)), ("int64", np.ones(3, np.int64)), ("str", "abc"),
                     ("noncontig", np.arange(10, dtype=np.uint8)[::2])]:
        yield (f"save_idx/{label}", lambda a=a: _idx_roundtrip(tmp, a), ())
    for label, (d, kind) in {"missing": (os.path.join(tmp, "none"), "t10k"), "bad-kind": (tmp, "test"),
                             "None": (None, "t10k"), "file": (good, "t10k"),
                             "mismatched": (_mnist(tmp, 3, 2), "t10k"),
                             "float-labels": (_mnist(tmp, 2, 2, label_dtype=np.float32), "t10k")}.items():
        yield (f"load_mnist/{label}", lambda d=d, kind=kind: data.load_mnist(d, kind), ())
    bad_dirs = _bad_mnist_dirs(tmp)
    for label, d in bad_dirs.items():
        yield (f"load_mnist/{label}", lambda d=d: data.load_mnist(d), ("t10k",))
    for fn, args in [("make_spirals", [{"n_samples": 0}, {"n_samples": -1}, {"noise": float("nan")},
                                       {"n_classes": 0}, {"n_classes": 2 ** 40}, {"n_features": 1},
                                       {"n_samples": "10"}, {"turns": float("inf")}, {"n_samples": 2.5}]),
                     ("make_blobs", [{"n_samples": 0}, {"n_features": 0}, {"cluster_std": -1.0},
                                     {"cluster_std": float("nan")}, {"n_classes": -1}, {"n_samples": None}]),
                     ("train_test_split", [{"X": np.ones((5, 2)), "y": np.ones(4)},
                                           {"X": np.ones((1, 2)), "y": np.ones(1)},
                                           {"X": np.ones((5, 2)), "y": np.ones(5), "test_fraction": 1.5},
                                           {"X": np.ones((5, 2)), "y": np.ones(5), "test_fraction": float("nan")},
                                           {"X": 3, "y": 4}, {"X": None, "y": None}])]:
        for i, kw in enumerate(args):
            yield (f"{fn}/{i}:{sorted(kw)}", lambda fn=fn, kw=kw: _finite_data(getattr(data, fn)(**kw)), ())
    # gradcheck
    X = np.random.default_rng(0).standard_normal((4, 3))
    y = np.array([0, 1, 2, 3])
    for label, kw in [("eps-zero", {"eps": 0.0}), ("eps-negative", {"eps": -1e-6}), ("eps-nan", {"eps": float("nan")}),
                      ("eps-str", {"eps": "x"}), ("loss-None", {"loss": None}), ("loss-bogus", {"loss": "bogus"}),
                      ("X-nan", {"X": np.full((4, 3), np.nan)}), ("X-wrong", {"X": np.ones((4, 2))}),
                      ("y-range", {"y": np.array([0, 1, 2, 9])}), ("model-None", {"model": None}),
                      ("X-empty", {"X": np.ones((0, 3)), "y": np.ones(0, int)})]:
        args = {"model": _models()["python"](), "X": X, "y": y, "loss": "cross_entropy", **kw}
        yield (f"gradcheck/{label}", lambda args=args: _gradcheck_ok(gradcheck(**args)), ())
    # CLI: usage errors exit with status 2 and a message; never a traceback
    from blockprop import cli
    for argv in [[], ["bogus"], ["train", "--epochs", "-1"], ["train", "--epochs", "x"], ["train", "--lr", "nan"],
                 ["train", "--lr", "-1"], ["train", "--batch-size", "0"], ["train", "--layers", "a,b"],
                 ["train", "--layers", "0"], ["train", "--data", os.path.join(tmp, "none")],
                 ["train", "--data", good], ["train", "--save", os.path.join(tmp, "no", "dir", "m.npz")],
                 ["train", "--momentum", "2"], ["train", "--threads", "-1"], ["train", "--threads", "1000000"], ["info", "--bogus"],
                 ["train", "--layers", "999999999999,999999999999", "--epochs", "1"],
                 ["train", "--layers", "2,99999999999,3", "--epochs", "1"], ["train", "--layers", "2,4,2"],
                 ["train", "--train-size", "0"], ["train", "--epochs", "1", "--train-size", "5", "--quiet"],
                 ["--help"], ["train", "--dtype", "int8"], ["info"],
                 *(["train", "--data", d, "--epochs", "1", "--quiet"] for d in bad_dirs.values())]:
        yield (f"cli/{' '.join(argv) or '(none)'}", lambda argv=argv: _cli(cli, argv), ())


def _refused(thunk: Callable[[], Any]) -> Any:
    result = thunk()
    raise WrongAnswer(f"accepted: {result!r:.200}")


def _forged_models(tmp: str) -> Dict[str, str]:
    """Model files whose header or archive asks for more than they hold, or for values out of
    range (every header count, sizes of every layer kind, extra entries, deep nesting)."""
    import json
    import zipfile
    from blockprop import nn, optim
    m = nn.Sequential(nn.Dense(3, 4, seed=0), nn.BatchNorm1d(4), nn.LayerNorm(4), nn.Dense(4, 2, seed=1))
    X = np.random.default_rng(0).standard_normal((8, 3))
    m.fit(X, np.arange(8) % 2, epochs=1, batch_size=4, optimizer=optim.Adam(0.01), seed=1, verbose=0)
    src = os.path.join(tmp, "forge-src.npz")
    m.save(src)
    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["__header__"].tobytes())
    out: Dict[str, str] = {}

    def forge(label: str, edit: Callable[[Dict[str, Any]], None], extra: Optional[Dict[str, Any]] = None,
              raw_header: Optional[bytes] = None) -> None:
        h = json.loads(json.dumps(header))
        edit(h)
        a = dict(arrays, **(extra or {}))
        a["__header__"] = np.frombuffer(raw_header if raw_header is not None else json.dumps(h).encode(), np.uint8)
        out[f"forged/{label}"] = _npz(tmp, f"forged-{len(out)}", **a)

    for i, key in ((1, "num_features"), (2, "num_features"), (0, "in_features"), (3, "out_features")):
        for value in (2 ** 28, 2 ** 62, 0, -1):
            forge(f"layer{i}.{key}={value}", lambda h, i=i, key=key, value=value: h["layers"][i]["config"].update({key: value}))
    for field, values in (("updates", (2 ** 64, 2 ** 62, -1, 1.5)), ("epochs", (2 ** 63, -1)), ("seed", (2 ** 64, -3))):
        for value in values:
            forge(f"progress.{field}={value}", lambda h, f=field, v=value: h["progress"].update({f: v}))
    for value in (2 ** 63 - 1, 2 ** 62, -1, 0.5):
        forge(f"adam-step={value}", lambda h, v=value: h["optimizer"]["scalars"]["0.W"].update(step=v))
    forge("extra-entry", lambda h: None, extra={"junk": np.zeros(1000, np.float32)})
    forge("extra-param", lambda h: None, extra={"param/7.W": np.zeros(3, np.float32)})
    forge("nested-header", lambda h: None, raw_header=b"[" * 50000 + b"]" * 50000)
    # a zero-filled entry that deflates 1000x: refused from the archive's sizes, never inflated
    bomb = os.path.join(tmp, "forged-bomb.npz")
    with zipfile.ZipFile(out["forged/extra-entry"]) as z, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as w:
        for info in z.infolist():
            data = z.read(info)
            w.writestr(info.filename, data + bytes(1 << 24) if info.filename == "junk.npy" else data)
    out["forged/deflate-bomb"] = bomb
    return out


def _write(tmp: str, name: str, data: bytes) -> str:
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _npy(tmp: str) -> str:
    path = os.path.join(tmp, "one.npy")
    np.save(path, np.ones(3))
    return path


def _npz(tmp: str, name: str, **arrays) -> str:
    path = os.path.join(tmp, name + ".npz")
    np.savez(path, **arrays)
    return path


def _pickle_npz(tmp: str) -> str:
    path = os.path.join(tmp, "pickle.npz")
    np.savez(path, __header__=np.array([{"format": "blockprop"}], dtype=object))
    return path


def _gzip(tmp: str, payload: bytes) -> str:
    import gzip
    return _write(tmp, "bomb.idx.gz", gzip.compress(payload))


def _mnist(tmp: str, n_images: int, n_labels: int, label_dtype=np.uint8, images=None, labels=None) -> str:
    from blockprop import data
    d = tempfile.mkdtemp(dir=tmp)
    data.save_idx(os.path.join(d, "t10k-images-idx3-ubyte"),
                  np.zeros((n_images, 2, 2), np.uint8) if images is None else images)
    data.save_idx(os.path.join(d, "t10k-labels-idx1-ubyte"),
                  np.zeros(n_labels, label_dtype) if labels is None else labels)
    return d


def _bad_mnist_dirs(tmp: str) -> Dict[str, str]:
    """MNIST-shaped directories whose content is what is wrong (the CLI printed a traceback)."""
    imgs = np.random.default_rng(0).random((20, 2, 2))
    labels = np.arange(20, dtype=np.int8) % 3
    neg = labels.copy()
    neg[7] = -1
    nan, big = imgs.astype(np.float32), imgs.copy()
    nan[3, 1, 1] = np.nan
    big[5, 0, 0] = 1e39
    return {"labels-negative": _mnist(tmp, 0, 0, images=imgs.astype(np.float32), labels=neg),
            "images-nan": _mnist(tmp, 0, 0, images=nan, labels=labels),
            "images-float64-1e39": _mnist(tmp, 0, 0, images=big, labels=labels),
            "images-inf": _mnist(tmp, 0, 0, images=np.where(imgs > 0.9, np.inf, imgs), labels=labels)}


def _idx_roundtrip(tmp: str, a: Any) -> str:
    from blockprop import data
    path = os.path.join(tmp, "rt.idx")
    data.save_idx(path, a)
    back = data.load_idx(path)
    if not np.array_equal(back, np.asarray(a)):
        raise WrongAnswer(f"save_idx/load_idx round trip changed {a!r} into {back!r}")
    return "ok"


def _finite_data(result: Any) -> str:
    for part in result:
        if np.asarray(part).dtype.kind == "f" and not np.isfinite(part).all():
            raise WrongAnswer("returned non-finite data without an error")
    return "ok"


def _gradcheck_ok(errors: Dict[str, float]) -> str:
    bad = {k: v for k, v in errors.items() if not (v < 1e-4)}
    if bad:
        raise WrongAnswer(f"gradcheck returned without an error but reports {bad}")
    return "ok"


def _cli(cli, argv: List[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    except Exception as e:  # noqa: BLE001 - escaping main, it is a traceback for the user
        raise WrongAnswer(f"CLI {argv} raised {type(e).__name__}: {e} (a traceback, exit 1)") from None
    finally:
        sys.stdout, sys.stderr = old
    text = err.getvalue()
    if "Traceback" in text or "Traceback" in out.getvalue():
        raise WrongAnswer(f"CLI {argv} printed a traceback: {text[-400:]}")
    if code not in (0, None, 2, 1, 130):
        raise WrongAnswer(f"CLI {argv} exited with status {code!r}")
    if code == 2 and len(text.strip()) < 10:
        raise WrongAnswer(f"CLI {argv} exited 2 without saying why")
    return f"exit {code}"


GROUPS: Dict[str, Callable[[], Iterator[Case]]] = {"kernels": kernel_cases, "nn": nn_cases, "io": io_cases}


def _classify(thunk: Callable[[], Any], expect: Tuple[str, ...]) -> Dict[str, Any]:
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            detail = thunk()
        return {"outcome": "ok", "detail": str(detail)[:200]}
    except WrongAnswer as e:
        return {"outcome": "wrong", "detail": str(e)[:500]}
    except CLEAR as e:
        message = str(e)
        if isinstance(e, SystemExit) and e.code in (0, None, 2):
            return {"outcome": "refused", "detail": f"exit {e.code}"}
        if len(message) < 10:
            return {"outcome": "unclear", "detail": f"{type(e).__name__}: {message!r} (too short to say what is wrong)"}
        if expect and not any(word.lower() in message.lower() for word in expect):
            return {"outcome": "unclear",
                    "detail": f"{type(e).__name__}: {message[:300]} (does not name {' or '.join(expect)})"}
        return {"outcome": "refused", "detail": f"{type(e).__name__}: {message[:200]}"}
    except BaseException as e:  # KeyError, IndexError, AttributeError, ZeroDivisionError, ...
        return {"outcome": "unclear", "detail": f"{type(e).__name__}: {e!s:.300} "
                                                f"@ {traceback.format_exc(limit=-2)[-400:]}"}


AS_LIMIT = 4 << 30  # address-space limit of the runner, as the outside battery ran: huge copies fail


def main(group: str, start: int) -> None:
    faulthandler.enable()
    try:
        import resource
        # Not under AddressSanitizer: its shadow memory reserves terabytes of address space.
        if "asan" not in os.environ.get("LD_PRELOAD", ""):
            resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (ImportError, ValueError, OSError):
        pass  # not POSIX, or a lower limit already set
    cases = list(GROUPS[group]())
    print(f"COUNT {len(cases)}", flush=True)
    for i in range(start, len(cases)):
        name, thunk, expect = cases[i]
        print(f"START {i} {name}", flush=True)
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        result = _classify(thunk, expect)
        faulthandler.cancel_dump_traceback_later()
        print("RESULT " + json.dumps({"i": i, "name": name, **result}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
