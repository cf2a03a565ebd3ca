"""Every function of the package fits on a screen: at most 60 lines, decorators and docstring included."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 60


def long_functions(path: Path) -> list[str]:
    """``"name: N lines"`` for every function (methods and nested ones too) in ``path`` longer than MAX_LINES."""
    long = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            lines = node.end_lineno - first + 1
            if lines > MAX_LINES:
                long.append(f"{node.name}: {lines} lines")
    return long


def test_no_function_of_the_package_is_longer_than_60_lines():
    long = [f"{path.relative_to(REPO_ROOT)}: {entry}" for path in sorted((REPO_ROOT / "cifar_alexnet").rglob("*.py"))
            for entry in long_functions(path)]
    assert not long, "split these into named steps:\n" + "\n".join(long)


def test_the_measure_counts_decorators_docstrings_and_nested_functions(tmp_path):
    line = "x = 1\n"
    source = ("def fits():\n" + line.rjust(10) * (MAX_LINES - 1)  # 60 lines
              + "@staticmethod\ndef decorated():\n" + line.rjust(10) * (MAX_LINES - 1)  # 61 with its decorator
              + "class A:\n    def method(self):\n        'doc'\n" + line.rjust(14) * (MAX_LINES - 1))  # 61
    (tmp_path / "m.py").write_text(source)
    assert long_functions(tmp_path / "m.py") == ["decorated: 61 lines", "method: 61 lines"]
