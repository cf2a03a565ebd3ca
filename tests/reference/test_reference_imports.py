"""``reference`` imports only NumPy and the standard library: it works where torch is absent."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "reference"

# Runs in a fresh interpreter. With the argument "block" a meta-path finder first makes every
# import of torch (or torchvision, ...) fail as if it were not installed; with "allow" torch
# stays importable, which catches an optional `try: import torch` that blocking would hide.
# Then every module under reference is imported and a few layers are run.
_TORCHLESS_SCRIPT = r"""
import importlib, json, pkgutil, sys

BLOCKED = ("torch", "torchvision", "torchaudio")

class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None

blocker_works = None
if sys.argv[1] == "block":
    sys.meta_path.insert(0, BlockTorch())
    try:
        import torch  # noqa: F401
        blocker_works = False
    except ImportError:
        blocker_works = True

import numpy as np
import reference
imported = ["reference"]
for info in pkgutil.walk_packages(reference.__path__, "reference."):
    importlib.import_module(info.name)
    imported.append(info.name)

x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
out, _ = reference.conv2d_forward(x, np.ones((4, 3, 3, 3), np.float32), np.zeros(4, np.float32), padding=1)
out, _ = reference.maxpool2d_forward(out, 2)
loss, _ = reference.softmax_cross_entropy(reference.flatten_forward(out)[0], np.array([0, 1]))
print(json.dumps({
    "blocker_works": blocker_works,
    "imported": imported,
    "torch_modules": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
    "loss_is_finite": bool(np.isfinite(loss)),
}))
"""


@pytest.mark.parametrize("torch_mode", ["block", "allow"])
def test_reference_imports_and_runs_without_torch(torch_mode):
    result = subprocess.run(
        [sys.executable, "-c", _TORCHLESS_SCRIPT, torch_mode],
        capture_output=True,
        text=True,
        cwd=REFERENCE_DIR.parent,
        timeout=120,
    )
    assert result.returncode == 0, f"importing reference without torch failed:\n{result.stderr}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if torch_mode == "block":
        assert report["blocker_works"], "the test's torch blocker did not block torch"
    expected = {"reference"} | {f"reference.{p.stem}" for p in REFERENCE_DIR.glob("*.py") if p.stem != "__init__"}
    assert expected <= set(report["imported"]), f"not imported: {expected - set(report['imported'])}"
    assert report["torch_modules"] == [], f"importing reference imported {report['torch_modules']}"
    assert report["loss_is_finite"]


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(REFERENCE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_reference_source_imports_only_numpy_and_the_standard_library(path):
    allowed = set(sys.stdlib_module_names) | {"numpy", "reference", "__future__"}
    foreign = _top_level_imports(path) - allowed
    assert not foreign, f"{path.name} imports {sorted(foreign)}; reference may import only numpy and the standard library"
