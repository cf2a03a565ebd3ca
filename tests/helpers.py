"""Helpers shared by the trainer tests: tiny data sets, running the CLI, comparing runs.

The data sets are written by ``tests/data_factories.py`` in both formats the trainer reads
(the official ``cifar-10-python.tar.gz`` layout and an image folder). :data:`TINY` trains
the real AlexNet with narrow hidden layers (``--hidden 32``): the convolutions, which
dominate the cost, are the full ones, so a few dozen images per step keep every test within
seconds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch

from cifar_alexnet.checkpoints.format import load_checkpoint

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Train on 1 image per class, test on 1 per class: 2 steps of 5 images per epoch, 2 epochs.
TINY = ["--epochs", "2", "--batch-size", "5", "--hidden", "32", "--eval-batch-size", "64", "--device", "cpu",
        "--quiet"]


def write_tiny_data(root: Path, kind: str = "folder", *, train_per_class: int = 1, test_per_class: int = 1,
                    seed: int = 0) -> Path:
    """A tiny CIFAR-10-like data set; returns the path to pass as ``--data``.

    ``kind``: ``"folder"`` (``train/<class>/*.png``) or ``"official"`` (a directory holding a
    ``cifar-10-python.tar.gz`` in the official format, read with ``--no-verify``).
    """
    import data_factories

    if kind == "folder":
        return data_factories.write_image_folder(root, train_per_class, test_per_class, seed=seed).root
    return data_factories.write_official_archive(root, n_train=10 * train_per_class, n_test=10 * test_per_class,
                                                 seed=seed).root


def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment for a CLI subprocess: this checkout importable, a private decode cache."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["CIFAR_ALEXNET_CACHE"] = str(tmp_path / "cache")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def run_cli(args: list, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m cifar_alexnet ARGS`` in a subprocess (the real entry point)."""
    return subprocess.run([sys.executable, "-m", "cifar_alexnet", *map(str, args)], env=cli_env(tmp_path),
                          cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def model_tensors(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(checkpoint).state_dict


def assert_bit_identical(a: Path, b: Path) -> None:
    """Every model tensor (parameters and BatchNorm buffers) of two checkpoints is exactly equal."""
    ta, tb = model_tensors(a), model_tensors(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:5]}"


def read_history(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "history.json").read_text())


def assert_sane_history(history: list[dict], epochs: int) -> None:
    assert [row["epoch"] for row in history] == list(range(1, epochs + 1))
    for row in history:
        for key in ("train_loss", "test_loss", "lr", "epoch_time_s", "images_per_s"):
            assert math.isfinite(row[key]) and row[key] >= 0, (key, row)
        for key in ("train_acc", "test_acc"):
            assert 0.0 <= row[key] <= 100.0, (key, row)


def all_files(root: Path) -> list[str]:
    """Every path below ``root``, relative to it, sorted: what a failed write must not leave behind."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
