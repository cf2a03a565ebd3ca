"""The package's architecture, checked from its source: layers, no import cycle, one import path per name.

Every import statement counts, also the ones inside functions (a cycle hidden in a function
body is still a cycle). The layers, lowest first, are those ``cifar_alexnet/__init__.py``
lists; a module may import from its own layer or lower ones, never from a higher one.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "cifar_alexnet"

#: Layer of each top-level part, lowest first; a module imports only from its layer or below.
LAYERS = {"errors": 0, "model": 0, "runtime": 1, "data": 2, "checkpoints": 3, "inference": 4, "weights": 5,
          "training": 5, "commands": 6, "cli": 7, "__main__": 8, "__init__": 0}
#: The modules that may sit at the top of the package: its entry points (the command line, the
#: network) and the exceptions every part raises.
TOP_LEVEL_MODULES = {"__init__", "__main__", "cli", "model", "errors"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _python_of(path: Path) -> str:
    """A Python file's text, or the Python code blocks of a Markdown page (other lines blanked, so lines match)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".md":
        return text
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = line.startswith("```python") and not inside
            lines.append("")
        else:
            lines.append(line if inside else "")
    return "\n".join(lines)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import of the package in ``path``, in function bodies too."""
    found = []
    for node in ast.walk(ast.parse(_python_of(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cifar_alexnet":
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names
                      if alias.name.split(".")[0] == "cifar_alexnet"]
    return found


def _targets(module: str, names: list[str]) -> list[str]:
    """The package modules an import statement loads: submodules named in ``names``, else the module."""
    submodules = [f"{module}.{name}" for name in names if f"{module}.{name}" in MODULES]
    return submodules or [module]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for _, module, names in _imports(path):
            graph[name].update(t for t in _targets(module, names) if t != name)
    return graph


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS["__init__" if len(parts) == 1 else parts[1]]


def test_the_folder_tree_shows_the_architecture():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= TOP_LEVEL_MODULES, f"modules at the top of cifar_alexnet/ that belong in a part: {top - TOP_LEVEL_MODULES}"
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert parts | {"errors", "model", "cli", "__main__", "__init__"} >= set(LAYERS), "a layer without its folder"
    assert parts <= set(LAYERS), f"parts without a layer: {parts - set(LAYERS)}"


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
              for module, targets in _graph().items() for target in targets if _layer(target) > _layer(module)]
    assert not upward, "\n".join(upward)


def test_there_is_no_import_cycle():
    graph, state, stack = _graph(), {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module)


def _defined_names(path: Path) -> set[str]:
    """Names a module defines at its top level: functions, classes and assigned names."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def test_every_public_name_is_exported_only_by_the_module_that_defines_it():
    re_exported = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported = next((ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                         and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)), [])
        re_exported += [f"{module}.{name}" for name in set(exported) - _defined_names(path)]
    assert not re_exported, f"names in __all__ that their module does not define: {sorted(re_exported)}"


@pytest.mark.parametrize("folder", ["cifar_alexnet", "tests", "bench", "examples", "docs", "scripts"])
def test_every_import_names_the_module_that_defines_the_name(folder):
    """One import path per name: ``from cifar_alexnet.X import y`` only where X defines y (or y is a submodule).

    Markdown pages count too: the code blocks the site runs and the ones it shows.
    """
    wrong = []
    for path in sorted([*(REPO_ROOT / folder).rglob("*.py"), *(REPO_ROOT / folder).rglob("*.md")]):
        for line, module, names in _imports(path):
            if module not in MODULES:
                wrong.append(f"{path.relative_to(REPO_ROOT)}:{line}: no module {module}")
                continue
            defined = _defined_names(MODULES[module])
            wrong += [f"{path.relative_to(REPO_ROOT)}:{line}: {name} is not defined in {module}"
                      for name in names if name not in defined and f"{module}.{name}" not in MODULES]
    assert not wrong, "\n".join(wrong)
