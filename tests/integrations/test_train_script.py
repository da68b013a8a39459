"""scripts/train.sh without a real build: it runs in a copy of the repository layout whose .venv
holds stand-ins for pip and python that log their calls. Checked: a bad --data path fails before
any install; the first call installs; later calls start training at once unless a source file
changed; a failed install is retried."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "train.sh")

if not os.path.isfile(SCRIPT):
    pytest.skip("tests run without the repository's scripts/", allow_module_level=True)

STAND_IN = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
[ "$(basename "$0")" = pip ] && [ -f "{fail}" ] && exit 1
exit 0
"""


@pytest.fixture
def repo(tmp_path):
    """A clone's layout: scripts/train.sh, the sources it watches, and an existing .venv."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "train.sh")
    for d in ("cpp", "src", "python/blockprop"):
        (tmp_path / d).mkdir(parents=True)
    for f in ("cpp/gemm.cpp", "src/module.cpp", "python/blockprop/cli.py", "CMakeLists.txt",
              "pyproject.toml"):
        (tmp_path / f).write_text("source\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    for name in ("pip", "python"):
        exe = tmp_path / ".venv" / "bin" / name
        exe.write_text(STAND_IN.format(log=tmp_path / "calls.log", fail=tmp_path / "pip-fails"))
        exe.chmod(0o755)
    return tmp_path


def train(repo, *args):
    # PYTHON points nowhere: the script must not try to create a .venv that exists.
    env = dict(os.environ, PYTHON="/nonexistent/python3")
    out = subprocess.run(["bash", str(repo / "scripts" / "train.sh"), *args], cwd=repo,
                         capture_output=True, text=True, timeout=60, env=env)
    log = repo / "calls.log"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return out, calls


def test_a_bad_data_path_fails_before_installing(repo):
    shutil.rmtree(repo / ".venv")
    for args in (["--data", "/nonexistent/mnist"], ["--epochs", "2", "--data=/nonexistent/mnist"],
                 ["--data"]):
        out, calls = train(repo, *args)
        assert out.returncode == 2, out
        assert "not a directory" in out.stderr and calls == [], (out.stderr, calls)
    assert not (repo / ".venv").exists()


def test_installs_once_then_only_when_a_source_changes(repo):
    out, calls = train(repo, "--epochs", "1")
    assert out.returncode == 0, out.stderr
    assert calls == ["pip install -q --disable-pip-version-check .",
                     "python -m blockprop train --epochs 1"], calls
    out, calls = train(repo, "--data", str(repo))
    assert out.returncode == 0 and calls == [f"python -m blockprop train --data {repo}"], calls
    future = time.time() + 5  # newer than the stamp whatever the file system's time resolution
    os.utime(repo / "cpp" / "gemm.cpp", (future, future))
    out, calls = train(repo)
    assert calls[0].startswith("pip install") and "sources changed" in out.stderr, (calls, out.stderr)


def test_a_failed_install_is_retried(repo):
    (repo / "pip-fails").touch()
    out, calls = train(repo)
    assert out.returncode != 0 and calls == ["pip install -q --disable-pip-version-check ."], calls
    (repo / "pip-fails").unlink()
    out, calls = train(repo)
    assert out.returncode == 0 and calls[0].startswith("pip install") and len(calls) == 2, calls
