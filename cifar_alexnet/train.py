"""``cifar-alexnet train``: train the modified AlexNet on CIFAR-10, read from top to bottom.

:func:`train` is the whole run: the set-up, then for every epoch :func:`train_epoch` (one
:func:`train_step` per batch), the test-set evaluation, the epoch's row of the history and
the run files (:mod:`cifar_alexnet.run_dir`). Options and recipes: :mod:`cifar_alexnet.recipes`;
data and loaders: :mod:`cifar_alexnet.training_data`; signals, atomic writes, devices and
multi-process helpers: :mod:`cifar_alexnet.runtime`.

Conventions: epochs count from 1; a checkpoint's ``meta["epoch"]`` is the number of
*completed* epochs and ``meta["step"]`` the steps done in the next one (0 at an epoch's end).
"Train loss/accuracy" is the running value over the augmented batches in train mode (what the
optimizer saw); ``--eval-train`` adds the original's eval-mode pass over them. The test loss
is plain cross-entropy even with label smoothing. The batch size is the global batch of all
processes; only rank 0 writes files and prints.

SIGINT/SIGTERM finish the current step, save a mid-epoch checkpoint and exit with 130/143,
printing the command that resumes the run. A non-finite loss stops the run (the last good
checkpoint is kept). ``--resume`` restores model, optimizer, every random generator, the
history and the loader's place inside the epoch, so on a CPU with ``--deterministic`` a
stopped-and-resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from cifar_alexnet.evaluate import confusion_and_loss
from cifar_alexnet.model import AlexNet
from cifar_alexnet.optim import learning_rate, load_optimizer_state, make_optimizer, set_learning_rate
from cifar_alexnet.data import default_data_dir
from cifar_alexnet.recipes import RECIPES, TrainConfig, check_same_run, config_from_args, validate_config
from cifar_alexnet.recipes import add_arguments as add_config_arguments
from cifar_alexnet.run_dir import (CHECKPOINT_BEST, CHECKPOINT_LAST, claim_run_dir, default_run_dir, format_row,
                                   log_line, save_run_checkpoint, write_curves, write_history)
from cifar_alexnet.runtime import distributed
from cifar_alexnet.runtime.atomic import DiskFullError, atomic_write_json
from cifar_alexnet.runtime.device import autocast, reproducibility, resolve_amp, select_device, sum_dtype
from cifar_alexnet.runtime.random_state import restore_rng_state
from cifar_alexnet.runtime.signals import (EXIT_DISK_FULL, EXIT_NONFINITE, EXIT_SETUP_ERROR, EXIT_SIGINT,
                                           EXIT_SIGTERM, StopFlag, TrainingInterrupted)
from cifar_alexnet.training_data import Data, load_data, make_loaders

__all__ = ["RECIPES", "EXIT_DISK_FULL", "EXIT_NONFINITE", "EXIT_SETUP_ERROR", "EXIT_SIGINT", "EXIT_SIGTERM",
           "NonFiniteLossError", "TrainConfig", "TrainingInterrupted", "add_arguments", "config_from_args", "run",
           "select_device", "train", "train_step"]

#: How often (in steps) values are read back from an accelerator: the non-finite-loss check,
#: the progress bar and, in a multi-process run, the agreement to stop after a signal. Each
#: read waits for the device to finish its queued work, so reading every step would stall
#: the GPU; on a CPU there is no queue and every step is checked.
ACCELERATOR_SYNC_EVERY = 25

#: Seconds a worker other than rank 0 waits before it exits with an error of the whole run, so
#: that rank 0's message is printed before torchrun stops the workers still running.
REPORT_GRACE_S = 5.0


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; nothing after the last good checkpoint was saved."""

    def __init__(self, epoch: int, step: int, last_checkpoint: Path | None):
        kept = ""
        if last_checkpoint is not None and last_checkpoint.is_file():
            kept = f" The last good checkpoint is kept: {last_checkpoint}."
        elif last_checkpoint is not None:
            kept = " No checkpoint had been written yet."
        super().__init__(
            f"non-finite training loss at epoch {epoch}, step {step}: the run diverged.{kept} Lower the "
            "learning rate (--lr), use --amp off or fp16 with loss scaling, or check the data for NaN/Inf values.")
        self.epoch, self.step = epoch, step


