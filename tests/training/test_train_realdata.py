"""A real (small) training run: the original recipe learns on real CIFAR-10 images.

Original recipe and augmentations (Adam 1e-3, crop/flip/grayscale), full-size network, but
``--batch-size 64`` and 2 epochs on a class-balanced 1,000-image subset of the training split
(JPEG q75 copy of CIFAR-10), tested on a class-balanced 1,000 test images. Chance is 10 %;
the run must reach at least 20 %. About two minutes on two quiet CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from helpers import REPO_ROOT, assert_sane_history, cli_env

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def test_original_recipe_learns_on_a_real_subset(jpeg_archive, tmp_path):
    run_dir = tmp_path / "run"
    started = time.perf_counter()
    env = cli_env(tmp_path)
    # the decoded archive (60,000 images) is cached where every run finds it, not per test
    env.pop("CIFAR_ALEXNET_CACHE")
    if "CIFAR_ALEXNET_CACHE" in os.environ:
        env["CIFAR_ALEXNET_CACHE"] = os.environ["CIFAR_ALEXNET_CACHE"]
    args = ["train", "--recipe", "original", "--data", jpeg_archive, "--out", run_dir, "--limit-train", "1000",
            "--limit-test", "1000", "--batch-size", "64", "--epochs", "2", "--device", "cpu", "--quiet",
            "--eval-batch-size", "500"]
    result = subprocess.run([sys.executable, "-m", "cifar_alexnet", *map(str, args)], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((run_dir / "history.json").read_text())
    assert_sane_history(history, epochs=2)
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["optimizer"], config["lr"], config["augment"]) == ("adam", 1e-3, True)
    best = max(row["test_acc"] for row in history)
    print(f"real subset (CIFAR-10 (JPEG q75 copy), 1,000 train / 1,000 test, batch 64, 2 epochs): "
          f"best test accuracy {best:.1f} %, {elapsed:.0f} s, "
          f"{history[-1]['images_per_s']:.0f} training images/s")
    assert best >= 20.0, history
