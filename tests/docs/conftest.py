"""The documentation tests' shared fixture: one strict build of the site per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """Build the site once; returns (site folder, build output, seconds)."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # Material's banner about MkDocs 2, not a warning of ours
    start = time.perf_counter()
    # The `mkdocs` command, as CI and the Pages workflow run it: unlike `python -m mkdocs` it does not put
    # the working directory on sys.path, so the build proves that the site's hook is all the pages need.
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    command = [mkdocs] if mkdocs else [sys.executable, "-m", "mkdocs"]
    result = subprocess.run([*command, "build", "--strict", "--site-dir", str(out)],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    return out, result, seconds


def pytest_collection_modifyitems(items):
    """Run the docs tests on one pytest-xdist worker, so the site is built once per session."""
    docs = Path(__file__).parent
    for item in items:
        if docs in Path(item.fspath).parents:
            item.add_marker(pytest.mark.xdist_group("docs-site"))
