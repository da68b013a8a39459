#!/usr/bin/env bash
# The C++ tests and a subset of the Python parity tests under AddressSanitizer +
# UndefinedBehaviorSanitizer (BLOCKPROP_SANITIZE=ON). Any finding aborts the run (ASan aborts on
# the first error; UBSan is built with -fno-sanitize-recover).
#   scripts/sanitize.sh            # both
#   scripts/sanitize.sh cpp        # only the C++ tests (what CI runs: scripts/checks/sanitizers.sh)
#   scripts/sanitize.sh python     # only the Python module + pytest subset
# PYTHON (default python3) must have numpy, pytest, hypothesis, tqdm and pybind11 installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
what=${1:-all}
PY=${PYTHON:-python3}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ "$what" = all ] || [ "$what" = cpp ]; then
  echo "== C++ tests under ASan + UBSan"
  # RelWithDebInfo: the optimised code paths (vectorised kernels) with line numbers in reports.
  cmake -S . -B build/sanitize-cpp -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBLOCKPROP_SANITIZE=ON -DBLOCKPROP_BUILD_PYTHON=OFF >/dev/null
  cmake --build build/sanitize-cpp
  ctest --test-dir build/sanitize-cpp --output-on-failure
fi

if [ "$what" = all ] || [ "$what" = python ]; then
  echo "== Python parity tests under ASan + UBSan"
  cmake -S . -B build/sanitize-py -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBLOCKPROP_SANITIZE=ON -DBLOCKPROP_BUILD_TESTS=OFF \
    -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
  cmake --build build/sanitize-py
  pkg=build/sanitize-py/pkg
  rm -rf "$pkg" && mkdir -p "$pkg"
  cp -r python/blockprop "$pkg/blockprop"
  cp build/sanitize-py/_core*.so "$pkg/blockprop/"
  # The interpreter is not instrumented: ASan's runtime must be loaded first, and CPython's own
  # allocations at exit are not ours to report (detect_leaks=0).
  asan=$(gcc -print-file-name=libasan.so)
  ubsan=$(gcc -print-file-name=libubsan.so)
  tests=${SANITIZE_TESTS:-"tests/test_gemm.py tests/test_dense.py tests/test_activations.py tests/test_losses.py tests/test_optimizers.py tests/test_validation.py tests/test_fastpath.py tests/test_properties.py"}
  (cd build && PYTHONPATH="$root/$pkg" LD_PRELOAD="$asan $ubsan" BLOCKPROP_PROPERTY_EXAMPLES=${BLOCKPROP_PROPERTY_EXAMPLES:-10} \
    ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
    "$PY" -m pytest $(for t in $tests; do echo "$root/$t"; done) -q -s -p no:cacheprovider -x)  # -s: a sanitizer report is printed, not swallowed by the capture
fi
echo "== sanitizers: no findings"
