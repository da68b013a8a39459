"""Every ```python block of README.md and docs/*.md runs, each in a fresh namespace and a
temporary working directory. Snippets guard their own optional needs (torch, data files)."""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/integrations/ -> repository
DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def _snippets():
    for path in DOCS:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 2  # first line of the code
            yield pytest.param(path, line, m.group(1), id=f"{os.path.relpath(path, ROOT)}:{line}")


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
