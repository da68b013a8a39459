"""Every ```python block of README.md and docs/*.md runs, each in a fresh namespace and a
temporary working directory, without printing a warning. Snippets guard their own optional needs
(torch, data files). Every shell command of their ```sh blocks either runs (the offline, quick
ones) or is skipped by a listed rule that says why."""
from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/integrations/ -> repository
DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def _fenced(fence):
    """(document, first line of the block, block text) of every block ``fence`` matches."""
    for path in DOCS:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for m in fence.finditer(text):
            yield path, text.count("\n", 0, m.start()) + 2, m.group(1)


def _snippets():
    for path, line, code in _fenced(FENCE):
        yield pytest.param(path, line, code, id=f"{os.path.relpath(path, ROOT)}:{line}")


SNIPPETS = list(_snippets())


def test_docs_have_snippets():
    assert any(p.values[0].endswith("ecosystem.md") for p in SNIPPETS), [p.id for p in SNIPPETS]


@pytest.mark.parametrize("path, line, code", SNIPPETS)
def test_snippet_runs(path, line, code, tmp_path):
    # Blank lines first, so a traceback's line numbers are the Markdown file's.
    source = "\n" * (line - 1) + code
    script = tmp_path / "snippet.py"
    script.write_text(source, encoding="utf-8")
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, env=env, timeout=600)
    assert out.returncode == 0, (f"{os.path.relpath(path, ROOT)}:{line}: snippet failed\n"
                                 f"--- stdout\n{out.stdout[-3000:]}\n--- stderr\n{out.stderr[-3000:]}")
    # A warning the docs do not mention (the scikit-learn snippet's ConvergenceWarning did).
    assert "Warning:" not in out.stderr, f"{os.path.relpath(path, ROOT)}:{line}: snippet warns\n{out.stderr[-3000:]}"


# ---- shell commands: ```sh / ```bash blocks ("$ " marks the commands where a block shows output)

SHELL_FENCE = re.compile(r"^```(?:sh|bash|shell|console)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
MNIST = os.path.join(os.path.dirname(ROOT), "shared", "data", "mnist")  # ../shared/data/mnist
# Commands that run here: offline and quick, against the installed package, in a temporary
# directory (so `--plot curve.png` writes there), with this interpreter as `python`.
RUN = re.compile(r"^(python3?) -m blockprop (train|info)\b")
# Every other command must match one of these, and is not run for the reason given.
SKIP = [
    (r"^scripts/test\.sh", "the whole CI run itself (about 12 minutes; downloads PyTorch)"),
    (r"^scripts/train\.sh", "pip-installs blockprop into .venv (a build, and build requirements "
                            "from the network); its argument check and rebuild rule are tested "
                            "in test_train_script.py"),
    (r"^(python3? -m )?pip install\b", "installs packages from the network or a path"),
    (r"^mpiexec\b", "launches MPI ranks, on several machines for a hostfile (the distributed "
                    "tests launch their own: tests/training/test_distributed.py)"),
    (r"^cat hosts$", "shows an example MPI hostfile, which exists only on the user's machine"),
    (r"^(python3? -m pip wheel|auditwheel|python3? -m venv)\b",
     "builds, repairs or installs the wheel: scripts/test.sh runs these steps"),
    (r"^eval \"\$\(tools/devbuild", "compiles the C++ core (minutes)"),
    (r"^(\w+=\S+ )?python3 -m pytest\b", "runs a part of this test suite, which CI runs whole"),
    (r"^(\w+=\S+ )?(scripts/sanitize\.sh|scripts/checks/fuzz\.sh|python3 fuzz/run\.py)\b",
     "sanitizer build or fuzzing (minutes): CI runs them through scripts/checks/*.sh"),
]


def _shell_commands():
    for path, first, block in _fenced(SHELL_FENCE):
        lines = block.splitlines()
        prompted = any(line.startswith("$ ") for line in lines)
        command, start = "", first
        for n, line in enumerate(lines, start=first):
            if prompted and not command:
                if not line.startswith("$ "):
                    continue  # output shown after a command
                line = line[2:]
            if not command:
                start = n
            if line.rstrip().endswith("\\"):
                command += line.rstrip()[:-1] + " "
                continue
            command, whole = "", (command + line)
            words = shlex.split(whole, comments=True)
            if words:
                where = f"{os.path.relpath(path, ROOT)}:{start}"
                yield pytest.param(where, whole.split(" #")[0].strip(), words, id=where)


SHELL = list(_shell_commands())


def test_docs_have_runnable_shell_commands():
    runnable = [p.values[1] for p in SHELL if RUN.match(p.values[1])]
    assert any("--plot" in c for c in runnable) and any(" info" in c for c in runnable), runnable


@pytest.mark.parametrize("where, command, words", SHELL)
def test_shell_command(where, command, words, tmp_path):
    if not RUN.match(command):
        reasons = [reason for pattern, reason in SKIP if re.match(pattern, command)]
        assert reasons, f"{where}: `{command}` is neither run nor skipped by a listed rule: add one"
        pytest.skip(f"not run: {reasons[0]}")
    if "../shared/data/mnist" in words:
        if not os.path.isdir(MNIST):
            pytest.skip(f"the MNIST files are not at {MNIST}")
        words = [MNIST if w == "../shared/data/mnist" else w for w in words]
    out = subprocess.run([sys.executable, *words[1:]], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, f"{where}: `{command}` failed\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    assert "Warning" not in out.stderr, f"{where}: `{command}` warns\n{out.stderr[-2000:]}"
    for word in words:  # a file the command writes (--plot, --save) is there
        if word.endswith((".png", ".npz")):
            assert (tmp_path / word).is_file(), f"{where}: `{command}` did not write {word}"
