"""The training loop: :func:`train` runs a whole training run, read from top to bottom.

A run is: the set-up (:func:`set_up`: data, model, optimizer, loaders, and on ``--resume`` the
stored state), then for every epoch :func:`train_epoch` (one :func:`train_step` per batch),
the test-set evaluation and the epoch's record (:class:`~cifar_alexnet.training.run_dir.RunRecord`:
history, checkpoints, curves). Options and recipes: :mod:`cifar_alexnet.training.recipes`;
data and loaders: :mod:`cifar_alexnet.training.loaders`; signals, devices and multi-process
helpers: :mod:`cifar_alexnet.runtime`.

Conventions: epochs count from 1; a checkpoint's ``run.epoch`` is the number of *completed*
epochs and ``run.step`` the steps done in the next one (0 at an epoch's end). "Train
loss/accuracy" is the running value over the augmented batches in train mode (what the
optimizer saw); ``--eval-train`` adds the original's eval-mode pass over them. The test loss
is plain cross-entropy even with label smoothing. The batch size is the global batch of all
processes; only rank 0 writes files and prints.

SIGINT/SIGTERM/SIGHUP finish the current step, save a mid-epoch checkpoint and end the run
with :class:`~cifar_alexnet.runtime.signals.TrainingInterrupted`, which names the command that
resumes it. A non-finite loss stops the run (the last good checkpoint is kept). ``--resume``
restores model, optimizer, every random generator, the history and the loader's place inside
the epoch, so on a CPU with ``--deterministic`` a stopped-and-resumed run ends bit-identical
to an uninterrupted one.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cifar_alexnet.checkpoints.format import CHECKPOINT_LAST, Checkpoint
from cifar_alexnet.checkpoints.meta import CheckpointMeta, MidEpoch
from cifar_alexnet.data.cifar10 import default_data_dir
from cifar_alexnet.errors import CifarAlexnetError
from cifar_alexnet.inference.evaluate import confusion_and_loss
from cifar_alexnet.model import AlexNet
from cifar_alexnet.runtime import distributed
from cifar_alexnet.runtime.atomic import atomic_write_json
from cifar_alexnet.runtime.device import autocast, reproducibility, resolve_amp, select_device, sum_dtype
from cifar_alexnet.runtime.random_state import restore_rng_state
from cifar_alexnet.runtime.signals import StopFlag, TrainingInterrupted
from cifar_alexnet.training.config import TrainConfig, validate_config
from cifar_alexnet.training.loaders import Data, load_data, make_loaders
from cifar_alexnet.training.optim import learning_rate, load_optimizer_state, make_optimizer, set_learning_rate
from cifar_alexnet.training.recipes import check_same_run
from cifar_alexnet.training.run_dir import RunRecord, claimed_run_dir, default_run_dir, format_row

__all__ = ["NonFiniteLossError", "Run", "train", "set_up", "train_epoch", "train_step"]

#: How often (in steps) values are read back from an accelerator: the non-finite-loss check,
#: the progress bar and, in a multi-process run, the agreement to stop after a signal. Each
#: read waits for the device to finish its queued work, so reading every step would stall
#: the GPU; on a CPU there is no queue and every step is checked.
ACCELERATOR_SYNC_EVERY = 25


class NonFiniteLossError(CifarAlexnetError):
    """The training loss became NaN or infinite; nothing after the last good checkpoint was saved (exit 3)."""

    exit_code = 3

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
        OptionsError / DataError / RunDirError / CheckpointError: bad options, data or run
            directory (nothing was trained; a run directory made for it is removed again).
        TrainingInterrupted: SIGINT/SIGTERM/SIGHUP; the resumable checkpoint has been written.
        NonFiniteLossError: the loss diverged; the last good checkpoint is kept.
        DiskFullError: a run file could not be written; the previous version of each file is intact.
    """
    # -- where the run happens --------------------------------------------------------------
    ctx = distributed.context_from_env()
    validate_config(config, ctx.world_size)
    device = select_device(config.device, ctx.local_rank)
    resuming = config.resume is not None
    run_dir = Path(config.resume or config.out or default_run_dir(config.recipe))
    # config.json names the paths resolved, so --resume works from any working directory.
    config = replace(config, out=str(run_dir.resolve()), resume=None,
                     data=str(Path(config.data).resolve() if config.data else default_data_dir().resolve()))
    distributed.init_distributed(ctx, device)
    try:
        with reproducibility(config.seed, config.deterministic), \
                claimed_run_dir(run_dir, resume=resuming, ctx=ctx, device=device) as checkpoint:
            # -- set-up: data, model, optimizer, loaders, and what a resumed run stored -------
            run = set_up(config, run_dir, checkpoint, ctx, device)
            log = run.record.log
            if run.start_epoch > config.epochs:
                log(f"{run_dir}: all {config.epochs} epochs are done already (pass --epochs N to extend it)")
                return run_dir

            # -- the epochs --------------------------------------------------------------------
            with StopFlag() as stop:  # from here on, SIGINT/SIGTERM/SIGHUP ask for a clean stop
                log(describe(run))
                for epoch in range(run.start_epoch, config.epochs + 1):
                    started = time.perf_counter()
                    sums = train_epoch(run, epoch, stop)
                    loss_sum, correct, seen = global_totals(sums, ctx)
                    if stop.signal_name is not None and sums.step < len(run.train_loader):
                        run.record.save_interrupted(epoch - 1, MidEpoch(sums.step, loss_sum, int(correct), int(seen),
                                                                        sums.train_time_s))
                        raise interrupted(stop, run)
                    row = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1),
                           "train_acc": 100.0 * correct / max(seen, 1)}
                    row["test_loss"], row["test_acc"] = evaluate_global(run, run.test_loader, config.tta_flip)
                    row.update(lr=sums.lr, epoch_time_s=0.0, images_per_s=seen / max(sums.train_time_s, 1e-9))
                    if config.eval_train:  # the original's "train accuracy": eval mode, augmented images
                        row["eval_train_loss"], row["eval_train_acc"] = evaluate_global(run, run.train_loader, False)
                    row["epoch_time_s"] = time.perf_counter() - started
                    run.record.end_epoch(row)
                    log(format_row(row, config.epochs))
                    if stop.agreed(ctx, device):  # every process takes part, so none waits forever
                        raise interrupted(stop, run)
            best = run.record.best
            log(f"done: best test accuracy {best['test_acc']:.2f} % at epoch {best['epoch']} ({run.data.source}); "
                f"run directory {run_dir}")
            return run_dir
    finally:
        distributed.shutdown_distributed()


