"""The verification and API pages: tolerances, hypothesis profiles, the test inventory.

The tests' files are read as text (``ast``), never imported: nothing outside ``tests/``
imports from it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from site_kit import DOCS_DIR, REPO_ROOT, fence, md_table, repo_file, rest_to_markdown, returns_printed


def documented_constants(path: Path) -> list[tuple[str, str]]:
    """``[(NAME, "#: comment"), ...]`` for the constants of a module documented with ``#:``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        match = re.match(r"^([A-Z][A-Z0-9_]*)\s*(:[^=]*)?=", line)
        if match and i > 0 and lines[i - 1].startswith("#:"):
            found.append((match.group(1), lines[i - 1][2:].strip()))
    return found


def documented_values(path: Path) -> dict[str, object]:
    """``{NAME: value}`` of the module-level constants of ``path`` that are plain literals, read with ``ast``."""
    values = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    try:
                        values[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass
    return values


@returns_printed
def tolerance_table() -> None:
    """Every tolerance of tests/tolerances.py: name, value, what it is for (the file read as text)."""
    path = REPO_ROOT / "tests" / "tolerances.py"
    values = documented_values(path)
    rows = [[f"`{name}`", f"{values[name]:.0e}", text] for name, text in documented_constants(path)]
    print(md_table(["name", "value", "used for"], rows, "lrl"))


def registered_profiles(path: Path) -> dict[str, dict]:
    """``{name: settings}`` of the hypothesis profiles ``path`` registers, read as text.

    tests/conftest.py states them as one table, ``_PROFILES = {name: (examples per test, fixed examples)}``,
    and registers each with the keyword arguments they share; those shared arguments are read from the
    ``register_profile`` call where they are literals.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    table = next(ast.literal_eval(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and any(isinstance(target, ast.Name) and target.id == "_PROFILES" for target in node.targets))
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute) and node.func.attr == "register_profile")
    shared = {k.arg: ast.literal_eval(k.value) for k in call.keywords if isinstance(k.value, ast.Constant)}
    return {name: {**shared, "max_examples": examples, "derandomize": fixed}
            for name, (examples, fixed) in table.items()}


@returns_printed
def hypothesis_profiles() -> None:
    """The hypothesis profiles registered by tests/conftest.py (read as text); unset fields are hypothesis' defaults."""
    from hypothesis import settings

    default = settings.get_profile("default")
    rows = []
    for name, kw in registered_profiles(REPO_ROOT / "tests" / "conftest.py").items():
        rows.append([f"`{name}`", kw.get("max_examples", default.max_examples),
                     kw.get("derandomize", default.derandomize), kw.get("deadline", default.deadline)])
    print(md_table(["profile", "examples per test", "derandomized", "deadline"], rows, "lrll"))


@returns_printed
def test_inventory() -> None:
    """Every test module: its first docstring paragraph, its tests, how many use hypothesis."""
    rows = []
    for path in sorted((REPO_ROOT / "tests").rglob("test_*.py")):  # tests/ and its sub-folders
        tree = ast.parse(path.read_text(encoding="utf-8"))
        doc = (ast.get_docstring(tree) or "").split("\n\n")[0].replace("\n", " ")
        doc = rest_to_markdown(doc)
        tests = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name.startswith("test_")]
        with_given = sum(1 for n in tests if any("given" in ast.unparse(dec) for dec in n.decorator_list))
        rel = path.relative_to(REPO_ROOT).as_posix()
        rows.append([repo_file(rel), doc.replace("|", "\\|"), len(tests), with_given])
    print(md_table(["file", "what it proves", "tests", "of them property-based"], rows, "llrr"))


# --------------------------------------------------------------------------------------
# the API pages
# --------------------------------------------------------------------------------------


def public_modules(package: str) -> list[str]:
    """The public modules of a package and its sub-packages, from its folders.

    A module is public when no part of its dotted name starts with an underscore; a sub-package
    counts as a module of its own when its ``__init__.py`` defines a function or a class (as
    ``cifar_alexnet.weights`` does) rather than only describing its modules.
    """
    root = REPO_ROOT / package
    modules = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        if path.name == "__init__.py":
            parts = parts[:-1]
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if len(parts) == 1 or not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body):
                continue
        if not any(part.startswith("_") for part in parts):
            modules.append(".".join(parts))
    return modules


def check_api_page(page: str, package: str) -> str:
    """Fail the build if a public module of ``package`` has no ``::: module`` on ``page``."""
    text = (DOCS_DIR / page).read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: ([\w.]+)", text, re.M))
    missing = [m for m in public_modules(package) if m not in documented]
    if missing:
        raise ValueError(f"docs: {page} lacks ::: entries for {missing}")
    return f"All {len(documented)} public modules of `{package}` are on this page."


# --------------------------------------------------------------------------------------
# the examples page
# --------------------------------------------------------------------------------------
