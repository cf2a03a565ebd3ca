"""Every subcommand that writes goes through one output-path rule: no device node, symlink or folder is replaced.

``plot --out /dev/full`` run as root used to replace the machine's /dev/full with a PNG. Here a
FIFO and a UNIX socket made in ``tmp_path`` stand in for a device: the rule that refuses them
(not a regular file) is the one that refuses a device node. Symbolic links are followed and
stay links (the choice documented in cifar_alexnet/runtime/paths.py).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import uuid

import pytest

from cifar_alexnet.checkpoints.format import save_checkpoint
from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.cli import main
from cifar_alexnet.data.arrays import CIFAR10_CLASSES
from cifar_alexnet.model import AlexNet
from cifar_alexnet.training.run_dir import write_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _history(epochs: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 40.0 + e, "test_loss": 2.2 / e, "test_acc": 38.0 + e,
             "lr": 1e-3, "epoch_time_s": 1.0, "images_per_s": 100.0} for e in range(1, epochs + 1)]


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_history(run, _history(3))
    return run


@pytest.fixture
def checkpoint(tmp_path):
    return save_checkpoint(tmp_path / "c.safetensors", AlexNet(hidden=16),
                           meta=CheckpointMeta(classes=CIFAR10_CLASSES, mean=(0.5,) * 3, std=(0.25,) * 3))


def _one_error_line(err: str, *words: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def _is_fifo(path) -> bool:
    return stat.S_ISFIFO(os.lstat(path).st_mode)


def test_plot_out_fifo_is_refused_and_left_as_it_was(run_dir, tmp_path, capsys):
    os.mkfifo(tmp_path / "full")
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "full")]) == 2
    _one_error_line(capsys.readouterr().err, "--out", "not a regular file but a FIFO")
    assert _is_fifo(tmp_path / "full")
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary file


def test_plot_out_socket_and_folder_are_refused(run_dir, tmp_path, capsys):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "sock"))
    try:
        assert main(["plot", str(run_dir), "--out", str(tmp_path / "sock")]) == 2
        _one_error_line(capsys.readouterr().err, "not a regular file but a socket")
        assert stat.S_ISSOCK(os.lstat(tmp_path / "sock").st_mode)
    finally:
        server.close()
    assert main(["plot", str(run_dir), "--out", str(tmp_path)]) == 2
    _one_error_line(capsys.readouterr().err, "not a regular file but a folder")


def test_plot_out_symlink_writes_through_the_link(run_dir, tmp_path, capsys):
    (tmp_path / "figures").mkdir()
    target = tmp_path / "figures" / "curves.png"
    target.write_bytes(b"old")
    (tmp_path / "link.png").symlink_to(target)
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "link.png")]) == 0
    assert (tmp_path / "link.png").is_symlink() and target.read_bytes().startswith(PNG_SIGNATURE)


def test_a_run_directorys_own_curves_file_is_not_replaced_when_it_is_a_fifo(run_dir, capsys):
    os.mkfifo(run_dir / "curves.png")
    assert main(["plot", str(run_dir)]) == 2
    _one_error_line(capsys.readouterr().err, "curves.png", "not a regular file")
    assert _is_fifo(run_dir / "curves.png")


def test_evaluate_out_fifo_is_refused_before_any_work(tmp_path, capsys):
    os.mkfifo(tmp_path / "cm.png")
    assert main(["evaluate", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "cm.png")]) == 2
    _one_error_line(capsys.readouterr().err, "--out", "not a regular file")  # not "missing.safetensors"
    assert _is_fifo(tmp_path / "cm.png")


def test_export_out_fifo_and_link_to_an_existing_file_are_refused(checkpoint, tmp_path, capsys):
    os.mkfifo(tmp_path / "out.safetensors")
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "out.safetensors")]) == 2
    _one_error_line(capsys.readouterr().err, "not a regular file")
    assert _is_fifo(tmp_path / "out.safetensors")
    (tmp_path / "kept.safetensors").write_bytes(b"keep me")
    (tmp_path / "link.safetensors").symlink_to(tmp_path / "kept.safetensors")
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "link.safetensors")]) == 2
    _one_error_line(capsys.readouterr().err, "already exists")
    assert (tmp_path / "kept.safetensors").read_bytes() == b"keep me"


def test_export_through_a_dangling_link_writes_the_file_it_names(checkpoint, tmp_path, capsys):
    (tmp_path / "link.safetensors").symlink_to(tmp_path / "made.safetensors")
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "link.safetensors")]) == 0
    assert (tmp_path / "link.safetensors").is_symlink() and (tmp_path / "made.safetensors").stat().st_size > 0


def test_train_out_fifo_names_what_stands_there(tmp_path, capsys):
    os.mkfifo(tmp_path / "run")
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--device", "cpu"]) == 2
    _one_error_line(capsys.readouterr().err, "--out", "a FIFO")
    assert _is_fifo(tmp_path / "run")


@pytest.fixture
def read_only_run(tmp_path, run_dir):
    """A run directory on a read-only mount (needs root; skipped elsewhere)."""
    mount = tmp_path / f"ro-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        (mount / "history.json").write_text(json.dumps(_history(2)))
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_plot_in_a_read_only_run_directory_is_one_line(read_only_run, capsys):
    assert main(["plot", str(read_only_run)]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "read-only", "curves.png")
    assert "--out" not in err  # the default place: the command line named no --out
