"""The examples page: each script of examples/, what it does, and its output."""

from __future__ import annotations

from pathlib import Path

from site_kit import REPO_ROOT, fence, indent, repo_file, rest_to_markdown, returns_printed


EXAMPLE_PAGES = {
    "train_original.py": ["training.md", "getting-started.md"],
    "train_fast.py": ["training.md"],
    "layer_by_layer.py": ["network/index.md", "verification.md"],
    "receptive_field.py": ["receptive-fields.md"],
}


def example_scripts() -> list[Path]:
    """The runnable examples: ``examples/*.py`` except the shared ``_smoke.py``."""
    return sorted(p for p in (REPO_ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


@returns_printed
def examples_section() -> None:
    """Each example: what it does (its docstring), where it is used, its source."""
    import ast

    scripts = example_scripts()
    unlisted = sorted({p.name for p in scripts} ^ set(EXAMPLE_PAGES))
    if unlisted:
        raise ValueError(f"docs: EXAMPLE_PAGES and examples/ disagree on {unlisted}")
    for path in scripts:
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
        summary, _, rest = doc.partition("\n\n")
        anchor = path.stem.replace("_", "-")
        used = ", ".join(f"[{p.removesuffix('.md').replace('/index', '').replace('-', ' ')}]({p})"
                         for p in EXAMPLE_PAGES[path.name])
        print(f"## `{path.name}` {{ #{anchor} }}\n")
        print(f"{summary}\n")
        print(f"Used on: {used}. Source: {repo_file('examples/' + path.name)}.\n")
        print(fence(rest.strip(), "text") + "\n")
        print(f'??? example "examples/{path.name}"\n')
        print(indent(fence(text, title=f"examples/{path.name}")) + "\n")
