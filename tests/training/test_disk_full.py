"""A full disk, for real: runs and caches written onto a tiny tmpfs.

Each test mounts a tmpfs of a few KiB or MiB (this needs root, as on the development machine
and in CI; elsewhere the tests are skipped with the reason) and lets the real code fill it.
What must hold: one clear error naming the file and the fix, exit status 4 from the CLI, the
previous version of every file intact, and nothing partial left behind -- no temporary
files, no run directory without a checkpoint, no half-written cache.
"""

from __future__ import annotations

import os

import pytest

from cifar_alexnet.errors import DiskFullError
from cifar_alexnet.cli import main
from cifar_alexnet.data.cifar10 import load_cifar10
from helpers import all_files, write_tiny_data


def test_checkpoint_that_does_not_fit_ends_the_run_cleanly(tmp_path, tiny_fs, monkeypatch, capsys):
    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=1, test_per_class=1, seed=3)
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    disk = tiny_fs("1m")  # config.json and history fit; a ~9 MB checkpoint does not
    status = main(["train", "--data", str(data), "--epochs", "2", "--batch-size", "10", "--hidden", "32",
                   "--device", "cpu", "--quiet", "--seed", "0", "--out", str(disk / "run")])
    err = capsys.readouterr().err
    assert status == DiskFullError.exit_code
    assert "no space left while writing" in err and ".safetensors" in err and "Free some disk space" in err
    # no checkpoint could be written, so nothing resumable exists: the run directory is gone, and
    # no temporary file survives on the full disk
    assert all_files(disk) == []


@pytest.mark.slow
def test_later_checkpoint_failure_keeps_the_previous_one(tmp_path, tiny_fs, monkeypatch, capsys):
    """The disk fills up after the first epoch's files were written: that epoch's checkpoint stays."""
    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=1, test_per_class=1, seed=4)
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    # first, how much does a finished 1-epoch run take?
    probe = tmp_path / "probe"
    common = ["--data", str(data), "--batch-size", "10", "--hidden", "32", "--device", "cpu", "--quiet", "--seed", "0"]
    assert main(["train", *common, "--epochs", "1", "--out", str(probe)]) == 0
    used = sum(p.stat().st_size for p in probe.iterdir())
    largest = max(p.stat().st_size for p in probe.iterdir())
    # room for one epoch's files plus less than one more checkpoint: epoch 2's first write fails
    disk = tiny_fs(f"{(used + largest // 2) // 1024}k")
    run = disk / "run"
    status = main(["train", *common, "--epochs", "3", "--out", str(run)])
    err = capsys.readouterr().err
    assert status == DiskFullError.exit_code, err
    assert "no space left while writing" in err
    from cifar_alexnet.checkpoints.format import load_checkpoint

    last = load_checkpoint(run / "last.safetensors")  # intact and loadable
    assert last.meta.run.epoch == 1
    assert not [name for name in os.listdir(run) if name.startswith(".")], "temporary files left behind"


def test_cache_that_does_not_fit_leaves_no_partial_cache(tmp_path, tiny_fs):
    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=2, test_per_class=1, seed=5)
    cache = tiny_fs("16k")  # 30 decoded images need ~90 KiB
    with pytest.raises(DiskFullError, match="no space left while writing") as info:
        load_cifar10(data, cache_dir=cache)
    assert str(cache) in str(info.value)
    assert all_files(cache) == []


def test_a_full_disk_between_best_and_last_keeps_best_and_says_so(tmp_path, tiny_fs, monkeypatch, capsys):
    """Epoch 1 writes best.safetensors, then the disk fills while last.safetensors is written: the run
    directory and best.safetensors stay, and the message names what is intact."""
    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=1, test_per_class=1, seed=6)
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    common = ["--data", str(data), "--batch-size", "10", "--hidden", "32", "--device", "cpu", "--quiet", "--seed", "0",
              "--epochs", "1"]
    probe = tmp_path / "probe"
    assert main(["train", *common, "--out", str(probe)]) == 0
    best, last = (probe / "best.safetensors").stat().st_size, (probe / "last.safetensors").stat().st_size
    assert last > 2 * best  # last adds Adam's two moments
    disk = tiny_fs(f"{(best + last // 2) // 1024}k")  # best fits, last does not
    run = disk / "run"
    assert main(["train", *common, "--out", str(run)]) == DiskFullError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left while writing" in err[0] and "last.safetensors" in err[0]
    assert "keeps best.safetensors" in err[0] and "cannot be resumed" in err[0]
    from cifar_alexnet.checkpoints.format import load_checkpoint

    assert load_checkpoint(run / "best.safetensors").meta.run.epoch == 1  # the good checkpoint is still there
    assert not [name for name in os.listdir(run) if name.startswith(".")], "temporary files left behind"