def train(config: TrainConfig) -> Path:
    """Train as ``config`` says; return the run directory.

    Raises:
        ValueError / FileNotFoundError / FileExistsError: bad options or data (nothing was
            trained and no run directory is left behind).
        TrainingInterrupted: SIGINT/SIGTERM; the resumable checkpoint has been written.
        NonFiniteLossError: the loss diverged; the last good checkpoint is kept.
    """
    # Long on purpose: one straight sequence, as a reader follows a run -- set-up, then the epoch loop.
    ctx = distributed.context_from_env()
    validate_config(config, ctx.world_size)
    device = select_device(config.device, ctx.local_rank)
    run_dir, resuming = Path(config.resume or config.out or default_run_dir(config.recipe)), bool(config.resume)
    # config.json names the paths resolved, so --resume works from any working directory.
    config = replace(config, out=str(run_dir.resolve()), resume=None,
                     data=str(Path(config.data).resolve() if config.data else default_data_dir().resolve()))
    log = partial(log_line, ctx.is_main)
    distributed.init_distributed(ctx, device)
    stage, claim = "set-up", None
    try:
        with reproducibility(config.seed, config.deterministic):
            claim = claim_run_dir(run_dir, resume=resuming, ctx=ctx, device=device)
            checkpoint = claim.checkpoint
            if checkpoint is not None:
                check_same_run(config, checkpoint.meta.get("config"), run_dir / CHECKPOINT_LAST)
            data = load_data(config, checkpoint.meta if checkpoint else None)
            model = make_model(config, len(data.classes), device, ctx)
            optimizer = make_optimizer(config, model, device)
            amp = resolve_amp(config.amp, device)
            scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
            # A CPU generator on every device: the same batches on a CPU and a GPU, portable checkpoints.
            generator = torch.Generator().manual_seed(config.seed)
            train_loader, test_loader = make_loaders(config, data, device, ctx, generator)
            history: list[dict[str, Any]] = []
            best = {"test_acc": -1.0, "epoch": 0}
            start_epoch, mid_epoch, saved_rng = 1, None, None
            if checkpoint is not None:  # continue where it stopped: weights, optimizer, history, loader
                resume_from(checkpoint, model, optimizer, scaler, train_loader)
                history, best = list(checkpoint.meta.get("history", [])), dict(checkpoint.meta["best"])
                start_epoch = int(checkpoint.meta["epoch"]) + 1
                mid_epoch, saved_rng = checkpoint.meta.get("mid_epoch"), checkpoint.rng_state
            train_model = eval_model = model  # checkpoints always store the plain model
            train_model = distributed.wrap_model(model, ctx, device)
            if config.compile:
                train_model, eval_model = torch.compile(train_model), torch.compile(model)
            if ctx.is_main:  # on resume too: the file then names the extended --epochs, the new --device ...
                atomic_write_json(run_dir / "config.json", config.to_json())
            meta = {"mean": list(data.mean), "std": list(data.std), "classes": list(data.classes),
                    "data_source": data.source, "world_size": ctx.world_size, "config": config.to_json()}
            save = partial(save_run_checkpoint, model, meta, history, best)
            step = partial(train_step, train_model, optimizer,
                           criterion=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing), amp=amp,
                           scaler=scaler)
            evaluate = partial(evaluate_global, eval_model, ctx=ctx, num_classes=len(data.classes), amp=amp)
            stage = "training"
            if start_epoch > config.epochs:
                log(f"{run_dir}: all {config.epochs} epochs are done already (pass --epochs N to extend it)")
                return run_dir

            steps_per_epoch, stop = len(train_loader), StopFlag()
            with stop:  # from here on, SIGINT/SIGTERM ask for a clean stop
                log(describe(config, run_dir, data, device, ctx, amp))
                for epoch in range(start_epoch, config.epochs + 1):
                    epoch_started = time.perf_counter()
                    sums = EpochSums.start(device, mid_epoch, count_here=ctx.is_main)
                    train_model.train()
                    finished = train_epoch(
                        step, train_loader, sums, stop=stop, ctx=ctx, restore_rng=saved_rng,
                        lr_at=lambda s: learning_rate(config, (epoch - 1) * steps_per_epoch + s,
                                                      steps_per_epoch * config.epochs),
                        epoch=epoch, epochs=config.epochs, show_bar=not config.quiet and ctx.is_main,
                        last_checkpoint=run_dir / CHECKPOINT_LAST if ctx.is_main else None)
                    mid_epoch = saved_rng = None
                    loss_sum, correct, seen = global_totals(sums, ctx)
                    if not finished:  # a signal inside the epoch
                        if ctx.is_main:
                            save(run_dir / CHECKPOINT_LAST, completed_epochs=epoch - 1, optimizer=optimizer,
                                 scaler=scaler, loader=train_loader,
                                 mid_epoch={"step": sums.step, "loss_sum": loss_sum, "correct": int(correct),
                                            "seen": int(seen), "train_time_s": sums.train_time_s})
                        raise interrupted(stop, run_dir, ctx)
                    row = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1),
                           "train_acc": 100.0 * correct / max(seen, 1)}
                    row["test_loss"], row["test_acc"] = evaluate(test_loader, tta_flip=config.tta_flip)
                    row.update(lr=sums.lr, epoch_time_s=0.0, images_per_s=seen / max(sums.train_time_s, 1e-9))
                    if config.eval_train:  # the original's "train accuracy": eval mode, augmented images
                        row["eval_train_loss"], row["eval_train_acc"] = evaluate(train_loader, tta_flip=False)
                    row["epoch_time_s"] = time.perf_counter() - epoch_started
                    history.append(row)
                    improved = row["test_acc"] > best["test_acc"]
                    if improved:
                        best.update(test_acc=row["test_acc"], epoch=epoch)
                    if ctx.is_main:
                        # best before last: if the process dies in between, resuming from the older
                        # last.safetensors redoes this epoch and writes best again.
                        if improved:
                            save(run_dir / CHECKPOINT_BEST, completed_epochs=epoch)
                        save(run_dir / CHECKPOINT_LAST, completed_epochs=epoch, optimizer=optimizer, scaler=scaler,
                             loader=train_loader)
                        write_history(run_dir, history)
                        write_curves(run_dir, history, log)
                    log(format_row(row, config.epochs))
                    if stop.agreed(ctx, device):  # every process takes part, so none waits forever
                        raise interrupted(stop, run_dir, ctx)
            log(f"done: best test accuracy {best['test_acc']:.2f} % at epoch {best['epoch']} ({data.source}); "
                f"run directory {run_dir}")
            return run_dir
    except BaseException as exc:
        # A run directory without a checkpoint is only clutter: remove it after a failed set-up or
        # a full disk. With a checkpoint, the directory stays and --resume continues it.
        if (claim is not None and claim.created and (stage == "set-up" or isinstance(exc, DiskFullError))
                and not (run_dir / CHECKPOINT_LAST).exists()):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if claim is not None:
            claim.release()
        distributed.shutdown_distributed()


