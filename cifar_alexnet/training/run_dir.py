"""A run directory: its checkpoints, its history and curves, and the lines a run prints.

``RUN_DIR/`` holds ``config.json`` (the :class:`~cifar_alexnet.training.config.TrainConfig`),
``last.safetensors`` (everything needed to resume), ``best.safetensors`` (the weights of the
epoch with the best test accuracy), ``history.json`` / ``history.csv`` (one row per epoch)
and ``curves.png``. Every file is written atomically (:mod:`cifar_alexnet.runtime.atomic`).
While a trainer runs, ``.lock`` holds its PID; one trainer at a time may use a directory.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import stat
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from cifar_alexnet.checkpoints.format import (CHECKPOINT_BEST, CHECKPOINT_LAST, Checkpoint, load_checkpoint,
                                              save_checkpoint)
from cifar_alexnet.checkpoints.meta import CheckpointMeta, MidEpoch, RunState
from cifar_alexnet.errors import CifarAlexnetError, DiskFullError, MissingFileError, RunDirError
from cifar_alexnet.runtime.atomic import atomic_write_json, atomic_write_text, remove_leftover_temp_files
from cifar_alexnet.runtime.deferred_signals import deferred_signals
from cifar_alexnet.runtime.dir_lock import LOCK_NAME, DirLock
from cifar_alexnet.runtime.paths import file_kind
from cifar_alexnet.runtime.distributed import DistContext, all_reduce_max
from cifar_alexnet.runtime.random_state import capture_rng_state
from cifar_alexnet.training.curves import plot_history

__all__ = ["HISTORY_FIELDS", "RunRecord", "claimed_run_dir", "default_run_dir", "format_row", "log_line",
           "write_curves", "write_history"]

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


@contextlib.contextmanager
def claimed_run_dir(run_dir: Path, *, resume: bool, ctx: DistContext,
                    device: torch.device) -> Iterator[Checkpoint | None]:
    """Own ``run_dir`` for the length of a run; yields the checkpoint a resumed run continues from (else None).

    A new run needs a directory that does not exist or is empty; ``--resume`` needs one with
    ``last.safetensors``. Rank 0 holds the lock (:mod:`cifar_alexnet.runtime.dir_lock`), so a
    second trainer or a second resume of the same run stops at once; every process of a
    multi-process run learns whether rank 0 got it. Leftovers of a save that was killed are
    removed. If the run fails, a directory made for it that holds no checkpoint is removed
    again; a directory with a checkpoint stays, for ``--resume``.

    Raises:
        RunDirError: the directory is not free (in use, or a new run's is not empty), or cannot
            be made or written.
        MissingFileError: ``--resume`` of a directory without ``last.safetensors``.
        CheckpointError: ``last.safetensors`` is damaged.
    """
    lock, created, problem = None, False, None
    try:
        if ctx.is_main:
            try:
                with deferred_signals():  # a signal is raised once `created` says what to remove
                    lock, created = _claim_here(run_dir, resume)
            except (CifarAlexnetError, OSError) as exc:  # in use, not free, not found, or not writable at all
                problem = exc
        failed = torch.tensor(int(problem is not None), device=device)
        all_reduce_max(failed, ctx)
        if isinstance(problem, CifarAlexnetError):
            raise problem
        if problem is not None:
            raise RunDirError(f"{run_dir}: cannot use it as a run directory ({problem.strerror or problem}); "
                              "choose another --out") from problem
        if failed.item():
            raise RunDirError(f"{run_dir}: rank 0 could not claim the run directory (see its message)")
        yield load_checkpoint(run_dir / CHECKPOINT_LAST) if resume else None
    except BaseException as exc:
        kept = [name for name in (CHECKPOINT_LAST, CHECKPOINT_BEST) if (run_dir / name).exists()]
        if created and not kept:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing to resume: only clutter
        if isinstance(exc, DiskFullError) and ctx.is_main:  # say what the run directory still holds
            raise DiskFullError(f"{exc} {_what_is_kept(run_dir, kept, removed=created and not kept)}") from exc
        raise
    finally:
        if lock is not None:
            lock.release()


def _what_is_kept(run_dir: Path, kept: list[str], removed: bool) -> str:
    """After a failed write: which checkpoints ``run_dir`` keeps, and how to go on once there is space."""
    if removed:
        return f"{run_dir} held no checkpoint yet and was removed."
    if CHECKPOINT_LAST in kept:
        return f"{run_dir}/{CHECKPOINT_LAST} is the resumable checkpoint: continue with --resume {run_dir}."
    if kept:
        return (f"{run_dir} keeps {CHECKPOINT_BEST} (weights only) but no resumable {CHECKPOINT_LAST}, so the run "
                "cannot be resumed: start it again with another --out.")
    return f"{run_dir} holds no checkpoint."


def _claim_here(run_dir: Path, resume: bool) -> tuple[DirLock, bool]:
    """Make (or check) and lock ``run_dir`` in this process; returns the lock and whether it was made here."""
    created = False
    if not resume:
        blocking = next((p for p in (run_dir, *run_dir.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            mode = os.stat(blocking).st_mode
            kind = "a file" if stat.S_ISREG(mode) else file_kind(mode)
            raise RunDirError(f"--out {run_dir}: {blocking} is {kind}, not a directory; choose another --out")
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_dir.mkdir()
            created = True
        except FileExistsError:
            pass
    elif not run_dir.is_dir():
        raise MissingFileError(f"--resume {run_dir}: no such run directory")
    try:
        lock = DirLock.acquire(run_dir, purpose="training in")
    except BaseException:
        if created:  # the folder made above is empty: take it away again
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    try:
        if resume and not (run_dir / CHECKPOINT_LAST).is_file():
            raise MissingFileError(f"--resume {run_dir}: no {CHECKPOINT_LAST} there; the run stopped before its "
                                   "first checkpoint -- start it again instead")
        if not resume and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
            raise RunDirError(f"--out {run_dir} already exists and is not empty; choose another directory, "
                              f"or continue that run with --resume {run_dir}")
        remove_leftover_temp_files(run_dir)  # of a save that was killed: nobody else writes here now
    except BaseException:
        lock.release()
        raise
    return lock, created


class RunRecord:
    """A run's record: its history, its best epoch, and the files that keep them (rank 0 writes).

    At every epoch's end :meth:`end_epoch` adds the row, saves ``best.safetensors`` when the
    test accuracy improved, ``last.safetensors`` (everything needed to resume), the history
    files and the curves. After a signal inside an epoch, :meth:`save_interrupted` saves
    ``last.safetensors`` with the epoch's running sums.
    """

    def __init__(self, run_dir: Path, model: nn.Module, meta: CheckpointMeta, *, optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler | None, loader, is_main: bool):
        self.run_dir, self.model, self.meta, self.is_main = run_dir, model, meta, is_main
        self.optimizer, self.scaler, self.loader = optimizer, scaler, loader
        self.history: list[dict[str, Any]] = []
        self.best = {"test_acc": -1.0, "epoch": 0}

    def continue_from(self, state: RunState) -> None:
        """Take over a resumed run's history and best epoch."""
        self.history = [dict(row) for row in state.history]
        self.best = {"test_acc": state.best_test_acc, "epoch": state.best_epoch}

    def log(self, message: str) -> None:
        """Print one line (rank 0 only) without breaking the progress bar."""
        log_line(self.is_main, message)

    def end_epoch(self, row: dict[str, Any]) -> None:
        """Add the finished epoch's row; on rank 0 write the checkpoints, the history and the curves."""
        self.history.append(row)
        improved = row["test_acc"] > self.best["test_acc"]
        if improved:
            self.best = {"test_acc": row["test_acc"], "epoch": row["epoch"]}
        if not self.is_main:
            return
        # best before last: if the process dies in between, resuming from the older
        # last.safetensors redoes this epoch and writes best again.
        if improved:
            self._save(CHECKPOINT_BEST, completed_epochs=row["epoch"], resumable=False)
        self._save(CHECKPOINT_LAST, completed_epochs=row["epoch"])
        write_history(self.run_dir, self.history)
        write_curves(self.run_dir, self.history, self.log)

    def save_interrupted(self, completed_epochs: int, mid_epoch: MidEpoch) -> None:
        """Save ``last.safetensors`` in the middle of epoch ``completed_epochs + 1`` (rank 0 only)."""
        if self.is_main:
            self._save(CHECKPOINT_LAST, completed_epochs=completed_epochs, mid_epoch=mid_epoch)

    def _save(self, name: str, *, completed_epochs: int, resumable: bool = True,
              mid_epoch: MidEpoch | None = None) -> None:
        """One checkpoint; a resumable one adds the optimizer, the scaler and every random state."""
        rng_state = None
        if resumable:
            rng_state = capture_rng_state()
            # mid-epoch: the loader's generator as at the epoch's start; it skips the batches done
            rng_state["generators"] = {"loader": self.loader.state_dict()["generator_state"]}
        run = RunState(epoch=completed_epochs, history=tuple(self.history), best_epoch=self.best["epoch"],
                       best_test_acc=self.best["test_acc"], mid_epoch=mid_epoch,
                       scaler=self.scaler.state_dict() if (resumable and self.scaler is not None) else None)
        meta = replace(self.meta, run=run, metrics=self.history[-1] if self.history else {})
        save_checkpoint(self.run_dir / name, self.model, meta=meta, optimizer=self.optimizer if resumable else None,
                        rng_state=rng_state)


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
    """``curves.png`` via :func:`cifar_alexnet.training.curves.plot_history`; a plotting failure only warns."""
    try:
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
