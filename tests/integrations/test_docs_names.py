"""Every API name the README and docs/*.md write as ``bp.x.y`` or ``blockprop.x.y`` (in backticks
or in code blocks) exists as written: a renamed or unexported name fails here, not in a user's
first session (``bp.load_mnist`` did)."""
from __future__ import annotations

import glob
import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
CODE = re.compile(r"```[a-z]*\n.*?```|`[^`\n]+`", re.S)
# A dotted name after bp. / blockprop.; not a file path (blockprop.libs/, blockprop/py.typed).
NAME = re.compile(r"(?<![\w./-])(bp|blockprop)((?:\.[A-Za-z_]\w*)+)(?![\w/-])")


def _names():
    found = {}
    for path in DOCS:
        text = open(path, encoding="utf-8").read()
        for code in CODE.finditer(text):
            for m in NAME.finditer(code.group(0)):
                line = text.count("\n", 0, code.start()) + 1
                found.setdefault("blockprop" + m.group(2), f"{os.path.relpath(path, ROOT)}:{line}")
    return found


NAMES = _names()


def resolve(dotted):
    """The object ``dotted`` names, importing submodules as ``import blockprop.x`` would."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if not hasattr(obj, part):
            try:
                obj = importlib.import_module(".".join(parts[:i + 1]))
                continue
            except ModuleNotFoundError as e:
                if e.name != ".".join(parts[:i + 1]):
                    raise  # an optional dependency of a real module
        obj = getattr(obj, part)
    return obj


def test_the_docs_name_api_objects():
    assert {"blockprop.nn.Sequential", "blockprop.data.load_mnist", "blockprop.load"} <= set(NAMES), \
        sorted(NAMES)


@pytest.mark.parametrize("dotted", sorted(NAMES))
def test_name_exists(dotted):
    where = NAMES[dotted]
    try:
        resolve(dotted)
    except ModuleNotFoundError as e:
        if e.name.split(".")[0] == "blockprop":
            pytest.fail(f"{where}: {dotted} does not exist ({e})")
        if os.environ.get("CI"):  # CI installs every extra
            pytest.fail(f"{where}: {dotted} needs {e.name}, which CI installs")
        pytest.skip(f"{dotted} needs {e.name}")
    except AttributeError as e:
        pytest.fail(f"{where}: {dotted} does not exist ({e})")
