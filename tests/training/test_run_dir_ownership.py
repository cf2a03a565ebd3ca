"""One trainer per run directory; ``--resume`` continues exactly the stored run, from anywhere.

The lock (:mod:`cifar_alexnet.runtime.dir_lock`), the leftovers of a killed save, options that
conflict with the stored run, relative paths, and ``--data`` on resume.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cifar_alexnet.cli import main
from cifar_alexnet.runtime.atomic import atomic_path, remove_leftover_temp_files
from cifar_alexnet.runtime.dir_lock import LOCK_NAME, DirLock, DirLockedError
from helpers import REPO_ROOT, TINY, cli_env, read_history, run_cli, write_tiny_data

RUN = [*TINY, "--epochs", "1", "--seed", "3"]

HOLD_LOCK = """
import sys, time
from cifar_alexnet.runtime.dir_lock import DirLock
DirLock.acquire(sys.argv[1], purpose="testing")
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ownership")


@pytest.fixture(scope="module")
def data(workdir) -> Path:
    return write_tiny_data(workdir / "data", "folder", train_per_class=1, test_per_class=1, seed=5)


@pytest.fixture(scope="module")
def finished_run(workdir, data) -> Path:
    """A finished one-epoch run, trained once for the module (tests copy it before changing it)."""
    run_dir = workdir / "finished"
    result = run_cli(["train", "--data", data, "--out", run_dir, *RUN], workdir)
    assert result.returncode == 0, result.stderr
    return run_dir


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def hold_lock(directory: Path) -> subprocess.Popen:
    """Another process that holds ``directory``'s lock until killed."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(directory)], env=env, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


# --- the lock itself ---------------------------------------------------------------------------


def test_a_held_lock_refuses_a_second_owner_and_names_the_first(tmp_path):
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(DirLockedError, match=rf"another process \(pid {holder.pid} on .*\) is training in"):
            DirLock.acquire(tmp_path, purpose="training in")
    finally:
        holder.kill()
        holder.wait()
    # killed: the file is still there, but nobody holds it -- a stale lock is simply taken over
    assert (tmp_path / LOCK_NAME).exists()
    lock = DirLock.acquire(tmp_path, purpose="training in")
    assert (tmp_path / LOCK_NAME).read_text().startswith(f"pid {os.getpid()} ")
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()
    lock.release()  # idempotent


def test_acquire_tries_again_when_the_owner_releases_between_its_open_and_its_lock(tmp_path, monkeypatch):
    """The inode check: a lock on a file that has just lost its name must not count as holding the directory."""
    import fcntl

    from cifar_alexnet.runtime import dir_lock

    first = DirLock.acquire(tmp_path, purpose="x")
    real_flock, calls = fcntl.flock, []

    def owner_lets_go_first(fd, operation):
        if not calls:
            first.release()  # deletes .lock: the file this process just opened has no name any more
        calls.append(fd)
        return real_flock(fd, operation)

    monkeypatch.setattr(dir_lock.fcntl, "flock", owner_lets_go_first)
    second = DirLock.acquire(tmp_path, purpose="x")
    assert len(calls) == 2  # the first lock was on the deleted file, so it tried again
    assert (tmp_path / LOCK_NAME).read_text().startswith(f"pid {os.getpid()} ")
    second.release()


# --- trainers and resumes ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_trainer_or_resume_on_a_running_directory_stops_at_once(tmp_path, data):
    run_dir = tmp_path / "shared-out"
    args = ["train", "--data", data, "--out", run_dir, *TINY, "--epochs", "100000", "--seed", "1"]
    env = cli_env(tmp_path)
    first = subprocess.Popen([sys.executable, "-m", "cifar_alexnet", *map(str, args)], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "last.safetensors").exists():  # the first has trained an epoch
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.2)
        second = run_cli(args, tmp_path)
        assert second.returncode == 2
        assert f"is in use: another process (pid {first.pid} " in second.stderr
        assert "Traceback" not in second.stderr
        resume = run_cli(["train", "--resume", run_dir], tmp_path)
        assert resume.returncode == 2 and f"(pid {first.pid} " in resume.stderr
        assert first.poll() is None  # the first trainer is undisturbed
    finally:
        first.terminate()
        _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err
    assert not (run_dir / LOCK_NAME).exists()  # a clean stop leaves no lock file behind


@pytest.mark.slow
def test_a_refused_trainer_leaves_the_owners_directory_alone(tmp_path, data):
    run_dir = tmp_path / "owned"
    run_dir.mkdir()
    holder = hold_lock(run_dir)
    try:
        result = run_cli(["train", "--data", data, "--out", run_dir, *RUN], tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2 and "is in use" in result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]  # nothing written, nothing removed


def test_resume_clears_the_temporary_files_of_a_killed_save(tmp_path, finished_run):
    run_dir = copy_run(finished_run, tmp_path)
    # what kill -9 in the middle of a save leaves: atomic_path's temporary files, and the one
    # safetensors writes before renaming it to atomic_path's (both full-sized at worst)
    leftovers = [run_dir / ".last.safetensors.k3j2h1.tmp", run_dir / ".history.json.a8b7c6.tmp",
                 run_dir / ".tmpQ7xZ0a"]
    leftovers[0].write_bytes((run_dir / "last.safetensors").read_bytes())
    leftovers[1].touch()
    leftovers[2].write_bytes((run_dir / "last.safetensors").read_bytes())
    assert main(["train", "--resume", str(run_dir), "--epochs", "2"]) == 0
    assert not any(p.exists() for p in leftovers)
    assert len(read_history(run_dir)) == 2
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []


def test_remove_leftover_temp_files_takes_atomic_paths_temporaries_only(tmp_path):
    keep = [tmp_path / name for name in ("history.json", "notes.tmp", ".lock", ".hidden", ".tmpfile", ".tmp12345")]
    for path in keep:
        path.write_text("x")
    with atomic_path(tmp_path / "config.json") as tmp:
        tmp.write_text("{}")
        assert remove_leftover_temp_files(tmp_path) == [tmp]  # as if this writer had been killed here
        tmp.write_text("{}")  # (so that atomic_path can finish)
    assert all(p.exists() for p in keep)


def test_resume_refuses_options_that_differ_from_the_stored_run(tmp_path, finished_run, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    before = (run_dir / "last.safetensors").read_bytes()
    for option in (["--recipe", "fast"], ["--lr", "0.5"], ["--batch-size", "7"], ["--no-augment"], ["--eval-train"],
                   ["--out", str(tmp_path / "elsewhere")]):
        assert main(["train", "--resume", str(run_dir), *option]) == 2, option
        err = capsys.readouterr().err
        assert f"differ from it: {' '.join(option)} (the run has --" in err, err
    # the stored values themselves are no conflict; nothing to do, since the run is complete
    assert main(["train", "--resume", str(run_dir), "--recipe", "original", "--batch-size", "5",
                 "--out", str(run_dir / ".." / run_dir.name)]) == 0
    assert (run_dir / "last.safetensors").read_bytes() == before


@pytest.mark.slow
def test_a_run_started_with_relative_paths_resumes_from_another_directory(tmp_path, data):
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    shutil.copytree(data, start / "mydata")
    result = run_cli(["train", "--data", "mydata", "--out", "runs/rel", *RUN], start)
    assert result.returncode == 0, result.stderr
    config = json.loads((start / "runs/rel/config.json").read_text())
    assert config["data"] == str(start / "mydata") and config["out"] == str(start / "runs/rel")
    result = run_cli(["train", "--resume", start / "runs/rel", "--epochs", "2"], elsewhere)
    assert result.returncode == 0, result.stderr
    assert len(read_history(start / "runs/rel")) == 2
    assert json.loads((start / "runs/rel/config.json").read_text())["epochs"] == 2  # the extension is recorded


@pytest.mark.slow
def test_resume_with_data_accepts_the_same_data_moved_and_refuses_other_data(tmp_path, finished_run, data):
    run_dir = copy_run(finished_run, tmp_path)
    moved = tmp_path / "moved-data"
    shutil.copytree(data, moved)
    other = write_tiny_data(tmp_path / "other", "folder", train_per_class=1, test_per_class=1, seed=6)
    result = run_cli(["train", "--resume", run_dir, "--data", other, "--epochs", "2"], tmp_path)
    assert result.returncode == 2
    assert f"--data {other}: the training images' per-channel mean" in result.stderr
    assert "not the data set (or subset) the run was trained on" in result.stderr
    result = run_cli(["train", "--resume", run_dir, "--data", moved, "--epochs", "2"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((run_dir / "config.json").read_text())["data"] == str(moved)


def test_a_config_json_that_disagrees_with_the_checkpoint_is_refused(tmp_path, finished_run, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    config = json.loads((run_dir / "config.json").read_text())
    config["lr"] = 0.5
    (run_dir / "config.json").write_text(json.dumps(config))
    assert main(["train", "--resume", str(run_dir), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{run_dir / 'config.json'} does not match {run_dir / 'last.safetensors'}" in err
    assert "lr 0.5 vs 0.001" in err
    assert len(read_history(run_dir)) == 1


@pytest.mark.slow
def test_a_two_process_run_whose_directory_is_locked_fails_on_every_rank_at_once(tmp_path, data):
    run_dir = tmp_path / "locked"
    run_dir.mkdir()
    holder = hold_lock(run_dir)
    try:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                 "-m", "cifar_alexnet", "train", "--data", str(data), "--out", str(run_dir),
                                 *TINY, "--batch-size", "4", "--drop-last"],
                                env=cli_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=240)
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode != 0
    assert result.stderr.count("is in use: another process") == 1, result.stderr[-3000:]  # rank 0 says it once
    assert elapsed < 120  # not the collective timeout: rank 1 learned of it at once
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]


@pytest.mark.parametrize("out", ["afile", "afile/run", "afile/deeper/run"])
def test_an_out_on_or_under_a_file_is_one_error_line_and_leaves_the_file(tmp_path, data, capsys, out):
    (tmp_path / "afile").write_text("not a directory")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / out), *RUN]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --out {tmp_path / out}: {tmp_path / 'afile'} is a file, not a directory; "
                   "choose another --out"]
    assert (tmp_path / "afile").read_text() == "not a directory"


NO_MOUNT = 97  # the exit status of the wrapper below when it cannot mount (no privileges for a mount namespace)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare for a private mount")
def test_an_out_on_a_read_only_file_system_is_one_error_line(tmp_path, data):
    """A read-only tmpfs, mounted in a mount namespace of the trainer's own, holds the --out."""
    probe = subprocess.run(["unshare", "--mount", "--map-root-user", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.strip()}")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    train = [sys.executable, "-m", "cifar_alexnet", "train", "--data", str(data), "--out", str(read_only / "run"), *RUN]
    command = f"mount -t tmpfs -o ro tmpfs {shlex.quote(str(read_only))} || exit {NO_MOUNT}; exec {shlex.join(train)}"
    result = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", command], env=cli_env(tmp_path),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    if result.returncode == NO_MOUNT:
        pytest.skip(f"cannot mount a read-only tmpfs in a private mount namespace here: {result.stderr.strip()}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {read_only / 'run'}: cannot use it as a run directory (Read-only file system); choose another --out"]


def test_a_new_run_directory_whose_lock_cannot_be_made_is_taken_away_again(tmp_path, data, monkeypatch, capsys):
    """The folder is made first, then locked; when the lock file cannot be written the empty folder goes too."""
    import errno

    def cannot_write(directory, *, purpose):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(DirLock, "acquire", staticmethod(cannot_write))
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *RUN]) == 2
    assert "Permission denied" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
