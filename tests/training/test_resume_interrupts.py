"""Stopping and resuming: epoch-boundary resume, SIGINT/SIGTERM mid-run, kill -9 while a
checkpoint is written, and a diverging loss.

The claim under test: on a CPU with ``--deterministic``, a run that is stopped (cleanly) and
resumed ends with *bit-identical* weights to a run that was never stopped. That only holds
if every random stream (the loader's shuffling/augmentation generator, dropout's global
generator) and every piece of optimizer state is saved and restored exactly, and the
interrupted epoch is replayed from the right place -- any slip shows up as a difference.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.runtime.random_state import capture_rng_state
from cifar_alexnet.checkpoints.format import load_checkpoint, save_checkpoint
from cifar_alexnet.cli import main
from cifar_alexnet.model import AlexNet
from cifar_alexnet.runtime.atomic import remove_leftover_temp_files
from helpers import (TINY, assert_bit_identical, assert_sane_history, cli_env, read_history, run_cli,
                     write_tiny_data)

#: 2 epochs of 2 steps on 10 images; dropout stays on (its random stream must be restored too).
RUN = [*TINY, "--epochs", "2", "--deterministic", "--seed", "7"]
#: The same run stopped after its first epoch.
FIRST_EPOCH_ONLY = [*RUN, "--epochs", "1"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("resume")


@pytest.fixture(scope="module")
def data(workdir) -> Path:
    return write_tiny_data(workdir / "data", "folder", seed=3)


@pytest.fixture(scope="module")
def uninterrupted(workdir, data) -> Path:
    """The reference: the same run, never stopped."""
    run_dir = workdir / "uninterrupted"
    result = run_cli(["train", "--data", data, "--out", run_dir, *RUN], workdir)
    assert result.returncode == 0, result.stderr
    return run_dir


def test_resume_after_an_epoch_is_bit_identical(workdir, data, uninterrupted, monkeypatch):
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(workdir / "cache"))
    run_dir = workdir / "two-parts"
    assert main(["train", "--data", str(data), "--out", str(run_dir), *FIRST_EPOCH_ONLY]) == 0
    assert load_checkpoint(run_dir / "last.safetensors").meta.run.epoch == 1
    assert main(["train", "--resume", str(run_dir), "--epochs", "2", "--quiet"]) == 0
    assert_bit_identical(run_dir / "last.safetensors", uninterrupted / "last.safetensors")
    ours, reference = read_history(run_dir), read_history(uninterrupted)
    assert_sane_history(ours, epochs=2)
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert [r[key] for r in ours] == [r[key] for r in reference], key


def test_resume_refuses_to_change_the_recipe(workdir, uninterrupted, capsys):
    assert main(["train", "--resume", str(uninterrupted), "--lr", "0.1"]) == 2
    assert "--lr" in capsys.readouterr().err


def _start_and_signal(args: list, workdir: Path, signum: int, after: str) -> tuple[subprocess.Popen, str, str]:
    """Start a training subprocess, wait for the first output line starting with ``after``, signal it.

    The trainer prints its run description ("run ...") right before the first step and one
    line per finished epoch ("epoch   1/2 ..."), flushing each, so the signal lands inside
    the first or the second epoch on a slow or a fast machine alike.
    """
    process = subprocess.Popen([sys.executable, "-m", "cifar_alexnet", *map(str, args)], env=cli_env(workdir),
                               cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while True:
        line = process.stdout.readline()
        seen += line
        assert line, f"the trainer ended before printing {after!r}:\n{seen}{process.stderr.read()}"
        if line.startswith(after):
            break
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return process, seen + out, err


@pytest.mark.parametrize("signum, exit_code, after", [(signal.SIGINT, 130, "run "),
                                                      (signal.SIGTERM, 143, "epoch   1/2")])
@pytest.mark.slow
def test_signal_then_resume_is_bit_identical(workdir, data, uninterrupted, signum, exit_code, after):
    run_dir = workdir / f"signal-{signum}"
    process, out, err = _start_and_signal(["train", "--data", data, "--out", run_dir, *RUN], workdir, signum, after)
    assert process.returncode == exit_code, err
    name = signal.Signals(signum).name
    assert f"{name} received" in err
    command = f"cifar-alexnet train --resume {run_dir}"
    assert command in err  # the exact resume command is printed
    stopped = load_checkpoint(run_dir / "last.safetensors")
    where = (stopped.meta.run.epoch, stopped.meta.run.step)
    assert where != (2, 0), "the signal came after the last step; nothing was interrupted"

    result = run_cli(["train", "--resume", run_dir], workdir)
    assert result.returncode == 0, result.stderr
    assert_bit_identical(run_dir / "last.safetensors", uninterrupted / "last.safetensors")
    assert [r["train_loss"] for r in read_history(run_dir)] == [r["train_loss"] for r in read_history(uninterrupted)]
    print(f"{name}: stopped after epoch {where[0]} + {where[1]} steps; resumed bit-identical")


@pytest.mark.parametrize("signum, exit_code", [(signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_signal_inside_an_epoch_saves_a_mid_epoch_checkpoint(workdir, data, signum, exit_code):
    """A signal before/during the first step stops after that step: epoch 0 completed, step 1 of epoch 1.

    SIGHUP (the terminal closed) is handled like SIGTERM: the mid-epoch checkpoint is written.
    """
    run_dir = workdir / f"mid-epoch-{signum}"
    process, _, err = _start_and_signal(["train", "--data", data, "--out", run_dir, *RUN], workdir, signum, "run ")
    assert process.returncode == exit_code, err
    assert f"{signal.Signals(signum).name} received" in err
    meta = load_checkpoint(run_dir / "last.safetensors").meta
    assert (meta.run.epoch, meta.run.step) == (0, 1)
    assert meta.run.mid_epoch.seen == 5  # one batch of 5 images went into the running sums


def test_a_diverging_loss_stops_the_run_and_keeps_the_last_good_checkpoint(workdir, data, monkeypatch, capsys):
    """Train one good epoch, then resume with a schedule that jumps to an absurd rate: the run must stop at once."""
    from cifar_alexnet.training import loop

    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(workdir / "cache"))
    run_dir = workdir / "diverge"
    assert main(["train", "--data", str(data), "--out", str(run_dir), *FIRST_EPOCH_ONLY]) == 0
    good = (run_dir / "last.safetensors").read_bytes()
    monkeypatch.setattr(loop, "learning_rate", lambda *args: 1e30)  # the schedule, from epoch 2 on
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--epochs", "2"]) == 3
    stderr = capsys.readouterr().err
    assert "non-finite training loss at epoch 2, step" in stderr
    assert "last good checkpoint is kept" in stderr
    assert (run_dir / "last.safetensors").read_bytes() == good
    assert len(read_history(run_dir)) == 1


@pytest.mark.slow
def test_diverging_from_the_start_names_epoch_1(workdir, data):
    result = run_cli(["train", "--data", data, "--out", workdir / "diverge-now", *RUN, "--lr", "1e30"], workdir)
    assert result.returncode == 3
    assert "non-finite training loss at epoch 1, step" in result.stderr
    assert not (workdir / "diverge-now" / "last.safetensors").exists()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resumed_optimizer_keeps_the_parameters_layout_and_this_devices_kernels(tmp_path, optimizer):
    """Resume through a real checkpoint file: buffers get the channels_last strides back, and the
    stored ``fused`` flag of a run on another device does not replace this device's choice.

    (CUDA's fused kernels refuse buffers whose strides differ from the parameters'; the CPU ones
    do not check, so the strides are compared directly here.)
    """
    from cifar_alexnet.training.recipes import config_from_recipe
    from cifar_alexnet.training.optim import load_optimizer_state, make_optimizer

    cpu = torch.device("cpu")
    config = config_from_recipe("original", optimizer=optimizer, momentum=0.9, channels_last=True, hidden=32)

    def model_and_one_step(fused: bool):
        torch.manual_seed(0)
        model = AlexNet(hidden=32).to(memory_format=torch.channels_last)
        opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=True) if fused and optimizer == "sgd"
               else torch.optim.Adam(model.parameters(), lr=1e-3, fused=True) if fused
               else make_optimizer(config, model, cpu))
        x = torch.randn(4, 3, 32, 32).to(memory_format=torch.channels_last)
        model(x).square().mean().backward()
        opt.step()
        return model, opt

    written_on_other_device, source = model_and_one_step(fused=True)  # as a run on a GPU writes it
    assert source.param_groups[0]["fused"] is True
    meta = CheckpointMeta(classes=tuple(str(i) for i in range(10)), mean=(0.5,) * 3, std=(0.25,) * 3)
    save_checkpoint(tmp_path / "last.safetensors", written_on_other_device, meta=meta, optimizer=source)
    stored = load_checkpoint(tmp_path / "last.safetensors").optimizer_state

    model, resumed = model_and_one_step(fused=False)
    load_optimizer_state(resumed, stored)
    assert resumed.param_groups[0]["fused"] == make_optimizer(config, model, cpu).param_groups[0]["fused"]
    conv_weight = model.features[4].weight  # 4-D: channels_last strides differ from contiguous ones
    assert not conv_weight.is_contiguous()
    checked = 0
    for param, source_param in zip(resumed.param_groups[0]["params"], source.param_groups[0]["params"]):
        for name, value in resumed.state[param].items():
            if torch.is_tensor(value) and value.shape == param.shape:
                assert value.stride() == param.stride(), name
                assert torch.equal(value, source.state[source_param][name]), name
                checked += 1
    assert checked >= len(resumed.param_groups[0]["params"])
    resumed.step()  # and the restored state still steps


# --------------------------------------------------------------------------------------------
# kill -9 while a checkpoint is being written
# --------------------------------------------------------------------------------------------

KILL_TRIALS = 24


def _writer(path: Path, report_fd: int) -> None:  # runs in a forked child, never returns
    try:
        torch.set_num_threads(1)
        model = AlexNet(hidden=64)
        optimizer = torch.optim.Adam(model.parameters())
        model(torch.randn(4, 3, 32, 32)).sum().backward()
        optimizer.step()  # give the optimizer state (exp_avg, exp_avg_sq) to save
        meta = CheckpointMeta(classes=tuple(str(i) for i in range(10)), mean=(0.5,) * 3, std=(0.25,) * 3)
        counter = 0
        while True:
            counter += 1
            with torch.no_grad():
                model.features[0].bias.fill_(float(counter))  # the content says which save it is
            save_checkpoint(path, model, meta=replace(meta, extra={"counter": counter}), optimizer=optimizer,
                            rng_state=capture_rng_state())
            os.write(report_fd, f"{counter}\n".encode())
    finally:
        os._exit(1)


@pytest.mark.slow
def test_kill_9_during_checkpoint_writes_always_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "last.safetensors"
    rng = random.Random(12345)
    for trial in range(KILL_TRIALS):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _writer(path, write_fd)
        os.close(write_fd)
        # wait for the first complete save of this trial, then kill at a random moment
        with os.fdopen(read_fd) as reports:
            first = reports.readline()
            assert first, "the writer died before its first save"
            time.sleep(rng.uniform(0.0, 0.15))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            completed = [int(first)] + [int(line) for line in reports.read().split()]
        ckpt = load_checkpoint(path)  # must never raise
        counter = ckpt.meta.extra["counter"]
        # the file holds the last save that completed, or (killed after the rename) the one in flight
        assert completed[-1] <= counter <= completed[-1] + 1, (trial, completed[-1], counter)
        assert torch.all(ckpt.state_dict["features.0.bias"] == float(counter))
        assert ckpt.optimizer_state is not None and ckpt.rng_state is not None
    # A killed writer cannot delete its temporary files (ours, ".last.safetensors.*.tmp", and
    # the safetensors library's own ".tmpXXXXXX"); the next start of a run removes every one.
    remove_leftover_temp_files(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]