@dataclass
class Run:
    """Everything a run has once it is set up (:func:`set_up`)."""

    config: TrainConfig
    ctx: distributed.DistContext
    device: torch.device
    run_dir: Path
    data: Data
    model: nn.Module  # the plain model; checkpoints store it
    train_model: nn.Module  # the model the steps run: wrapped for several processes, compiled if asked
    eval_model: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    amp: str  # the autocast precision in use ("off", "bf16", "fp16")
    scaler: torch.amp.GradScaler | None  # fp16 only
    train_loader: Any
    test_loader: Any
    record: RunRecord  # history, best epoch, checkpoints and run files
    start_epoch: int = 1
    mid_epoch: MidEpoch | None = None  # a resumed epoch's running sums
    saved_rng: dict | None = None  # a resumed epoch's random state, put back once its batches are skipped


def set_up(config: TrainConfig, run_dir: Path, checkpoint: Checkpoint | None, ctx: distributed.DistContext,
           device: torch.device) -> Run:
    """Data, model, optimizer, precision and loaders; with ``checkpoint``, everything put back where it stopped."""
    stored = checkpoint.meta if checkpoint is not None else None
    if checkpoint is not None:
        check_same_run(config, stored.config, run_dir / CHECKPOINT_LAST)
    data = load_data(config, stored)
    model = make_model(config, len(data.classes), device, ctx)
    optimizer = make_optimizer(config, model, device)
    amp = resolve_amp(config.amp, device)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    # A CPU generator on every device: the same batches on a CPU and a GPU, portable checkpoints.
    generator = torch.Generator().manual_seed(config.seed)
    train_loader, test_loader = make_loaders(config, data, device, ctx, generator)
    train_model, eval_model = distributed.wrap_model(model, ctx, device), model
    if config.compile:
        train_model, eval_model = torch.compile(train_model), torch.compile(model)
    meta = CheckpointMeta(classes=data.classes, mean=data.mean, std=data.std, data_source=data.source,
                          world_size=ctx.world_size, config=config.to_json())
    record = RunRecord(run_dir, model, meta, optimizer=optimizer, scaler=scaler, loader=train_loader,
                       is_main=ctx.is_main)
    if ctx.is_main:  # on resume too: the file then names the extended --epochs, the new --device ...
        atomic_write_json(run_dir / "config.json", config.to_json())
    run = Run(config, ctx, device, run_dir, data, model, train_model, eval_model, optimizer,
              nn.CrossEntropyLoss(label_smoothing=config.label_smoothing), amp, scaler, train_loader, test_loader,
              record)
    if checkpoint is not None:
        resume_from(run, checkpoint)
    return run


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


