#!/usr/bin/env bash
# CI: fuzz the model-file loader and the IDX loader for a bounded time each (FUZZ_SECONDS, default
# 60), with atheris (coverage-guided; installed from PyPI into $VENV) from the committed corpus in
# fuzz/corpus/. If atheris cannot be installed, fuzz/run.py falls back to its seeded
# random-mutation fuzzer and says so. A finding fails the check; the input is saved to build/fuzz/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
PY=${VENV:+$VENV/bin/}python
[ -n "${VENV:-}" ] || PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check atheris 2>/dev/null \
  || echo "fuzz: atheris did not install; using the random-mutation fallback"
mkdir -p "$root/build/fuzz"
cd "$root/build/fuzz"  # findings land here, outside the source tree
for target in load idx; do
  echo "-- fuzz $target (${FUZZ_SECONDS:-60} s)"
  rc=0
  "$PY" "$root/fuzz/run.py" "$target" "${FUZZ_SECONDS:-60}" > "fuzz-$target.log" 2>&1 || rc=$?
  grep -v "^INFO: \|^#[0-9]\|^WARNING: Failed to find" "fuzz-$target.log" | tail -n 25
  [ "$rc" = 0 ] || { echo "fuzz $target: FINDING (exit $rc; input saved in build/fuzz/)"; exit 1; }
done
