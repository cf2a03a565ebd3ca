"""The examples page: each script of examples/, what it does, and its output."""

from __future__ import annotations

from functools import lru_cache
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


@lru_cache(maxsize=None)
def smoke_outputs() -> dict[str, str]:
    """``{script name: what --smoke printed}`` for every example, run in parallel (CPU, seconds each).

    Temporary directories are shown as ``<tmp>`` so that the page does not change from build to build.
    """
    import re
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    def run(path: Path) -> tuple[str, str]:
        result = subprocess.run([sys.executable, str(path), "--smoke"], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"docs: {path.name} --smoke failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        return path.name, re.sub(r"/\S*cifar-alexnet-smoke-[^/\s]+", "<tmp>", result.stdout)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, example_scripts()))


@returns_printed
def examples_section() -> None:
    """Each example: what it does (its docstring), where it is used, and what its smoke mode prints."""
    import ast

    scripts = example_scripts()
    unlisted = sorted({p.name for p in scripts} ^ set(EXAMPLE_PAGES))
    if unlisted:
        raise ValueError(f"docs: EXAMPLE_PAGES and examples/ disagree on {unlisted}")
    outputs = smoke_outputs()
    for path in scripts:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        summary, _, usage = doc.partition("\n\n")
        anchor = path.stem.replace("_", "-")
        used = ", ".join(f"[{p.removesuffix('.md').replace('/index', '').replace('-', ' ')}]({p})"
                         for p in EXAMPLE_PAGES[path.name])
        print(f"## `{path.name}` {{ #{anchor} }}\n")
        print(f"{rest_to_markdown(summary)}\n")
        print(f"Used on: {used}. Source: {repo_file('examples/' + path.name)}.\n")
        print(f'??? note "Usage (from its docstring)"\n\n{indent(fence(usage.strip(), "text"))}\n')
        print(f"Output of `python examples/{path.name} --smoke`, captured when this page was built "
              "(on the build machine's CPU, with the committed sample images where it needs data):\n")
        print(fence(outputs[path.name].rstrip(), "text") + "\n")