def resume_from(run: Run, checkpoint: Checkpoint) -> None:
    """Put back the checkpoint's weights, optimizer, scaler, history, loader position and random state."""
    state = checkpoint.meta.run
    run.model.load_state_dict(checkpoint.state_dict)
    load_optimizer_state(run.optimizer, checkpoint.optimizer_state)
    if run.scaler is not None and state.scaler:
        run.scaler.load_state_dict(state.scaler)
    run.train_loader.load_state_dict({"generator_state": checkpoint.rng_state["generators"]["loader"],
                                      "batches_done": state.step})
    run.record.continue_from(state)
    run.start_epoch, run.mid_epoch, run.saved_rng = state.epoch + 1, state.mid_epoch, checkpoint.rng_state


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
    def start(cls, device: torch.device, mid_epoch: MidEpoch | None = None, count_here: bool = True) -> "EpochSums":
        """Zeros, or the sums a mid-epoch checkpoint stored (on one process only: they are global)."""
        sums = cls(loss_sum=torch.zeros((), dtype=sum_dtype(device), device=device),
                   correct=torch.zeros((), dtype=torch.int64, device=device),
                   first_bad_step=torch.full((), -1, dtype=torch.int64, device=device))
        if mid_epoch is not None:
            if count_here:
                sums.loss_sum.fill_(mid_epoch.loss_sum)
                sums.correct.fill_(mid_epoch.correct)
                sums.seen = mid_epoch.seen
            sums.step, sums.train_time_s = mid_epoch.step, mid_epoch.train_time_s
        return sums

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Count one step's batch; nothing is read back from the device."""
        self.loss_sum += loss.to(self.loss_sum.dtype) * y.shape[0]
        self.correct += (logits.argmax(dim=1) == y).sum()
        bad_now = ~torch.isfinite(loss) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(bad_now, self.step, self.first_bad_step)
        self.seen += y.shape[0]
        self.step += 1


def train_epoch(run: Run, epoch: int, stop: StopFlag) -> EpochSums:
    """One pass over the training loader, one :func:`train_step` per batch; a signal ends it early.

    Returns the epoch's sums; ``sums.step < len(loader)`` when a signal stopped it. A resumed
    epoch starts from the stored sums, and the stored random state is put back once the loader
    has skipped the batches already done (drawing them again moves torch's generator).

    Raises:
        NonFiniteLossError: some process saw a NaN/Inf loss.
    """
    from tqdm import tqdm

    config, ctx, loader, device = run.config, run.ctx, run.train_loader, run.device
    sums = EpochSums.start(device, run.mid_epoch, count_here=ctx.is_main)
    steps, first_step = len(loader), (epoch - 1) * len(loader)
    sync_every = 1 if device.type == "cpu" else ACCELERATOR_SYNC_EVERY
    batches = iter(loader)
    if run.saved_rng is not None:  # dropout's generator etc., exactly as when the checkpoint was written
        restore_rng_state(run.saved_rng)
    run.mid_epoch = run.saved_rng = None
    bar = tqdm(total=steps, initial=sums.step, desc=f"epoch {epoch}/{config.epochs}", unit="step", leave=False,
               dynamic_ncols=True, disable=config.quiet or not ctx.is_main)
    started, seen_at_start = time.perf_counter(), sums.seen
    run.train_model.train()
    try:
        for x, y in batches:
            sums.lr = learning_rate(config, first_step + sums.step, steps * config.epochs)
            sums.add(*train_step(run.train_model, run.optimizer, x, y, criterion=run.criterion, amp=run.amp,
                                 scaler=run.scaler, lr=sums.lr), y)
            bar.update(1)
            last_step = sums.step == steps
            at_sync_point = sums.step % sync_every == 0 or last_step
            # One process: the signal flag is a Python variable, read after every step. Several
            # processes must agree on the step to stop at, which needs a collective: only at
            # sync points. Either way, a diverged state is never saved (check_finite raises).
            if at_sync_point or (not ctx.enabled and stop.signal_name is not None):
                check_finite(sums, run, epoch)
                if stop.agreed(ctx, device) and not last_step:  # after the last step the epoch ends normally
                    break
            if at_sync_point and not bar.disable:
                show_progress(bar, sums, seen_at_start, started, ctx.world_size)
        else:
            check_finite(sums, run, epoch)
            stop.agreed(ctx, device)  # every process takes part at the end of the epoch, as at sync points
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        sums.train_time_s += time.perf_counter() - started
    finally:
        bar.close()
    return sums


