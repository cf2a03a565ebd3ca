"""Every subcommand: the same limit rule for the same option, and a full disk as one line with exit 4.

``evaluate --limit-test 10**18`` was ignored where ``train`` refuses it; ``plot`` and
``evaluate`` (its decode cache) printed tracebacks on a full disk. The full disk here is real:
a tmpfs of a few KiB (needs root, as on the development machine and in CI; skipped elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cifar_alexnet.checkpoints.format import save_checkpoint
from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.cli import main
from cifar_alexnet.errors import DiskFullError
from cifar_alexnet.model import AlexNet
from cifar_alexnet.training.run_dir import write_history
from helpers import all_files, write_tiny_data


@pytest.fixture
def data(tmp_path) -> Path:
    return write_tiny_data(tmp_path / "data", "folder", train_per_class=1, test_per_class=2)


@pytest.fixture
def checkpoint(tmp_path, data):
    from cifar_alexnet.data.arrays import CIFAR10_CLASSES

    return save_checkpoint(tmp_path / "c.safetensors", AlexNet(hidden=16),
                           meta=CheckpointMeta(classes=CIFAR10_CLASSES, mean=(0.5,) * 3, std=(0.25,) * 3))


def _error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("value", [0, 5, 10**18])
def test_limit_test_is_refused_alike_by_train_and_evaluate(value, tmp_path, data, checkpoint, capsys):
    option = f"--limit-test {value}: must be in 10..1,000,000,000 (at least one image per class)"
    assert main(["train", "--data", str(data), "--limit-test", str(value), "--out", str(tmp_path / "run")]) == 2
    assert option in _error_line(capsys.readouterr().err)
    assert main(["evaluate", str(checkpoint), "--data", str(data), "--limit-test", str(value)]) == 2
    assert option in _error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_evaluate_limit_beyond_the_test_set_is_refused_not_ignored(data, checkpoint, tmp_path, capsys):
    """20 test images: --limit-test 1000 cannot be met; it used to evaluate all 20 as if it had been."""
    assert main(["evaluate", str(checkpoint), "--data", str(data), "--limit-test", "1000",
                 "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]) == 2
    err = _error_line(capsys.readouterr().err)
    assert "--limit-test 1000: needs 100 images per class" in err and "can be met is --limit-test 20" in err


def test_evaluate_batch_size_uses_the_shared_rule(data, checkpoint, capsys):
    assert main(["evaluate", str(checkpoint), "--data", str(data), "--batch-size", "0"]) == 2
    assert "--batch-size 0: must be in 1..1,000,000,000" in _error_line(capsys.readouterr().err)


def test_evaluate_with_its_cache_on_a_full_disk_is_one_line_and_exit_4(data, checkpoint, tiny_fs, capsys):
    cache = tiny_fs("16k")  # 30 decoded images need ~90 KiB
    assert main(["evaluate", str(checkpoint), "--data", str(data), "--cache-dir", str(cache),
                 "--device", "cpu"]) == DiskFullError.exit_code
    assert "no space left while writing" in _error_line(capsys.readouterr().err)
    assert all_files(cache) == []


def test_plot_on_a_full_disk_is_one_line_and_exit_4(tmp_path, tiny_fs, capsys):
    run = tiny_fs("64k")  # the history fits, a ~30 KB PNG does not after the filler
    write_history(run, [{"epoch": e, "train_loss": 1.0, "train_acc": 50.0 + e, "test_loss": 1.0,
                         "test_acc": 40.0 + e, "lr": 0.1, "epoch_time_s": 1.0, "images_per_s": 1.0}
                        for e in range(1, 4)])
    (run / "filler").write_bytes(bytes(64 * 1024 - sum(p.stat().st_size for p in run.iterdir()) - 8192))
    before = all_files(run)
    assert main(["plot", str(run)]) == DiskFullError.exit_code
    assert "curves.png" in _error_line(capsys.readouterr().err)
    assert all_files(run) == before  # no partial curves.png, no temporary file


def test_export_on_a_full_disk_is_one_line_and_leaves_nothing(checkpoint, tiny_fs, capsys):
    disk = tiny_fs("256k")  # a float16 copy of even this narrow model takes more
    assert main(["export", str(checkpoint), "--out", str(disk / "fp16.safetensors")]) == DiskFullError.exit_code
    assert "fp16.safetensors" in _error_line(capsys.readouterr().err)
    assert all_files(disk) == []
