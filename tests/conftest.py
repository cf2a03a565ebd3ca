"""Shared test set-up: which tests run, hypothesis profiles, and the path of the real-data archive.

Two selections (``CIFAR_ALEXNET_TESTS=...``):

* ``quick`` (default, the README's test command): every test except those marked ``slow`` --
  real-data training and evaluation, several processes, whole benchmark and example runs, the
  longest signal and kill loops -- with the ``quick`` hypothesis profile; a few minutes on two
  cores. The summary says how many tests it left out;
* ``all`` (what ``.ci/run`` sets): every test, with the ``ci`` hypothesis profile.

Hypothesis profiles (``HYPOTHESIS_PROFILE=...`` overrides the selection's):

* ``quick``: 10 examples per test, derandomized;
* ``ci``: 25 examples per test, derandomized, so CI is repeatable;
* ``thorough``: 250 examples, random seeds; for local runs before a release.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))  # lets tests import tolerances.py

#: "quick" or "all": see the module's docstring.
SELECTION = os.environ.get("CIFAR_ALEXNET_TESTS", "quick")
if SELECTION not in ("quick", "all"):
    raise pytest.UsageError(f"CIFAR_ALEXNET_TESTS={SELECTION!r}: choose quick (the default) or all")

#: Hypothesis profiles: examples per test, and whether the examples are the same on every run.
_PROFILES = {"quick": (10, True), "ci": (25, True), "thorough": (250, False)}
for _name, (_examples, _fixed) in _PROFILES.items():
    settings.register_profile(_name, max_examples=_examples, derandomize=_fixed, deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if SELECTION == "all" else "quick"))


def pytest_collection_modifyitems(config, items):
    """The quick selection leaves out the tests marked ``slow``."""
    if SELECTION == "all":
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
        config.hook.pytest_deselected(items=slow)


def pytest_terminal_summary(terminalreporter, config):
    if SELECTION == "quick":
        terminalreporter.write_line("The tests marked slow were left out (the 'deselected' above: real data, several "
                                    "processes, whole benchmark and example runs); CIFAR_ALEXNET_TESTS=all runs "
                                    "them, as CI does.")

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The JPEG image-folder copy of CIFAR-10 (see ../shared/data/README.md); absent on most machines.
JPEG_ARCHIVE = Path(os.environ.get("CIFAR10_JPEG", REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))


@pytest.fixture(scope="session")
def jpeg_archive() -> Path:
    if not JPEG_ARCHIVE.is_file():
        pytest.skip(f"real-data test: {JPEG_ARCHIVE} not found (set CIFAR10_JPEG to its path)")
    return JPEG_ARCHIVE


#: The original course write-up (the notebook's text and its training log), in ../shared beside the checkout.
ORIGINAL_WRITE_UP = REPO_ROOT.parent / "shared" / "original" / "000_e87e2e1067e7d35c.txt"


@pytest.fixture(scope="session")
def original_write_up() -> Path:
    if not ORIGINAL_WRITE_UP.is_file():
        pytest.skip(f"the original write-up is not beside this checkout ({ORIGINAL_WRITE_UP} not found)")
    return ORIGINAL_WRITE_UP


@pytest.fixture
def tiny_fs(tmp_path):
    """``make(size)`` mounts a tmpfs of ``size`` (e.g. ``"64k"``) and returns its path: a disk that fills up.

    Skips, with the reason, where mounting is not allowed (it needs root)."""
    mounted: list[Path] = []

    def make(size: str) -> Path:
        target = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
        target.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        subprocess.run(["umount", str(target)], check=False)