def show_progress(bar, sums: EpochSums, seen_at_start: int, started: float, world_size: int) -> None:
    """The progress bar's running loss, accuracy and images per second (reads the sums from the device)."""
    elapsed = max(time.perf_counter() - started, 1e-9)
    bar.set_postfix(loss=f"{sums.loss_sum.item() / max(sums.seen, 1):.4f}",
                    acc=f"{100.0 * sums.correct.item() / max(sums.seen, 1):.2f}%",
                    img_s=f"{(sums.seen - seen_at_start) * world_size / elapsed:.0f}")


def check_finite(sums: EpochSums, run: Run, epoch: int) -> None:
    """Raise :class:`NonFiniteLossError` if any process saw a NaN/Inf loss (a read from the device)."""
    never = 2**62
    bad = torch.where(sums.first_bad_step < 0, never, sums.first_bad_step)
    distributed.all_reduce_min(bad, run.ctx)
    if int(bad.item()) < never:
        raise NonFiniteLossError(epoch, int(bad.item()) + 1, run.run_dir / CHECKPOINT_LAST if run.ctx.is_main else None)


def global_totals(sums: EpochSums, ctx: distributed.DistContext) -> tuple[float, float, float]:
    """``(loss sum, correct, images)`` of the epoch so far, summed over all processes."""
    dtype = sums.loss_sum.dtype
    totals = torch.stack([sums.loss_sum, sums.correct.to(dtype), torch.tensor(float(sums.seen), dtype=dtype,
                                                                              device=sums.loss_sum.device)])
    loss_sum, correct, seen = distributed.all_reduce_sum(totals, ctx).tolist()
    return loss_sum, correct, seen


def evaluate_global(run: Run, loader, tta_flip: bool) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) over ``loader``, all processes' images together."""
    confusion, loss_sum = confusion_and_loss(run.eval_model, loader, num_classes=len(run.data.classes),
                                             tta_flip=tta_flip, amp=run.amp)
    distributed.all_reduce_sum(confusion, run.ctx)
    distributed.all_reduce_sum(loss_sum, run.ctx)
    count = max(int(confusion.sum()), 1)
    return loss_sum.item() / count, 100.0 * int(confusion.trace()) / count


def describe(run: Run) -> str:
    """The line a run starts with: where, what data, which device, the main hyperparameters."""
    c, data, device, ctx, amp = run.config, run.data, run.device, run.ctx, run.amp
    return (f"run {run.run_dir} | recipe {c.recipe} | {data.source}: {len(data.train.labels)} train / "
            f"{len(data.test.labels)} test images | device {device}"
            + (f" x {ctx.world_size} processes" if ctx.enabled else "")
            + f" | {c.optimizer} lr {c.lr:g} batch {c.batch_size} epochs {c.epochs} | amp {amp}"
            + (f" ({c.amp} asked; {device.type} has no {c.amp} units)" if amp != c.amp else "")
            + (" | deterministic" if c.deterministic else ""))


def interrupted(stop: StopFlag, run: Run) -> TrainingInterrupted:
    """The exception that ends a run after a signal, with the command that continues it."""
    command = f"cifar-alexnet train --resume {shlex.quote(str(run.run_dir))}"
    if run.ctx.enabled:
        command = (f"torchrun --nproc_per_node={run.ctx.world_size} -m cifar_alexnet train --resume "
                   f"{shlex.quote(str(run.run_dir))}")
    return TrainingInterrupted(stop.signal_name or "SIGTERM", stop.exit_code, run.run_dir / CHECKPOINT_LAST, command)
