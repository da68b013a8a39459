"""The robustness battery: every public entry point fed bad input (wrong ndim, shapes, dtypes,
NaN/Inf, empty, non-contiguous, huge, out-of-range labels, bad learning rates, aliasing, broken
files, bad command lines) must refuse with a clear exception or give the correct result.

Each group of cases (see battery_cases.py) runs in its own subprocess, so a segfault, an abort or a
hang (a per-case watchdog) shows up as a failure of the case that was running, and the run goes on
with the next case. The counts are printed, and written to $BLOCKPROP_BATTERY_REPORT when set.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("battery_cases.py")
BUILD = RUNNER.parents[2] / "build"  # tests/reliability/ -> repository: run from its build/ if there is one
GROUP_TIMEOUT = 900  # seconds for a whole group; each case also has its own watchdog


def run_group(group: str):
    """(results, crashes): one result per case; a crash is (case index, name, exit code, stderr tail)."""
    results, crashes, start, count = [], [], 0, None
    env = dict(os.environ, PYTHONFAULTHANDLER="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    while count is None or start < count:
        proc = subprocess.run([sys.executable, str(RUNNER), group, str(start)], capture_output=True,
                              text=True, timeout=GROUP_TIMEOUT, env=env, cwd=str(BUILD) if BUILD.is_dir() else None)
        running = None
        for line in proc.stdout.splitlines():
            if line.startswith("COUNT "):
                count = int(line.split()[1])
            elif line.startswith("START "):
                running = line.split(" ", 2)[1:]
            elif line.startswith("RESULT "):
                results.append(json.loads(line[7:]))
                running = None
        if count is None:
            pytest.fail(f"battery group {group} did not start (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        if running is None:
            if proc.returncode != 0:
                pytest.fail(f"battery group {group} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
            break
        index = int(running[0])
        crashes.append({"i": index, "name": running[1], "exit": proc.returncode, "stderr": proc.stderr[-1500:]})
        start = index + 1
    return results, crashes, count


def _report(group: str, results, crashes, count) -> None:
    outcomes = {}
    for r in results:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    summary = {"group": group, "inputs": count, "crashes": len(crashes), **outcomes}
    print(f"battery {group}: {json.dumps(summary)}")
    path = os.environ.get("BLOCKPROP_BATTERY_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(summary) + "\n")


@pytest.mark.parametrize("group", ["kernels", "nn", "io"])
def test_battery(group):
    results, crashes, count = run_group(group)
    _report(group, results, crashes, count)
    assert len(results) + len(crashes) == count, f"{group}: {count} cases, {len(results)} results"
    problems = [f"CRASH in {c['name']} (exit {c['exit']}): {c['stderr'][-600:]}" for c in crashes]
    problems += [f"{r['outcome'].upper()} {r['name']}: {r['detail']}" for r in results
                 if r["outcome"] not in ("ok", "refused")]
    assert not problems, f"{len(problems)} of {count} inputs misbehaved:\n" + "\n".join(problems[:60])
    # The battery must really exercise both sides: refusals and accepted (checked) results.
    assert any(r["outcome"] == "refused" for r in results) and any(r["outcome"] == "ok" for r in results)
