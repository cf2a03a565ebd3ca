"""Shared test set-up: hypothesis profiles and the path of the real-data archive.

Hypothesis profiles (choose with ``HYPOTHESIS_PROFILE=...``):

* ``ci`` (default): derandomized, so CI is repeatable, and sized so the whole suite stays
  within a few minutes on two cores;
* ``thorough``: ten times the examples, random seeds; for local runs before a release.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))  # lets tests import tolerances.py

settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=250,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The JPEG image-folder copy of CIFAR-10 (see ../shared/data/README.md); absent on most machines.
JPEG_ARCHIVE = Path(os.environ.get("CIFAR10_JPEG", REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))


@pytest.fixture(scope="session")
def jpeg_archive() -> Path:
    if not JPEG_ARCHIVE.is_file():
        pytest.skip(f"real-data test: {JPEG_ARCHIVE} not found (set CIFAR10_JPEG to its path)")
    return JPEG_ARCHIVE
