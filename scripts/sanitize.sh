#!/usr/bin/env bash
# The C++ tests and a subset of the Python parity tests under AddressSanitizer +
# UndefinedBehaviorSanitizer (BLOCKPROP_SANITIZE=ON). Any finding aborts the run (ASan aborts on
# the first error; UBSan is built with -fno-sanitize-recover).
#   scripts/sanitize.sh            # both
#   scripts/sanitize.sh cpp        # only the C++ tests (what CI runs: scripts/checks/sanitizers.sh)
#   scripts/sanitize.sh python     # only the Python module + pytest subset
# PYTHON (default python3, needs pybind11) builds the module; the tests run with $VENV/bin/python
# when VENV is set (as in CI: numpy, tqdm, pytest, hypothesis), else with PYTHON too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
what=${1:-all}
PY=${PYTHON:-python3}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# One build directory for both halves, so the core and its per-ISA kernels compile once.
# RelWithDebInfo: the optimised code paths (vectorised kernels) with line numbers in reports.
python_on=OFF
[ "$what" = cpp ] || python_on=ON
cmake -S . -B build/sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLOCKPROP_SANITIZE=ON \
  -DBLOCKPROP_BUILD_PYTHON=$python_on \
  -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
cmake --build build/sanitize

if [ "$what" = all ] || [ "$what" = cpp ]; then
  echo "== C++ tests under ASan + UBSan"
  ctest --test-dir build/sanitize --output-on-failure
fi

if [ "$what" = all ] || [ "$what" = python ]; then
  echo "== Python parity tests under ASan + UBSan"
  pkg=build/sanitize/pkg
  rm -rf "$pkg" && mkdir -p "$pkg"
  cp -r python/blockprop "$pkg/blockprop"
  cp build/sanitize/_core*.so "$pkg/blockprop/"
  # The interpreter is not instrumented: ASan's runtime must be loaded first, and CPython's own
  # allocations at exit are not ours to report (detect_leaks=0). allocator_may_return_null: an
  # allocation too large for ASan is NULL (NumPy's MemoryError), as without it, so the tests of
  # conversions that cannot be allocated (test_validation) check the binding, not ASan's abort.
  run_py=$PY
  [ -z "${VENV:-}" ] || run_py=$VENV/bin/python
  asan=$(gcc -print-file-name=libasan.so)
  ubsan=$(gcc -print-file-name=libubsan.so)
  tests=${SANITIZE_TESTS:-"tests/kernels/test_gemm.py tests/kernels/test_dense.py tests/kernels/test_activations.py tests/kernels/test_losses.py tests/kernels/test_optimizers.py tests/reliability/test_validation.py tests/training/test_fastpath.py tests/reliability/test_properties.py tests/reliability/test_refusals.py tests/reliability/test_battery.py"}
  (cd build && PYTHONPATH="$root/$pkg" LD_PRELOAD="$asan $ubsan" BLOCKPROP_PROPERTY_EXAMPLES=${BLOCKPROP_PROPERTY_EXAMPLES:-10} \
    ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0:allocator_may_return_null=1" \
    "$run_py" -m pytest $(for t in $tests; do echo "$root/$t"; done) -q -s -p no:cacheprovider -x)  # -s: a sanitizer report is printed, not swallowed by the capture
fi
echo "== sanitizers: no findings"
