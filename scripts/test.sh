#!/usr/bin/env bash
# The whole test suite from a fresh machine: system packages, the wheel built as a user would
# build it, installed into a clean virtual environment, pytest against that installed package
# (not the source tree, so a packaging mistake fails), then the C++ tests with ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PY=${PYTHON:-python3}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

echo "== system packages"
if [ ! -f /usr/include/gtest/gtest.h ] || ! command -v g++ >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq g++ libgtest-dev >/dev/null
fi
$PY -m pip install -q --disable-pip-version-check cmake ninja pybind11

echo "== build the wheel"
rm -rf build/wheelhouse
$PY -m pip wheel . --no-deps -q -w build/wheelhouse --disable-pip-version-check

echo "== install it into a fresh virtual environment"
rm -rf build/venv-test
$PY -m venv build/venv-test
wheel=$(ls build/wheelhouse/blockprop-*.whl)
# With every optional extra, and the CPU build of PyTorch for the weight-exchange tests.
build/venv-test/bin/pip install -q --disable-pip-version-check "$wheel[test,sklearn,mpi]" torch==2.13.0

echo "== pytest (installed package)"
# Run from build/ so that nothing in the source tree shadows the installed package.
(cd build && venv-test/bin/python -m pytest "$root/tests" -q -p no:cacheprovider "$@")

echo "== C++ tests (ctest)"
cmake -S . -B build/ctest -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKPROP_BUILD_PYTHON=OFF >/dev/null
cmake --build build/ctest
ctest --test-dir build/ctest --output-on-failure

# Further checks (sanitizers, fuzzing, type checking, ...): each scripts/checks/*.sh runs from the
# repository root with VENV pointing at the virtual environment that holds the installed wheel.
export VENV="$root/build/venv-test"
for check in scripts/checks/*.sh; do
  [ -e "$check" ] || continue
  echo "== $(basename "$check" .sh)"
  bash "$check"
done
