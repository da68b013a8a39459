"""The bfloat16 paths the kernel tests run on: portable under every instruction set this build runs
on here (it uses that set's float32 kernels), and each AVX-512 path the CPU has (AVX512-BF16,
AMX) under avx512. Shared by test_gemm_bf16 and test_dense_bf16."""
from __future__ import annotations

import contextlib
from typing import Iterator, List, Tuple

import blockprop

from conftest import ISAS

BF16_PATHS: List[Tuple[str, str]] = [(isa, "portable") for isa in ISAS] + [
    ("avx512", path) for path in blockprop.supported_bf16_paths() if path != "portable"]
PATH_IDS = [f"{isa}-{path}" for isa, path in BF16_PATHS]


@contextlib.contextmanager
def running_on(isa: str, path: str) -> Iterator[str]:
    """Runs the block on instruction set ``isa`` and bf16 path ``path`` (checked to be the one that
    runs), then restores both; yields a label for failure messages."""
    before = blockprop.isa(), blockprop.bf16_path()
    best = blockprop.supported_bf16_paths()[-1]
    blockprop.set_isa(isa)
    blockprop.set_bf16_path(path)
    try:
        assert blockprop.bf16_path() == path, (isa, path, blockprop.bf16_path())
        yield f"{isa}/{path}"
    finally:
        blockprop.set_isa(before[0])
        blockprop.set_bf16_path(before[1] if before[0] == "avx512" else best)
