#!/usr/bin/env bash
# The main job from a fresh machine: install blockprop into a virtual environment (.venv) and train
# a network on the built-in data set (no download), printing accuracy and speed.
# Extra arguments go to `python -m blockprop train` (e.g. --data ../shared/data/mnist).
# The install (~30 s, compiling the C++ core) runs only on the first call and after a source file
# changed; otherwise training starts at once. Installs nothing outside .venv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PY=${PYTHON:-python3}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

# The one argument worth checking before a build: a wrong --data path would otherwise fail only
# after it. Everything else is checked by the command itself, within a second once installed.
args=("$@")
for i in "${!args[@]}"; do
  case ${args[$i]} in
    --data) dir=${args[$((i + 1))]:-} ;;
    --data=*) dir=${args[$i]#--data=} ;;
    *) continue ;;
  esac
  if [ ! -d "$dir" ]; then
    echo "usage: scripts/train.sh [python -m blockprop train options]" >&2
    echo "scripts/train.sh: error: --data ${dir:-(missing)}: not a directory" >&2
    exit 2
  fi
done

stamp=.venv/.blockprop-installed  # written after an install: its sources are older than it
sources=(cpp src python CMakeLists.txt pyproject.toml)
if [ ! -x .venv/bin/python ]; then
  $PY -m venv .venv || { echo "scripts/train.sh: cannot create .venv with $PY (on Debian/Ubuntu:" \
                              "apt-get install python3-venv)" >&2; exit 1; }
fi
if [ ! -f "$stamp" ] || [ -n "$(find "${sources[@]}" -newer "$stamp" -type f ! -name '*.pyc' -print -quit)" ]; then
  echo "installing blockprop into .venv (sources changed or first run; about 30 s)" >&2
  touch .venv/.blockprop-installing  # taken before the build: an edit made during it counts
  .venv/bin/pip install -q --disable-pip-version-check .
  mv .venv/.blockprop-installing "$stamp"
fi
exec .venv/bin/python -m blockprop train "$@"
