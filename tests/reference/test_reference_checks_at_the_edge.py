"""The layers of ``reference`` read maths first: one argument check per function, at its top.

Each public function of a layer module validates its arguments with a single call of the
module's ``_check_*`` function as its first statement, and raises nothing itself; the check
functions come after every public function, so the module read top-down shows the maths
before any validation (and the docs can show a layer's source as it is).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import reference

REFERENCE_DIR = Path(reference.__file__).resolve().parent
LAYER_MODULES = ["conv", "pool", "batchnorm", "relu", "linear", "flatten", "dropout", "loss", "adam"]


def _is_check_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", "").startswith(("_check", "check_"))


def _without_docstring(body: list) -> list:
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return body[1:]
    return body


@pytest.mark.parametrize("module", LAYER_MODULES)
def test_public_functions_check_once_at_the_top_and_raise_nothing(module):
    tree = ast.parse((REFERENCE_DIR / f"{module}.py").read_text(encoding="utf-8"))
    public = [node for node in tree.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]
    assert public, f"reference/{module}.py has no public functions"
    for function in public:
        body = _without_docstring(function.body)
        checks = [node for node in ast.walk(function) if _is_check_call(node)]
        raises = [node.lineno for node in ast.walk(function) if isinstance(node, ast.Raise)]
        assert not raises, f"{module}.{function.name} raises on lines {raises}; move the check to its _check function"
        assert len(checks) <= 1, f"{module}.{function.name} makes {len(checks)} check calls; make it one"
        if checks:
            first = body[0]
            assert any(node is checks[0] for node in ast.walk(first)), (
                f"{module}.{function.name}: the check call is not the first statement (line {first.lineno})"
            )


@pytest.mark.parametrize("module", LAYER_MODULES)
def test_check_functions_come_after_the_public_functions(module):
    tree = ast.parse((REFERENCE_DIR / f"{module}.py").read_text(encoding="utf-8"))
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    last_public = max(node.lineno for node in functions if not node.name.startswith("_"))
    early = [node.name for node in functions if node.name.startswith("_check") and node.lineno < last_public]
    assert not early, f"reference/{module}.py defines {early} above a public function; put checks at the bottom"
