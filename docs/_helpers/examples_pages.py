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


#: The smoke runs in progress: {script name: process}, started by :func:`start_smoke_runs`.
_RUNS: dict = {}


def start_smoke_runs() -> None:
    """Start every example's ``--smoke`` run in the background, each in its own process.

    The site's hook calls this when a build starts, so the runs (seconds of CPU each) go on while
    the other pages are built; :func:`smoke_outputs` collects them. Each run imports this
    checkout's packages (``PYTHONPATH``), not an installed copy, and uses one thread, so that
    together they do not crowd out the build.
    """
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for path in example_scripts():
        if path.name not in _RUNS:
            _RUNS[path.name] = subprocess.Popen([sys.executable, str(path), "--smoke"], cwd=REPO_ROOT, env=env,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@lru_cache(maxsize=None)
def smoke_outputs() -> dict[str, str]:
    """``{script name: what --smoke printed}`` for every example (started by :func:`start_smoke_runs`).

    Temporary directories are shown as ``<tmp>`` so that the page does not change from build to build.
    """
    import re

    start_smoke_runs()  # no-op for the runs the hook started
    outputs = {}
    for path in example_scripts():
        process = _RUNS.pop(path.name)
        stdout, stderr = process.communicate(timeout=600)
        if process.returncode != 0:
            raise RuntimeError(f"docs: {path.name} --smoke failed:\n{stdout[-2000:]}\n{stderr[-2000:]}")
        outputs[path.name] = re.sub(r"/\S*cifar-alexnet-smoke-[^/\s]+", "<tmp>", stdout)
    return outputs


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
