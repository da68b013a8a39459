#!/usr/bin/env bash
# The main job from a fresh machine: install blockprop into a virtual environment (.venv) and train
# a network on the built-in data set (no download), printing accuracy and speed.
# Extra arguments go to `python -m blockprop train` (e.g. --data ../shared/data/mnist).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PY=${PYTHON:-python3}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
[ -x .venv/bin/python ] || $PY -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check .
.venv/bin/python -m blockprop train "$@"
