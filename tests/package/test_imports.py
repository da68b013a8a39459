"""The package's own imports point one way: no module-level import cycle, and no import of the
package's own modules inside a function (that is how cycles get hidden). Function-level imports
are for optional dependencies only (scikit-learn, PyTorch, mpi4py)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

import blockprop

ROOT = Path(blockprop.__file__).resolve().parent


def _modules() -> Dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["blockprop"] + parts)] = path
    return out


MODULES = _modules()
EXTENSIONS = {"blockprop." + p.name.split(".")[0] for p in ROOT.glob("*.so")}  # blockprop._core


def _package(module: str) -> str:
    """The package a module's relative imports start from."""
    return module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]


def _targets(module: str, node: ast.AST) -> List[str]:
    """The package's own modules an import statement loads (``from . import x`` loads ``x`` when
    it is a module, else the package)."""
    names: List[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = _package(module).split(".")
            base = base[:len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in set(MODULES) | EXTENSIONS else stem
                 for a in node.names]
    return [n for n in names if n in MODULES]


def _imports(module: str, top_level: bool) -> Set[str]:
    """Own modules imported at module level (``top_level``) or inside functions."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    found: Set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # for type checkers only: never executed
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function != top_level:
                found.update(_targets(module, child))
            visit(child, inner)

    visit(tree, False)
    found.discard(module)
    return found


def _cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    state: Dict[str, int] = {}
    path: List[str] = []

    def walk(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_module_level_imports_have_no_cycle():
    graph = {m: _imports(m, top_level=True) for m in MODULES}
    assert "blockprop.training" in graph["blockprop.nn.sequential"]  # the graph sees relative imports
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_detector_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_function_level_import_of_the_package_itself():
    hidden = {m: sorted(found) for m in MODULES if (found := _imports(m, top_level=False))}
    assert not hidden, f"imports of blockprop's own modules inside functions: {hidden}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.endswith("__main__")))
def test_every_module_imports_first_in_a_fresh_interpreter(module):
    """Whatever a program imports first, the package initializes (no order-dependent cycle)."""
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert proc.returncode == 0, f"import {module} failed:\n{proc.stderr[-2000:]}"
