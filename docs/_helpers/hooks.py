"""MkDocs hook: make the build-time helpers importable. Generates no content itself.

Every generated number, table and figure on the site comes from ``markdown-exec`` blocks in
the pages; those blocks import :mod:`docs_build` (this folder) for the code they share. This
hook only puts this folder and the repository root on ``sys.path`` and selects matplotlib's
non-interactive backend, and hands ``repo_url`` to the helpers for links to
repository files, so ``mkdocs build`` works from any working directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HELPERS = Path(__file__).resolve().parent
REPO_ROOT = HELPERS.parent.parent


def on_config(config, **kwargs):
    os.environ.setdefault("MPLBACKEND", "Agg")
    for path in (str(REPO_ROOT), str(HELPERS)):
        if path not in sys.path:
            sys.path.insert(0, path)
    # `mkdocs serve` rebuilds in the same process: forget the helpers so edits to them count.
    for name in ("docs_build", "original_log"):
        sys.modules.pop(name, None)
    import docs_build

    docs_build.REPO_URL = str(config.repo_url).rstrip("/")
    return config
