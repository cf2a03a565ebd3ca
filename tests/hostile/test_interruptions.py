"""A signal at any point outside the training loop: one line, 128 + its number, nothing left behind.

Ctrl-C during ``export``, ``evaluate`` or a training run's set-up ends with one line, not a
traceback, and SIGTERM leaves no temporary file (``export`` writes two), no half-written decode
cache and no run directory holding only ``.lock``. Each test sends the real signal to
this process at a chosen point (from inside a write, or from a decoding thread) and runs the
real entry point, :func:`cifar_alexnet.cli.main`.
"""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest

import cifar_alexnet.checkpoints.format as checkpoint_format
import cifar_alexnet.commands.export as export_command
import cifar_alexnet.data.image_folder as image_folder
import cifar_alexnet.runtime.atomic as atomic
import cifar_alexnet.training.run_dir as run_dir_module
from cifar_alexnet.checkpoints.format import save_checkpoint
from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.cli import main
from cifar_alexnet.data.arrays import CIFAR10_CLASSES
from cifar_alexnet.model import AlexNet
from helpers import TINY, write_tiny_data

SIGNALS = [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "SIGTERM received"),
           (signal.SIGHUP, 129, "SIGHUP received")]


@pytest.fixture(autouse=True)
def ctrl_c_raises_keyboard_interrupt():
    """SIGINT as a terminal delivers it: Python's KeyboardInterrupt handler.

    A shell starts background jobs (``cmd &``, ``nohup``) with SIGINT ignored, and Python then
    leaves it ignored; these tests send SIGINT themselves, so they restore the handler a
    foreground run has.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def checkpoint(tmp_path):
    return save_checkpoint(tmp_path / "models" / "c.safetensors", AlexNet(hidden=16),
                           meta=CheckpointMeta(classes=CIFAR10_CLASSES, mean=(0.5,) * 3, std=(0.25,) * 3))


def _one_line(err: str, words: str) -> None:
    assert err.count("\n") == 1 and words in err and "Traceback" not in err, err


def _leftovers(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.startswith(".tmp")
                  or (p.name.startswith(".") and p.name.endswith(".tmp")))


@pytest.mark.parametrize("signum, status, words", SIGNALS)
def test_a_signal_during_export_leaves_no_temporary_file(checkpoint, tmp_path, monkeypatch, capsys, signum, status,
                                                         words):
    real_save_file = checkpoint_format.save_file

    def save_then_signal(*args, **kwargs):  # the safetensors writer has written its file; the rename is next
        real_save_file(*args, **kwargs)
        os.kill(os.getpid(), signum)

    monkeypatch.setattr(checkpoint_format, "save_file", save_then_signal)
    out = tmp_path / "shared" / "fp16.safetensors"
    out.parent.mkdir()
    assert main(["export", str(checkpoint), "--out", str(out)]) == status
    _one_line(capsys.readouterr().err, words)
    assert os.listdir(out.parent) == [] and _leftovers(tmp_path) == []


@pytest.mark.parametrize("signum, status, words", SIGNALS)
def test_a_signal_just_after_the_temporary_file_is_made_leaves_none(checkpoint, tmp_path, monkeypatch, capsys,
                                                                      signum, status, words):
    """The signal comes the instant mkstemp has made the file, before the write that follows could begin."""
    real_mkstemp = atomic.tempfile.mkstemp

    def mkstemp_then_signal(**kwargs):
        made = real_mkstemp(**kwargs)
        os.kill(os.getpid(), signum)
        return made

    monkeypatch.setattr(atomic, "tempfile", type("tempfile", (), {"mkstemp": staticmethod(mkstemp_then_signal)}))
    out = tmp_path / "shared"
    assert main(["export", str(checkpoint), "--out", str(out / "x.safetensors")]) == status
    _one_line(capsys.readouterr().err, words)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("signum, status, words", SIGNALS)
def test_a_signal_just_after_the_run_directory_is_locked_leaves_no_directory(tmp_path, monkeypatch, capsys,
                                                                              signum, status, words):
    """The signal comes the instant the new run directory holds its lock, before anything else is written."""
    data = write_tiny_data(tmp_path / "data", "folder")
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    real_acquire = run_dir_module.DirLock.acquire

    def acquire_then_signal(directory, *, purpose):
        lock = real_acquire(directory, purpose=purpose)
        os.kill(os.getpid(), signum)
        return lock

    monkeypatch.setattr(run_dir_module.DirLock, "acquire", staticmethod(acquire_then_signal))
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *TINY]) == status
    _one_line(capsys.readouterr().err, words)
    assert not (tmp_path / "run").exists()


def _signal_inside_savez(monkeypatch, signum):
    """Send ``signum`` when the decode cache is half written."""
    real_savez = np.savez

    def savez_then_signal(handle, **arrays):
        handle.write(b"PK" + bytes(4096))  # part of a file is on disk
        os.kill(os.getpid(), signum)
        real_savez(handle, **arrays)

    monkeypatch.setattr(np, "savez", savez_then_signal)


@pytest.mark.parametrize("signum, status, words", SIGNALS)
def test_a_signal_while_evaluate_writes_its_cache_leaves_no_cache_file(checkpoint, tmp_path, monkeypatch, capsys,
                                                                       signum, status, words):
    data = write_tiny_data(tmp_path / "data", "folder")
    _signal_inside_savez(monkeypatch, signum)
    assert main(["evaluate", str(checkpoint), "--data", str(data), "--cache-dir", str(tmp_path / "cache"),
                 "--device", "cpu"]) == status
    _one_line(capsys.readouterr().err, words)
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("signum, status, words", SIGNALS)
def test_a_signal_during_training_set_up_leaves_no_run_directory(tmp_path, monkeypatch, capsys, signum, status,
                                                                 words):
    data = write_tiny_data(tmp_path / "data", "folder")
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    _signal_inside_savez(monkeypatch, signum)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *TINY]) == status
    _one_line(capsys.readouterr().err, words)
    assert not (tmp_path / "run").exists()
    assert list((tmp_path / "cache").iterdir()) == []


def test_ctrl_c_from_a_decoding_thread_stops_the_set_up(tmp_path, monkeypatch, capsys):
    """Ctrl-C reaches the main thread while the decoding threads run: the run stops, nothing is left."""
    data = write_tiny_data(tmp_path / "data", "folder")
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    real_decode = image_folder._decode_image
    first = threading.Lock()

    def decode_then_ctrl_c(raw, where):
        if first.acquire(blocking=False):  # one Ctrl-C, from whichever thread decodes first
            os.kill(os.getpid(), signal.SIGINT)
        return real_decode(raw, where)

    monkeypatch.setattr(image_folder, "_decode_image", decode_then_ctrl_c)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *TINY]) == 130
    _one_line(capsys.readouterr().err, "interrupted (Ctrl-C)")
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_the_handlers_are_put_back_after_a_command(checkpoint, tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    main(["export", str(checkpoint), "--out", str(tmp_path / "x.safetensors")])
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_forked_child_ends_on_sigterm_as_by_default(checkpoint, tmp_path, monkeypatch):
    """DataLoader workers are forked from a command and inherit its handler; SIGTERM must end them silently."""
    import multiprocessing

    seen = {}
    real_export = export_command.export_weights

    def export_and_fork(source, out):
        context = multiprocessing.get_context("fork")
        running = context.Event()
        child = context.Process(target=_sleep_when_running, args=(running,))
        child.start()
        assert running.wait(30)  # a signal before the child runs Python code is lost by CPython itself
        os.kill(child.pid, signal.SIGTERM)
        child.join(30)
        seen["exitcode"] = child.exitcode
        return real_export(source, out)

    monkeypatch.setattr(export_command, "export_weights", export_and_fork)
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "x.safetensors")]) == 0
    assert seen["exitcode"] == -signal.SIGTERM  # killed by the signal, not ended by an exception (exit 1)


def _sleep_when_running(running) -> None:
    import time

    running.set()
    time.sleep(60)