def make_model(config: TrainConfig, num_classes: int, device: torch.device,
               ctx: distributed.DistContext) -> nn.Module:
    """The AlexNet the recipe describes, on ``device``, in ``--dtype``, memory format and BatchNorm kind."""
    dtype = torch.float64 if config.dtype == "float64" else torch.float32
    model = AlexNet(num_classes=num_classes, hidden=config.hidden, dropout=config.dropout)
    model = model.to(device=device, dtype=dtype)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ctx.enabled and config.sync_bn:  # before the optimizer is built: it must hold the final parameters
        model = distributed.convert_to_sync_batchnorm(model, device)
    return model


def resume_from(checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler | None, train_loader) -> None:
    """Put the checkpoint's weights, optimizer and scaler state and training-loader position back."""
    model.load_state_dict(checkpoint.state_dict)
    load_optimizer_state(optimizer, checkpoint.optimizer_state)
    if scaler is not None and checkpoint.meta.get("scaler"):
        scaler.load_state_dict(checkpoint.meta["scaler"])
    mid_epoch = checkpoint.meta.get("mid_epoch")
    train_loader.load_state_dict({"generator_state": checkpoint.rng_state["generators"]["loader"],
                                  "batches_done": mid_epoch["step"] if mid_epoch else 0})


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
               criterion: nn.Module, amp: str = "off", scaler: torch.amp.GradScaler | None = None,
               lr: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on ``x: (B, 3, 32, 32)``, ``y: (B,)``; returns the loss ``()`` and logits ``(B, C)``, detached.

    ``lr``: the learning rate of this step (None: leave it). ``x`` is cast to the model's dtype
    (the loaders make float32 batches; ``--dtype float64`` trains in double precision).
    """
    if lr is not None:
        set_learning_rate(optimizer, lr)
    x = x.to(next(model.parameters()).dtype)
    with autocast(x.device, amp):
        logits = model(x)  # (B, C)
        loss = criterion(logits, y)  # () mean over the batch
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:  # fp16: scale the loss so small gradients do not underflow
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.detach(), logits.detach()


@dataclass
class EpochSums:
    """Running sums of one training epoch, kept on the device (read once per epoch)."""

    loss_sum: torch.Tensor  # () float64 (float32 on MPS): sum over images of the per-image training loss
    correct: torch.Tensor  # () int64: images classified correctly
    first_bad_step: torch.Tensor  # () int64: the first step whose loss was not finite, -1 if none
    seen: int = 0  # images seen by this process
    step: int = 0  # steps done in this epoch
    train_time_s: float = 0.0  # time spent in training steps (before a resume included)
    lr: float = 0.0  # the learning rate of the last step

    @classmethod
    def start(cls, device: torch.device, mid_epoch: dict | None = None, count_here: bool = True) -> "EpochSums":
        """Zeros, or the sums a mid-epoch checkpoint stored (on one process only: they are global)."""
        sums = cls(loss_sum=torch.zeros((), dtype=sum_dtype(device), device=device),
                   correct=torch.zeros((), dtype=torch.int64, device=device),
                   first_bad_step=torch.full((), -1, dtype=torch.int64, device=device))
        if mid_epoch:
            if count_here:
                sums.loss_sum.fill_(float(mid_epoch["loss_sum"]))
                sums.correct.fill_(int(mid_epoch["correct"]))
                sums.seen = int(mid_epoch["seen"])
            sums.step, sums.train_time_s = int(mid_epoch["step"]), float(mid_epoch["train_time_s"])
        return sums

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Count one step's batch; nothing is read back from the device."""
        self.loss_sum += loss.to(self.loss_sum.dtype) * y.shape[0]
        self.correct += (logits.argmax(dim=1) == y).sum()
        bad_now = ~torch.isfinite(loss) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(bad_now, self.step, self.first_bad_step)
        self.seen += y.shape[0]
        self.step += 1


