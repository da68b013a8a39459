"""Typing: the installed package ships py.typed and a stub for blockprop._core that lists every
function the compiled module has (a new binding without a stub entry fails here), with the
binding's parameter names and defaults."""
from __future__ import annotations

import ast
import inspect
import os
import re

import pytest

import blockprop
from blockprop import _core

PACKAGE = os.path.dirname(blockprop.__file__)
STUB = os.path.join(PACKAGE, "_core.pyi")


def _stub_functions():
    with open(STUB, encoding="utf-8") as f:
        tree = ast.parse(f.read(), STUB)
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _core_functions():
    return sorted(name for name in dir(_core) if not name.startswith("_") and not inspect.isclass(getattr(_core, name)))


def _core_classes():
    return sorted(name for name in dir(_core) if not name.startswith("_") and inspect.isclass(getattr(_core, name)))


def _stub_classes():
    with open(STUB, encoding="utf-8") as f:
        tree = ast.parse(f.read(), STUB)
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _pybind_parameters(func):
    """[(name, has_default)] from pybind11's signature line ``name(a: T, b: T = x) -> R``."""
    line = (func.__doc__ or "").splitlines()[0]
    inner = line[line.index("(") + 1:line.rindex(") ->")]
    params, depth, current = [], 0, ""
    for ch in inner + ",":
        if ch == "," and depth == 0:
            if current.strip():
                params.append(current.strip())
            current = ""
            continue
        depth += ch in "([{"
        depth -= ch in ")]}"
        current += ch
    return [(re.match(r"\w+", p).group(0), "=" in p) for p in params if p != "*"]  # "*": keyword-only marker


def _stub_parameters(node):
    args = node.args
    positional = args.posonlyargs + args.args
    defaults = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
    named = [(a.arg, d, a in args.posonlyargs) for a, d in zip(positional, defaults)]
    return named + [(a.arg, d is not None, False) for a, d in zip(args.kwonlyargs, args.kw_defaults)]


def test_package_ships_py_typed_and_stub():
    assert os.path.isfile(os.path.join(PACKAGE, "py.typed")), PACKAGE
    assert os.path.isfile(STUB), PACKAGE


def test_every_core_function_has_a_stub():
    missing = [name for name in _core_functions() if name not in _stub_functions()]
    assert not missing, f"blockprop/_core.pyi lacks stubs for: {missing} (add them next to their bind_*.cpp group)"


def test_every_core_class_has_a_stub_and_back():
    assert sorted(_stub_classes()) == _core_classes()


@pytest.mark.parametrize("name", [n for n in _core_classes() if "__init__" in vars(getattr(_core, n))
                                  and not hasattr(getattr(_core, n), "__members__")])
def test_stub_constructor_matches_the_binding(name):
    """The keyword constructors of the bound classes (enums have none to match)."""
    init = next(node for node in _stub_classes()[name].body
                if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    binding = _pybind_parameters(getattr(_core, name).__init__)[1:]  # without self
    stub = _stub_parameters(init)[1:]
    assert [(n, d) for n, d, _ in stub] == binding, f"{name}: stub {stub} vs binding {binding}"


def test_every_stub_names_a_core_function():
    stale = [name for name in _stub_functions() if not hasattr(_core, name)]
    assert not stale, f"blockprop/_core.pyi has stubs for functions _core does not have: {stale}"


@pytest.mark.parametrize("name", _core_functions())
def test_stub_parameters_match_the_binding(name):
    func = getattr(_core, name)
    assert callable(func) and not inspect.isclass(func), f"_core.{name} is not a function; extend this test"
    binding = _pybind_parameters(func)
    stub = _stub_parameters(_stub_functions()[name])
    assert len(stub) == len(binding), f"{name}: stub {stub} vs binding {binding}"
    for (s_name, s_default, positional_only), (b_name, b_default) in zip(stub, binding):
        # pybind11 calls unnamed arguments arg0, arg1...: the stub makes them positional-only.
        if re.fullmatch(r"arg\d+", b_name):
            assert positional_only, f"{name}: unnamed binding argument {b_name} must be positional-only in the stub"
        else:
            assert s_name == b_name and not positional_only, f"{name}: stub {stub} vs binding {binding}"
        assert s_default == b_default, f"{name}: default of {b_name} differs: stub {stub} vs binding {binding}"
