"""A run directory: its checkpoints, its history and curves, and the lines a run prints.

``RUN_DIR/`` holds ``config.json`` (the :class:`~cifar_alexnet.recipes.TrainConfig`),
``last.safetensors`` (everything needed to resume), ``best.safetensors`` (the weights of the
epoch with the best test accuracy), ``history.json`` / ``history.csv`` (one row per epoch)
and ``curves.png``. Every file is written atomically (:mod:`cifar_alexnet.runtime.atomic`).
While a trainer runs, ``.lock`` holds its PID; one trainer at a time may use a directory.
"""

from __future__ import annotations

import csv
import io
import sys
from datetime import datetime, timezone
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from cifar_alexnet.checkpoint import CHECKPOINT_BEST, CHECKPOINT_LAST, Checkpoint, load_checkpoint, save_checkpoint
from cifar_alexnet.runtime.atomic import atomic_write_json, atomic_write_text, remove_leftover_temp_files
from cifar_alexnet.runtime.dir_lock import LOCK_NAME, DirLock
from cifar_alexnet.runtime.distributed import DistContext, all_reduce_max
from cifar_alexnet.runtime.random_state import capture_rng_state

__all__ = ["CHECKPOINT_BEST", "CHECKPOINT_LAST", "HISTORY_FIELDS", "RunDirClaim", "claim_run_dir",
           "default_run_dir", "format_row", "log_line", "save_run_checkpoint", "write_curves", "write_history"]

HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_time_s",
                  "images_per_s"]
EVAL_TRAIN_FIELDS = ["eval_train_loss", "eval_train_acc"]


def default_run_dir(recipe: str) -> Path:
    """``runs/<UTC time>-<recipe>``, with a numeric suffix if that name is taken."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path, suffix = Path("runs") / f"{stamp}-{recipe}", 1
    while path.exists():
        suffix += 1
        path = Path("runs") / f"{stamp}-{recipe}-{suffix}"
    return path


@dataclass
class RunDirClaim:
    """A run directory this process owns for the length of a run."""

    checkpoint: Checkpoint | None  # what ``--resume`` continues from; None for a new run
    created: bool  # this process made the directory, so a failed set-up may remove it again
    lock: DirLock | None  # held by rank 0 only

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


def claim_run_dir(run_dir: Path, *, resume: bool, ctx: DistContext, device: torch.device) -> RunDirClaim:
    """Take ``run_dir`` for this run: lock it, clear an interrupted save's leftovers, load what resumes.

    A new run needs a directory that does not exist or is empty; ``--resume`` needs one with
    ``last.safetensors``. Rank 0 holds the lock (:mod:`cifar_alexnet.runtime.dir_lock`), so a
    second trainer or a second resume of the same run stops at once; every process of a
    multi-process run learns whether rank 0 got it.

    Raises:
        FileExistsError: the directory is not free (in use, or a new run's is not empty).
        FileNotFoundError: ``--resume`` of a directory without ``last.safetensors``.
        CheckpointError: ``last.safetensors`` is damaged.
    """
    claim, problem = RunDirClaim(None, False, None), None
    if ctx.is_main:
        try:
            claim = _claim_here(run_dir, resume)
        except OSError as exc:  # in use, not free, not found -- or not writable at all (permissions, read-only)
            problem = exc
    failed = torch.tensor(int(problem is not None), device=device)
    all_reduce_max(failed, ctx)
    if problem is not None:
        if problem.errno is None:  # one of the messages above, already saying what to do
            raise problem
        raise FileExistsError(f"{run_dir}: cannot use it as a run directory ({problem.strerror or problem}); "
                              "choose another --out")
    if failed.item():
        raise FileExistsError(f"{run_dir}: rank 0 could not claim the run directory (see its message)")
    if resume:
        claim.checkpoint = load_checkpoint(run_dir / CHECKPOINT_LAST)
    return claim


def _claim_here(run_dir: Path, resume: bool) -> RunDirClaim:
    created = False
    if not resume:
        blocking = next((p for p in (run_dir, *run_dir.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise FileExistsError(f"--out {run_dir}: {blocking} is a file, not a directory; choose another --out")
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_dir.mkdir()
            created = True
        except FileExistsError:
            pass
    elif not run_dir.is_dir():
        raise FileNotFoundError(f"--resume {run_dir}: no such run directory")
    lock = DirLock.acquire(run_dir, purpose="training in")
    try:
        if resume and not (run_dir / CHECKPOINT_LAST).is_file():
            raise FileNotFoundError(f"--resume {run_dir}: no {CHECKPOINT_LAST} there; the run stopped before its "
                                    "first checkpoint -- start it again instead")
        if not resume and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
            raise FileExistsError(f"--out {run_dir} already exists and is not empty; choose another directory, "
                                  f"or continue that run with --resume {run_dir}")
        remove_leftover_temp_files(run_dir)  # of a save that was killed: nobody else writes here now
    except BaseException:
        lock.release()
        raise
    return RunDirClaim(None, created, lock)


def save_run_checkpoint(model: nn.Module, meta: dict, history: list[dict], best: dict, path: Path, *,
                        completed_epochs: int, optimizer: torch.optim.Optimizer | None = None,
                        scaler: torch.amp.GradScaler | None = None, loader=None,
                        mid_epoch: dict | None = None) -> None:
    """Write ``path``; with ``optimizer`` also the optimizer, the scaler and every random state (resumable)."""
    rng_state = None
    if optimizer is not None:
        rng_state = capture_rng_state()
        rng_state["generators"] = {"loader": loader.state_dict()["generator_state"]}  # mid-epoch: the epoch's start
    full_meta = {**meta, "epoch": completed_epochs, "step": mid_epoch["step"] if mid_epoch else 0,
                 "mid_epoch": mid_epoch, "metrics": history[-1] if history else {}, "best": dict(best),
                 "history": history, "scaler": scaler.state_dict() if scaler is not None else None}
    save_checkpoint(path, model, meta=full_meta, optimizer=optimizer, rng_state=rng_state)


def write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite ``history.json`` and ``history.csv`` from the list of per-epoch rows."""
    atomic_write_json(run_dir / "history.json", history)
    columns = HISTORY_FIELDS + [f for f in EVAL_TRAIN_FIELDS if any(f in row for row in history)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(run_dir / "history.csv", buffer.getvalue())


def write_curves(run_dir: Path, history: list[dict[str, Any]], log: Callable[[str], None]) -> None:
    """``curves.png`` via :func:`cifar_alexnet.plots.plot_history`; a plotting failure only warns."""
    try:
        from cifar_alexnet.plots import plot_history

        plot_history(history, run_dir / "curves.png")
    except Exception as exc:  # a broken plot must never end a training run
        log(f"warning: could not draw curves.png ({type(exc).__name__}: {exc})")


def log_line(is_main: bool, message: str) -> None:
    """Print one line (rank 0 only) without breaking the progress bar."""
    if is_main:
        from tqdm import tqdm

        tqdm.write(message, file=sys.stdout)
        sys.stdout.flush()


def format_row(row: dict[str, Any], epochs: int) -> str:
    line = (f"epoch {row['epoch']:>3}/{epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:6.2f}%  "
            f"test loss {row['test_loss']:.4f} acc {row['test_acc']:6.2f}%  lr {row['lr']:.3g}  "
            f"{row['epoch_time_s']:.1f} s  {row['images_per_s']:.0f} img/s")
    if "eval_train_acc" in row:
        line += f"  (eval-mode augmented train: loss {row['eval_train_loss']:.4f} acc {row['eval_train_acc']:.2f}%)"
    return line