def train_epoch(step: Callable, loader, sums: EpochSums, *, lr_at: Callable[[int], float], stop: StopFlag,
                ctx: distributed.DistContext, restore_rng: dict | None, epoch: int, epochs: int, show_bar: bool,
                last_checkpoint: Path | None) -> bool:
    """Run ``step(x, y, lr=...)`` on the loader's batches, counting into ``sums``; False if a signal stopped it.

    ``restore_rng``: a checkpoint's random state, put back once the loader has skipped the
    batches a resumed epoch already did (drawing them again moves torch's generator).

    Raises:
        NonFiniteLossError: some process saw a NaN/Inf loss.
    """
    from tqdm import tqdm

    device = sums.loss_sum.device
    sync_every = 1 if device.type == "cpu" else ACCELERATOR_SYNC_EVERY
    batches = iter(loader)
    if restore_rng is not None:  # dropout's generator etc., exactly as when the checkpoint was written
        restore_rng_state(restore_rng)
    bar = tqdm(total=len(loader), initial=sums.step, desc=f"epoch {epoch}/{epochs}", unit="step", leave=False, dynamic_ncols=True,
               disable=not show_bar)
    started, seen_at_start = time.perf_counter(), sums.seen
    sums.lr = lr_at(sums.step)
    try:
        for x, y in batches:
            sums.lr = lr_at(sums.step)
            sums.add(*step(x, y, lr=sums.lr), y)
            bar.update(1)
            last_step = sums.step == len(loader)
            at_sync_point = sums.step % sync_every == 0 or last_step
            # One process: the signal flag is a Python variable, read after every step. Several
            # processes must agree on the step to stop at, which needs a collective: only at
            # sync points. Either way, a diverged state is never saved (check_finite raises).
            if at_sync_point or (not ctx.enabled and stop.signal_name is not None):
                check_finite(sums, ctx, epoch, last_checkpoint)
                if stop.agreed(ctx, device) and not last_step:  # after the last step the epoch ends normally
                    sums.train_time_s += time.perf_counter() - started
                    return False
            if at_sync_point and not bar.disable:
                elapsed = max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(loss=f"{sums.loss_sum.item() / max(sums.seen, 1):.4f}",
                                acc=f"{100.0 * sums.correct.item() / max(sums.seen, 1):.2f}%",
                                img_s=f"{(sums.seen - seen_at_start) * ctx.world_size / elapsed:.0f}")
        check_finite(sums, ctx, epoch, last_checkpoint)
        stop.agreed(ctx, device)  # every process takes part at the end of the epoch, as at sync points
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        sums.train_time_s += time.perf_counter() - started
    finally:
        bar.close()
    return True


def check_finite(sums: EpochSums, ctx: distributed.DistContext, epoch: int, last_checkpoint: Path | None) -> None:
    """Raise :class:`NonFiniteLossError` if any process saw a NaN/Inf loss (a read from the device)."""
    never = 2**62
    bad = torch.where(sums.first_bad_step < 0, never, sums.first_bad_step)
    distributed.all_reduce_min(bad, ctx)
    if int(bad.item()) < never:
        raise NonFiniteLossError(epoch, int(bad.item()) + 1, last_checkpoint)


