"""Data-parallel training: two gloo processes on the CPU compute what one process computes.

The claim: with the same GLOBAL batch and BatchNorm synchronised over the processes
(``--sync-bn``), DistributedDataParallel is only a different way of computing the same
step -- every rank takes its slice of the same global batch, BatchNorm normalises with the
statistics of the whole batch, and the gradient all-reduce averages the slices' gradients
into the whole batch's gradient. So after a few steps the parameters of a 2-process run must
equal a 1-process run's up to float32 rounding.

Three choices make that comparison meaningful:

* ``--dtype float64``. In float32 the two runs differ by rounding (another summation order
  for BatchNorm statistics and gradients) and this network amplifies rounding: two
  *single-process* float32 runs that differ only in the number of CPU threads already differ
  by ~6e-4 (relative) in Conv3's weights after two steps on these tiny random images. In
  float64 the same amplification leaves ~1e-13, so a bug (a missing gradient average, a
  BatchNorm over the local slice only) stands out by ten orders of magnitude.
* ``--dropout 0``: dropout masks are drawn per process.
* SGD, not Adam. Adam divides each update by the root of the gradient's running square, so a
  parameter whose true gradient is zero -- the bias of every convolution and linear layer
  that feeds a BatchNorm, which subtracts it again -- moves by ``lr * sign(rounding noise)``:
  a different summation order flips that sign, in any precision.

The last tests kill ``torchrun`` with SIGKILL, which it cannot pass on, and check that its
workers stop anyway, through the trainer's SIGTERM handling.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import tolerances
from cifar_alexnet.checkpoints.format import load_checkpoint
from cifar_alexnet.runtime.distributed import DistContext, context_from_env
from helpers import cli_env, read_history, run_cli, write_tiny_data

#: whole network, float64 (see the module docstring)
PARITY = tolerances.NETWORK_GRAD_F64

#: 2 epochs of 2 steps with a global batch of 10 images (5 per process).
ARGS = ["--epochs", "2", "--batch-size", "10", "--hidden", "32", "--dropout", "0", "--optimizer", "sgd",
        "--lr", "0.02", "--momentum", "0.9", "--eval-batch-size", "10", "--device", "cpu", "--quiet",
        "--deterministic", "--sync-bn", "--seed", "5", "--dtype", "float64"]


@pytest.mark.slow
def test_context_from_env_reads_torchrun_variables():
    assert context_from_env({}) == DistContext(0, 1, 0)
    ctx = context_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.enabled, ctx.is_main) == (3, 4, 1, True, False)
    with pytest.raises(ValueError, match="RANK=4 WORLD_SIZE=4"):
        context_from_env({"RANK": "4", "WORLD_SIZE": "4"})


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process(tmp_path):
    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=2, test_per_class=1, seed=11)
    single = tmp_path / "single"
    result = run_cli(["train", "--data", data, "--out", single, *ARGS], tmp_path)
    assert result.returncode == 0, result.stderr

    # torchrun, without --out: the default run directory must be created once, by rank 0 only
    workdir = tmp_path / "ddp"
    workdir.mkdir()
    env = cli_env(tmp_path)
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "cifar_alexnet", "train", "--data", str(data), *ARGS],
                         env=env, cwd=workdir, capture_output=True, text=True, timeout=240)
    assert ddp.returncode == 0, ddp.stdout[-3000:] + ddp.stderr[-3000:]
    run_dirs = list((workdir / "runs").iterdir())
    assert len(run_dirs) == 1, run_dirs
    assert sorted(os.listdir(workdir)) == ["runs"]
    run_dir = run_dirs[0]
    assert sorted(os.listdir(run_dir)) == sorted(["config.json", "history.csv", "history.json", "last.safetensors",
                                                  "best.safetensors", "curves.png"])
    assert ddp.stdout.count("epoch   2/2") == 1  # only rank 0 logs
    assert "x 2 processes" in ddp.stdout

    one, two = load_checkpoint(single / "last.safetensors"), load_checkpoint(run_dir / "last.safetensors")
    assert two.meta.world_size == 2 and one.meta.world_size == 1
    assert one.state_dict.keys() == two.state_dict.keys()
    worst = 0.0
    for key, expected in one.state_dict.items():
        if key.endswith("num_batches_tracked"):
            assert torch.equal(expected, two.state_dict[key]), key
            continue
        worst = max(worst, tolerances.assert_close(two.state_dict[key].numpy(), expected.numpy(), PARITY, key))
    # the weights really moved: a frozen model would pass trivially
    assert one.state_dict["features.0.weight"].dtype == torch.float64
    losses = [row["train_loss"] for row in read_history(single)]
    assert losses[0] != losses[1]
    print(f"2 processes vs 1 process after 4 SGD steps (float64): largest relative difference {worst:.2e}")

    # the history is the global one: the same numbers as the single process's
    h1, h2 = read_history(single), read_history(run_dir)
    for r1, r2 in zip(h1, h2, strict=True):
        assert r2["train_acc"] == r1["train_acc"] and r2["test_acc"] == r1["test_acc"]
        for key in ("train_loss", "test_loss"):
            assert abs(r2[key] - r1[key]) <= PARITY * max(1.0, abs(r1[key])), (key, r1[key], r2[key])
    assert json.loads((run_dir / "config.json").read_text())["sync_bn"] is True


@pytest.mark.slow
def test_batch_size_must_divide_by_the_number_of_processes():
    from cifar_alexnet.training.config import validate_config
    from cifar_alexnet.training.recipes import config_from_recipe

    with pytest.raises(ValueError, match="divisible by the number of processes"):
        validate_config(config_from_recipe("original", batch_size=10), world_size=3)
    validate_config(config_from_recipe("original", batch_size=12), world_size=3)


@pytest.mark.slow
def test_sigterm_to_torchrun_then_resume_equals_an_uninterrupted_2_process_run(tmp_path):
    """torchrun forwards SIGTERM to its workers; they agree on a step, rank 0 saves, both exit 143."""
    import signal

    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=2, test_per_class=1, seed=11)
    env = cli_env(tmp_path)
    args = ["train", "--data", str(data), *ARGS, "--epochs", "3"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                "-m", "cifar_alexnet"]
    reference = subprocess.run([*torchrun, *args, "--out", str(tmp_path / "reference")], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=240)
    assert reference.returncode == 0, reference.stderr[-3000:]

    run_dir = tmp_path / "stopped"
    process = subprocess.Popen([*torchrun, *args, "--out", str(run_dir)], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:  # rank 0 prints one flushed line per epoch
        line = process.stdout.readline()
        assert line, process.stderr.read()[-3000:]
        if line.startswith("epoch   1/3"):
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert f"torchrun --nproc_per_node=2 -m cifar_alexnet train --resume {run_dir}" in err
    assert err.count("Resume with:") == 1  # printed by rank 0 only
    meta = load_checkpoint(run_dir / "last.safetensors").meta
    assert (meta.run.epoch, meta.run.step) != (3, 0)

    resumed = subprocess.run([*torchrun, "train", "--resume", str(run_dir)], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_checkpoint(run_dir / "last.safetensors").state_dict
    b = load_checkpoint(tmp_path / "reference" / "last.safetensors").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed 2-process run differs from the uninterrupted one"
    print(f"torchrun SIGTERM after epoch {meta.run.epoch} + {meta.run.step} steps; resumed bit-identical")


@pytest.mark.slow
def test_collective_timeout_default_and_override(monkeypatch):
    from cifar_alexnet.runtime.distributed import COLLECTIVE_TIMEOUT_S, collective_timeout

    monkeypatch.delenv("CIFAR_ALEXNET_COLLECTIVE_TIMEOUT", raising=False)
    assert collective_timeout().total_seconds() == COLLECTIVE_TIMEOUT_S < 30 * 60  # below the backends' 30 minutes
    monkeypatch.setenv("CIFAR_ALEXNET_COLLECTIVE_TIMEOUT", "7.5")
    assert collective_timeout().total_seconds() == 7.5
    for bad in ("0", "-3", "soon", "nan"):
        monkeypatch.setenv("CIFAR_ALEXNET_COLLECTIVE_TIMEOUT", bad)
        with pytest.raises(ValueError, match="CIFAR_ALEXNET_COLLECTIVE_TIMEOUT"):
            collective_timeout()


@pytest.mark.slow
def test_a_stopped_peer_ends_the_run_within_the_collective_timeout(tmp_path):
    """SIGSTOP one of two workers after the first epoch: the other gives up after the timeout, not 30 minutes."""
    import signal
    import time

    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=2, test_per_class=1, seed=11)
    env = dict(cli_env(tmp_path), CIFAR_ALEXNET_COLLECTIVE_TIMEOUT="5")
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                "-m", "cifar_alexnet", "train", "--data", str(data), *ARGS, "--epochs", "50",
                                "--out", str(run_dir)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    stopped = []
    try:
        while True:  # rank 0 prints one flushed line per epoch; epoch 1's checkpoint is written before it
            line = process.stdout.readline()
            assert line, process.stderr.read()[-3000:]
            if line.startswith("epoch   1/50"):
                break
        workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                                                  text=True).stdout.split()]
        assert len(workers) == 2, workers
        stopped = [max(workers)]  # one of the two workers; the other must not wait for it for long
        os.kill(stopped[0], signal.SIGSTOP)
        start = time.monotonic()
        process.communicate(timeout=120)
        waited = time.monotonic() - start
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert waited < 100, f"the run hung for {waited:.0f} s"
    meta = load_checkpoint(run_dir / "last.safetensors").meta  # the last checkpoint is intact: --resume works
    assert meta.run.epoch >= 1


def _process_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a running process; None once it has exited.

    With the start time, a process id the kernel reuses is not mistaken for the process we
    mean; a zombie (exited, not yet collected by its new parent) counts as exited.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after "pid (command)"
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, start_time = fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    return None if state in ("Z", "X") else start_time


def _survivors(processes: dict[int, int | None]) -> list[int]:
    """The ids among ``{pid: start time}`` that still run (a start time of None: gone when recorded)."""
    return [pid for pid, started in processes.items() if started is not None and _process_start_time(pid) == started]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's prctl")
def test_a_process_gets_one_sigterm_when_its_multithreaded_parent_is_killed(tmp_path):
    """stop_when_parent_dies without torchrun: SIGKILL a parent with 8 threads; its child gets exactly one SIGTERM.

    The kernel signals an orphan once per exiting thread of its parent; a second SIGTERM would
    make the trainer abort without saving."""
    import signal
    import time

    child = ("import os, signal, sys, time\n"
             "from cifar_alexnet.runtime.distributed import stop_when_parent_dies\n"
             "def on_sigterm(*_):\n"
             "    with open(sys.argv[1], 'a') as f:\n"
             "        f.write('SIGTERM\\n')\n"
             "signal.signal(signal.SIGTERM, on_sigterm)\n"
             "stop_when_parent_dies()\n"
             "print('ready', flush=True)\n"
             "deadline = time.monotonic() + 120\n"
             "while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:\n"
             "    time.sleep(0.01)\n"
             "time.sleep(1)  # room for repeated signals\n")
    parent = ("import subprocess, sys, threading, time\n"
              "for _ in range(7):\n"
              "    threading.Thread(target=time.sleep, args=(120,), daemon=True).start()\n"
              "child = subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]])\n"
              "print(child.pid, flush=True)\n"
              "child.wait()\n")
    marker = tmp_path / "signals-received"
    process = subprocess.Popen([sys.executable, "-c", parent, child, str(marker)], env=cli_env(tmp_path),
                               stdout=subprocess.PIPE, text=True)
    child_pid = int(process.stdout.readline())
    children = {child_pid: _process_start_time(child_pid)}
    try:
        assert process.stdout.readline().strip() == "ready"  # the child writes to the same pipe
        process.kill()
        process.wait()
        deadline = time.monotonic() + 30
        while _survivors(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _survivors(children), "the child outlived its SIGKILLed parent"
    finally:
        for pid in _survivors(children):
            os.kill(pid, signal.SIGKILL)
    assert marker.read_text() == "SIGTERM\n"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's prctl")
def test_workers_stop_and_save_when_torchrun_is_sigkilled(tmp_path):
    """SIGKILL torchrun (only it) mid-training: both workers get SIGTERM, rank 0 saves, none survives."""
    import signal
    import time

    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=2, test_per_class=1, seed=11)
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                "-m", "cifar_alexnet", "train", "--data", str(data), *ARGS, "--epochs", "1000",
                                "--out", str(run_dir)], env=cli_env(tmp_path), cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: dict[int, int | None] = {}
    try:
        while True:  # rank 0 prints one flushed line per epoch, once training runs
            line = process.stdout.readline()
            assert line, process.stderr.read()[-3000:]
            if line.startswith("epoch   1/1000"):
                break
        pids = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        workers = {int(pid): _process_start_time(int(pid)) for pid in pids}
        assert len(workers) == 2, workers
        process.kill()  # SIGKILL to torchrun alone: it cannot pass anything on to its workers
        process.wait()
        deadline = time.monotonic() + 60
        while _survivors(workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _survivors(workers), "torchrun's workers outlived it"
        _, err = process.communicate(timeout=30)  # the workers held the pipes; they have closed them now
    finally:
        for pid in _survivors(workers):
            os.kill(pid, signal.SIGKILL)
    assert err.count("SIGTERM received: finishing the current step") == 2, err[-3000:]  # in each worker
    assert err.count("Resume with:") == 1, err[-3000:]  # and rank 0 saved the resumable checkpoint
    meta = load_checkpoint(run_dir / "last.safetensors").meta
    assert meta.run.epoch >= 1 and meta.world_size == 2