def global_totals(sums: EpochSums, ctx: distributed.DistContext) -> tuple[float, float, float]:
    """``(loss sum, correct, images)`` of the epoch so far, summed over all processes."""
    dtype = sums.loss_sum.dtype
    totals = torch.stack([sums.loss_sum, sums.correct.to(dtype), torch.tensor(float(sums.seen), dtype=dtype,
                                                                              device=sums.loss_sum.device)])
    loss_sum, correct, seen = distributed.all_reduce_sum(totals, ctx).tolist()
    return loss_sum, correct, seen


def evaluate_global(model: nn.Module, loader, *, ctx: distributed.DistContext, num_classes: int, amp: str,
                    tta_flip: bool) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) over ``loader``, all processes' images together."""
    confusion, loss_sum = confusion_and_loss(model, loader, num_classes=num_classes, tta_flip=tta_flip, amp=amp)
    distributed.all_reduce_sum(confusion, ctx)
    distributed.all_reduce_sum(loss_sum, ctx)
    count = max(int(confusion.sum()), 1)
    return loss_sum.item() / count, 100.0 * int(confusion.trace()) / count


# =============================================================================================
# Messages and the command line
# =============================================================================================


def describe(config: TrainConfig, run_dir: Path, data: Data, device: torch.device, ctx, amp: str) -> str:
    c = config
    return (f"run {run_dir} | recipe {c.recipe} | {data.source}: {len(data.train.labels)} train / "
            f"{len(data.test.labels)} test images | device {device}"
            + (f" x {ctx.world_size} processes" if ctx.enabled else "")
            + f" | {c.optimizer} lr {c.lr:g} batch {c.batch_size} epochs {c.epochs} | amp {amp}"
            + (f" ({c.amp} asked; {device.type} has no {c.amp} units)" if amp != c.amp else "")
            + (" | deterministic" if c.deterministic else ""))


def interrupted(stop: StopFlag, run_dir: Path, ctx: distributed.DistContext) -> TrainingInterrupted:
    """The exception that ends a run after a signal, with the command that continues it."""
    command = f"cifar-alexnet train --resume {shlex.quote(str(run_dir))}"
    if ctx.enabled:
        command = f"torchrun --nproc_per_node={ctx.world_size} -m cifar_alexnet train --resume {shlex.quote(str(run_dir))}"
    return TrainingInterrupted(stop.signal_name or "SIGTERM", stop.exit_code, run_dir / CHECKPOINT_LAST, command)


EPILOG = """examples:
  cifar-alexnet train --download                      # the original recipe: Adam 1e-3, batch 512, 100 epochs
  cifar-alexnet train --data data/cifar10-jpeg.tar.gz --recipe fast
  cifar-alexnet train --limit-train 1000 --limit-test 1000 --epochs 2 --batch-size 64 --device cpu
  cifar-alexnet train --resume runs/20260101-120000-original      # continue a stopped run
  torchrun --nproc_per_node=4 -m cifar_alexnet train --recipe fast --sync-bn

Ctrl-C (SIGINT) or SIGTERM finish the current step, save a resumable checkpoint, print the resume
command and exit with 130 / 143. A NaN/Inf loss stops the run (exit 3) and keeps the last good
checkpoint. Bad options or data exit with 2 before anything is written; a full disk exits with 4,
leaving the previous version of every file intact. One trainer at a time may use a run directory
(RUN_DIR/.lock); --resume refuses options that differ from the stored run. Multi-process runs (torchrun): --batch-size is the
GLOBAL batch and must be divisible by the number of processes; the learning rate is NOT scaled with the
number of processes.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` options (generated from :class:`~cifar_alexnet.recipes.TrainConfig`) and the examples."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """The ``train`` subcommand: returns the process exit status.

    In a multi-process run every process exits with the same status, but only rank 0 prints.
    """
    try:
        ctx = distributed.context_from_env()
        is_main, several = ctx.is_main, ctx.enabled
    except ValueError:
        is_main, several = True, False

    def report(message: str) -> None:
        if is_main:
            print(message, file=sys.stderr, flush=True)
        elif several:
            # torchrun stops every worker as soon as one exits with an error; rank 0 is the one
            # that prints, so the others give it time to (torchrun ends them once it has exited).
            time.sleep(REPORT_GRACE_S)

    try:
        train(config_from_args(args))
    except TrainingInterrupted as exc:
        report(f"\n{exc}")
        return exc.exit_code
    except NonFiniteLossError as exc:
        report(f"error: {exc}")
        return EXIT_NONFINITE
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        report(f"error: {exc}")
        return EXIT_SETUP_ERROR
    except DiskFullError as exc:
        report(f"error: {exc}")
        return EXIT_DISK_FULL
    return 0
