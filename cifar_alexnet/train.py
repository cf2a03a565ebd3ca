"""The trainer: ``cifar-alexnet train``, readable from top to bottom.

What one run does, in order (each step is one function below):

1. **Configuration** -- :class:`TrainConfig`: a recipe (:mod:`cifar_alexnet.recipes`) with the
   command-line overrides applied. Stored as ``config.json`` in the run directory.
2. **Set-up** -- device, seeds, data (normalised with the *training* split's per-channel
   mean/std, like the original), data loaders, model, optimizer. Anything that fails here
   fails before training starts, and the run directory is removed again: no half-written
   runs.
3. **The epoch loop** -- train one epoch (loss and accuracy accumulated *on the device*, read
   once per epoch), evaluate on the test set, append a row to the history, save
   ``best.safetensors`` when the test accuracy improved and ``last.safetensors`` (model,
   optimizer, random states) every epoch, rewrite ``history.json``/``history.csv`` and
   ``curves.png``. Every file is written atomically (:mod:`cifar_alexnet.atomic`): a crash,
   even ``kill -9`` in the middle of a write, leaves the previous version intact.
4. **Stopping early** -- ``SIGINT`` (Ctrl-C) or ``SIGTERM`` finish the current step, save a
   mid-epoch checkpoint and exit with 130 / 143 after printing the command that resumes the
   run. A non-finite loss stops the run with a message naming the epoch and step; the last
   good checkpoint is kept.

Resuming (``--resume RUN_DIR``) restores model, optimizer, every random generator, the history
and the best accuracy. A mid-epoch checkpoint stores the loader's generator state *at the start
of the interrupted epoch* and the number of steps done; resuming re-draws the same epoch
(permutation and augmentations), skips the steps already done and continues, so on a CPU with
``--deterministic`` an interrupted-and-resumed run ends bit-identical to an uninterrupted one.

Conventions used throughout:

* epochs are counted from 1; ``meta["epoch"]`` in a checkpoint is the number of *completed*
  epochs and ``meta["step"]`` the number of steps done in the next one (0 at an epoch's end);
* "train loss/accuracy" is the running value over the augmented training batches in train
  mode (dropout on) -- what the optimizer saw; ``--eval-train`` adds the original notebook's
  eval-mode pass over the augmented training set (its "train accuracy");
* the test loss is plain cross-entropy even when training uses label smoothing;
* the batch size is the global batch of all processes (see :mod:`cifar_alexnet.distributed`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import shlex
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from cifar_alexnet import distributed as dist_utils
from cifar_alexnet.atomic import DiskFullError, atomic_write_json, atomic_write_text
from cifar_alexnet.model import AlexNet
from cifar_alexnet.recipes import FAST, ORIGINAL, RECIPES, Recipe, get_recipe

__all__ = [
    "RECIPES",
    "EXIT_DISK_FULL",
    "EXIT_NONFINITE",
    "EXIT_SETUP_ERROR",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainingInterrupted",
    "add_arguments",
    "config_from_args",
    "run",
    "select_device",
    "train",
]

#: Exit status after SIGINT (Ctrl-C): 128 + 2, the shell convention.
EXIT_SIGINT = 130
#: Exit status after SIGTERM: 128 + 15.
EXIT_SIGTERM = 143
#: Exit status when the loss became NaN or infinite.
EXIT_NONFINITE = 3
#: Exit status for a bad command line or bad data (nothing was trained, no run directory left).
EXIT_SETUP_ERROR = 2
#: The disk filled up while writing a run file; the previous version of every file is intact.
EXIT_DISK_FULL = 4

#: How often (in steps) values are read back from an accelerator: the non-finite-loss check,
#: the progress bar and, in a multi-process run, the agreement to stop after a signal. Each
#: read waits for the device to finish its queued work, so reading every step would stall
#: the GPU; on a CPU there is no queue and every step is checked.
ACCELERATOR_SYNC_EVERY = 25

CHECKPOINT_LAST = "last.safetensors"
CHECKPOINT_BEST = "best.safetensors"


# =============================================================================================
# 1. Configuration
# =============================================================================================


@dataclass
class TrainConfig:
    """Everything that determines a run: the recipe's hyperparameters plus the run options.

    Build one with :meth:`from_recipe` (a recipe plus overrides) or :meth:`for_resume` (the
    stored configuration of an existing run). The fields up to ``hidden`` mirror
    :class:`~cifar_alexnet.recipes.Recipe`; see there for their meaning.
    """

    recipe: str = "original"
    # --- hyperparameters (see cifar_alexnet.recipes.Recipe) ---
    epochs: int = ORIGINAL.epochs
    batch_size: int = ORIGINAL.batch_size
    optimizer: str = ORIGINAL.optimizer
    lr: float = ORIGINAL.lr
    momentum: float = ORIGINAL.momentum
    nesterov: bool = ORIGINAL.nesterov
    betas: tuple[float, float] = ORIGINAL.betas
    weight_decay: float = ORIGINAL.weight_decay
    schedule: str = ORIGINAL.schedule
    warmup_epochs: float = ORIGINAL.warmup_epochs
    warmup_start: float = ORIGINAL.warmup_start
    label_smoothing: float = ORIGINAL.label_smoothing
    augment: bool = ORIGINAL.augment
    amp: str = ORIGINAL.amp
    channels_last: bool = ORIGINAL.channels_last
    tta_flip: bool = ORIGINAL.tta_flip
    drop_last: bool = ORIGINAL.drop_last
    dropout: float = ORIGINAL.dropout
    hidden: int = ORIGINAL.hidden
    # --- run options ---
    data: str | None = None  # see cifar_alexnet.data.load_cifar10
    download: bool = False
    verify: bool = True  # check the official archive's MD5s (off: archives in the official format, e.g. tests)
    out: str | None = None  # run directory; default runs/<UTC time>-<recipe>
    resume: str | None = None  # run directory to continue
    seed: int = 0
    deterministic: bool = False
    device: str | None = None  # None: cuda, then mps, then cpu
    loader: str = "device"  # "device" (DeviceLoader) or "torchvision" (the original PIL pipeline)
    workers: int = 4  # DataLoader worker processes for --loader torchvision (the original used 4)
    eval_batch_size: int = 1024
    eval_train: bool = False
    limit_train: int | None = None
    limit_test: int | None = None
    compile: bool = False
    sync_bn: bool = False
    dtype: str = "float32"  # "float64": weights and activations in double precision, for exact comparisons
    quiet: bool = False

    @classmethod
    def from_recipe(cls, recipe: str = "original", **overrides: Any) -> "TrainConfig":
        """The named recipe with ``overrides`` applied (``None`` means "keep the recipe's value")."""
        base = get_recipe(recipe).to_dict()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}")
        values = {**base, **{k: v for k, v in overrides.items() if v is not None}}
        return cls(recipe=recipe, **values)

    @classmethod
    def for_resume(cls, run_dir: str | os.PathLike, **overrides: Any) -> "TrainConfig":
        """The configuration stored in ``run_dir/config.json``, set to resume that run.

        Only options that do not change what is computed may be overridden (``epochs`` to
        extend a run, ``quiet``, ``device``, ``workers``); everything else comes from the run.
        """
        run_dir = Path(run_dir)
        stored = _read_stored_config(run_dir)
        allowed = {"epochs", "quiet", "device", "workers"}
        bad = sorted(k for k, v in overrides.items() if v is not None and k not in allowed)
        if bad:
            raise ValueError(f"--resume continues {run_dir} with its stored configuration; the option(s) "
                             f"{bad} cannot be changed on resume (only {sorted(allowed)}). Start a new run instead.")
        stored.update({k: v for k, v in overrides.items() if v is not None})
        stored["resume"] = str(run_dir)
        stored["out"] = str(run_dir)
        return cls(**stored)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out


def _read_stored_config(run_dir: Path) -> dict[str, Any]:
    import json

    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume {run_dir}: no config.json there; pass a run directory written by "
                                "`cifar-alexnet train` (it holds config.json and last.safetensors)")
    stored = json.loads(path.read_text())
    known = {f.name for f in fields(TrainConfig)}
    stored = {k: v for k, v in stored.items() if k in known}
    stored["betas"] = tuple(stored.get("betas", ORIGINAL.betas))
    return stored


def validate_config(config: TrainConfig, world_size: int = 1) -> None:
    """Reject impossible values with a message that names the option and the fix."""
    problems = []
    if config.recipe not in RECIPES:
        problems.append(f"--recipe {config.recipe!r}: choose one of {sorted(RECIPES)}")
    if config.epochs < 1:
        problems.append(f"--epochs {config.epochs}: must be at least 1")
    if config.batch_size < 2:
        problems.append(f"--batch-size {config.batch_size}: must be at least 2 (BatchNorm needs two images)")
    elif config.batch_size % world_size:
        problems.append(f"--batch-size {config.batch_size} is the global batch and must be divisible by the "
                        f"number of processes ({world_size})")
    if config.eval_batch_size < 1:
        problems.append(f"--eval-batch-size {config.eval_batch_size}: must be at least 1")
    if not (config.lr > 0 and math.isfinite(config.lr)):
        problems.append(f"--lr {config.lr}: must be a positive finite number")
    if config.optimizer not in ("adam", "adamw", "sgd"):
        problems.append(f"--optimizer {config.optimizer!r}: choose adam, adamw or sgd")
    if config.schedule not in ("constant", "onecycle"):
        problems.append(f"--schedule {config.schedule!r}: choose constant or onecycle")
    if config.amp not in ("off", "bf16", "fp16"):
        problems.append(f"--amp {config.amp!r}: choose off, bf16 or fp16")
    if config.loader not in ("device", "torchvision"):
        problems.append(f"--loader {config.loader!r}: choose device or torchvision")
    if config.loader == "torchvision" and world_size > 1:
        problems.append("--loader torchvision runs in one process only; use the default device loader with torchrun")
    if not 0.0 <= config.label_smoothing < 1.0:
        problems.append(f"--label-smoothing {config.label_smoothing}: must be in [0, 1)")
    if not 0.0 <= config.dropout < 1.0:
        problems.append(f"--dropout {config.dropout}: must be in [0, 1)")
    if config.hidden < 1:
        problems.append(f"--hidden {config.hidden}: must be at least 1")
    if config.dtype not in ("float32", "float64"):
        problems.append(f"--dtype {config.dtype!r}: choose float32 or float64")
    elif config.dtype == "float64" and config.amp != "off":
        problems.append(f"--dtype float64 with --amp {config.amp}: autocast is for lower precision; use --amp off")
    if config.workers < 0:
        problems.append(f"--workers {config.workers}: must be 0 or more")
    for name in ("limit_train", "limit_test"):
        value = getattr(config, name)
        if value is not None and value < 10:
            problems.append(f"--{name.replace('_', '-')} {value}: must be at least 10 (one image per class)")
    if problems:
        raise ValueError("invalid training configuration:\n  " + "\n  ".join(problems))


# =============================================================================================
# 2. Set-up: device, reproducibility, data, model, optimizer
# =============================================================================================


def select_device(requested: str | None = None, local_rank: int = 0) -> torch.device:
    """``requested`` if given, else the first available of CUDA, Apple MPS and the CPU.

    Raises:
        ValueError: the requested device does not exist on this machine.
    """
    if requested:
        device = torch.device(requested)
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(f"--device {requested}: CUDA is not available on this machine; use --device cpu")
            if device.index is None:
                device = torch.device("cuda", local_rank)
        if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"--device {requested}: Apple MPS is not available here; use --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextlib.contextmanager
def reproducibility(seed: int, deterministic: bool) -> Iterator[None]:
    """Seed every generator; with ``deterministic``, make PyTorch use only deterministic kernels.

    Without ``deterministic``, cuDNN's autotuner (``benchmark``) picks the fastest convolution
    algorithm for each shape, which may differ from run to run. The global flags are put back
    on exit, so calling :func:`train` from Python leaves no trace.
    """
    previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                torch.backends.cudnn.benchmark)
    torch.manual_seed(seed)  # seeds the CPU and every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[1], previous[2]


def resolve_amp(amp: str, device: torch.device) -> str:
    """The precision actually used: bf16 falls back to fp16 on GPUs without bfloat16 units.

    NVIDIA GPUs compute in bfloat16 from compute capability 8.0 (A100) on. Older ones (V100,
    T4) can only emulate it, slowly -- ``torch.cuda.is_bf16_supported()`` still says yes for
    them, because it counts emulation -- so the capability of ``device`` itself is checked.
    """
    if amp == "bf16" and device.type == "cuda" and torch.cuda.get_device_capability(device) < (8, 0):
        return "fp16"
    return amp


def autocast(device: torch.device, amp: str):
    """The autocast context for ``amp`` (``"off"``: a no-op context, everything float32)."""
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


@dataclass
class Data:
    """The loaded data set and its normalisation."""

    train_images: torch.Tensor  # (N, 32, 32, 3) uint8, CPU
    train_labels: torch.Tensor  # (N,) int64
    test_images: torch.Tensor  # (M, 32, 32, 3) uint8
    test_labels: torch.Tensor  # (M,) int64
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classes: tuple[str, ...]
    source: str
    train_set: Any  # the ArrayDataset (for the torchvision pipeline)
    test_set: Any


def load_data(config: TrainConfig, stored_norm: tuple[list, list] | None = None) -> Data:
    """Load CIFAR-10 (or the image folder given by ``--data``), apply ``--limit-*``, compute the mean/std.

    The mean and std are those of the (possibly limited) training split -- the original's
    z-score normalisation. On resume the stored values are used, so a run never changes its
    normalisation half-way.
    """
    from cifar_alexnet import data as data_module

    train_set, test_set = data_module.load_cifar10(config.data, download=config.download, verify=config.verify)
    if config.limit_train is not None:
        train_set = data_module.class_balanced_subset(train_set, config.limit_train, seed=config.seed)
    if config.limit_test is not None:
        test_set = data_module.class_balanced_subset(test_set, config.limit_test, seed=config.seed)
    if stored_norm is not None:
        mean, std = stored_norm
    else:
        mean, std = data_module.channel_stats(train_set.images)
    return Data(
        train_images=torch.from_numpy(train_set.images), train_labels=torch.from_numpy(train_set.labels).long(),
        test_images=torch.from_numpy(test_set.images), test_labels=torch.from_numpy(test_set.labels).long(),
        mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std),
        classes=tuple(train_set.classes), source=str(train_set.source),
        train_set=train_set, test_set=test_set,
    )


class TorchvisionLoader:
    """The original input pipeline: PIL transforms in a ``torch.utils.data.DataLoader``.

    Every image goes through PIL (``RandomCrop``, ``RandomHorizontalFlip``, ``ColorJitter()``,
    ``RandomGrayscale``, ``ToTensor``, ``Normalize``) on the CPU, batches are collated and
    copied to the device. Slow, but it is what the notebook did; kept to compare against.

    Yields ``(x, y)`` on ``device``: x ``(B, 3, 32, 32)`` float, y ``(B,)`` int64.
    """

    def __init__(self, dataset, *, batch_size: int, shuffle: bool, generator: torch.Generator,
                 device: torch.device, workers: int, drop_last: bool, channels_last: bool):
        from torch.utils.data import DataLoader

        self.device, self.channels_last = device, channels_last
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                                 num_workers=workers, drop_last=drop_last,
                                 pin_memory=device.type == "cuda", persistent_workers=False)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=memory_format)
            yield x, y.to(self.device, non_blocking=True)


def make_loaders(config: TrainConfig, data: Data, device: torch.device, ctx: dist_utils.DistContext,
                 generator: torch.Generator):
    """The training loader (shuffled, augmented, drawing from ``generator``) and the test loader.

    ``drop_last`` is forced on when the last batch would hold a single image (BatchNorm cannot
    normalise one value) and in multi-process runs (every process must get the same share).
    """
    n_train = len(data.train_labels)
    drop_last = config.drop_last or ctx.enabled or n_train % config.batch_size == 1
    if config.loader == "torchvision":
        from cifar_alexnet import data as data_module

        train_tf = (data_module.original_train_transform(data.mean, data.std) if config.augment
                    else data_module.test_transform(data.mean, data.std))
        test_tf = data_module.test_transform(data.mean, data.std)
        train_loader = TorchvisionLoader(data_module.TorchvisionDataset(data.train_set, train_tf),
                                         batch_size=config.batch_size, shuffle=True, generator=generator,
                                         device=device, workers=config.workers, drop_last=drop_last,
                                         channels_last=config.channels_last)
        test_loader = TorchvisionLoader(data_module.TorchvisionDataset(data.test_set, test_tf),
                                        batch_size=config.eval_batch_size, shuffle=False,
                                        generator=torch.Generator(), device=device, workers=config.workers,
                                        drop_last=False, channels_last=config.channels_last)
        return train_loader, test_loader

    from cifar_alexnet.device_data import DeviceLoader

    train_loader = DeviceLoader(data.train_images, data.train_labels, batch_size=config.batch_size,
                                mean=data.mean, std=data.std, train=True, augment=config.augment, device=device,
                                generator=generator, drop_last=drop_last, channels_last=config.channels_last,
                                rank=ctx.rank, world_size=ctx.world_size)
    test_loader = DeviceLoader(data.test_images, data.test_labels, batch_size=config.eval_batch_size,
                               mean=data.mean, std=data.std, train=False, augment=False, device=device,
                               generator=None, drop_last=False,
                               channels_last=config.channels_last, rank=ctx.rank, world_size=ctx.world_size)
    return train_loader, test_loader


def make_optimizer(config: TrainConfig, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD with the recipe's values; the fused CUDA kernels where available."""
    fused = {"fused": True} if device.type == "cuda" else {}
    params = model.parameters()
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=tuple(config.betas),
                                weight_decay=config.weight_decay, **fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, betas=tuple(config.betas),
                                 weight_decay=config.weight_decay, **fused)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                           weight_decay=config.weight_decay, **fused)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``optimizer.load_state_dict(state)``, keeping this device's kernels and the parameters' layout.

    Two things a plain ``load_state_dict`` gets wrong when a run resumes:

    * it replaces every param group's options with the stored ones, ``fused`` and ``foreach``
      included, so a checkpoint written on a GPU (fused kernels) and resumed on a CPU -- or the
      other way round -- would keep the other device's kernel choice. The flags that
      :func:`make_optimizer` chose for *this* device are kept; they are put into the stored
      groups before loading, so ``step`` counters also land where those kernels want them;
    * checkpoints store contiguous (NCHW) tensors and ``load_state_dict`` restores device and
      dtype but not the memory format: with ``channels_last`` parameters the momentum / Adam
      buffers would get other strides than the parameters and gradients, which CUDA's fused
      kernels refuse ("must have same dtype, device, and layout"). Each buffer shaped like its
      parameter is copied into the parameter's layout.
    """
    kept = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
    if len(kept) != len(state["param_groups"]):
        raise ValueError(f"the checkpoint's optimizer has {len(state['param_groups'])} parameter group(s), "
                         f"this one {len(kept)}")
    state = {**state, "param_groups": [{**stored, **ours} for stored, ours in zip(state["param_groups"], kept)]}
    optimizer.load_state_dict(state)
    for param, buffers in optimizer.state.items():
        for name, value in buffers.items():
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                buffers[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def learning_rate(config: TrainConfig, global_step: int, total_steps: int) -> float:
    """The learning rate of step ``global_step`` (0-based) of ``total_steps``.

    ``constant``: ``lr`` throughout (the original). ``onecycle``: linear from
    ``lr * warmup_start`` to ``lr`` over the warm-up (at most half of the run), then linear
    decay that reaches 0 one step after the last (so every step still learns).
    A pure function of the step number, so resuming needs no scheduler state.
    """
    if config.schedule == "constant":
        return config.lr
    steps_per_epoch = total_steps / config.epochs
    warmup = max(1, round(config.warmup_epochs * steps_per_epoch)) if config.warmup_epochs > 0 else 0
    warmup = min(warmup, total_steps // 2)  # short runs (tests, --epochs 1) still get a decay phase
    if global_step < warmup:
        return config.lr * (config.warmup_start + (1.0 - config.warmup_start) * global_step / warmup)
    remaining = max(1, total_steps - warmup)
    return config.lr * max(0.0, 1.0 - (global_step - warmup) / remaining)


# =============================================================================================
# Run directory: config, history, checkpoints, plots (rank 0 only)
# =============================================================================================


def default_run_dir(recipe: str) -> Path:
    """``runs/<UTC time>-<recipe>``, with a numeric suffix if that name is taken."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = Path("runs") / f"{stamp}-{recipe}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path("runs") / f"{stamp}-{recipe}-{suffix}"
    return path


HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_time_s",
                  "images_per_s"]
EVAL_TRAIN_FIELDS = ["eval_train_loss", "eval_train_acc"]


def write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite ``history.json`` and ``history.csv`` (atomically) from the list of per-epoch rows."""
    atomic_write_json(run_dir / "history.json", history)
    columns = HISTORY_FIELDS + [f for f in EVAL_TRAIN_FIELDS if any(f in row for row in history)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(run_dir / "history.csv", buffer.getvalue())


def write_curves(run_dir: Path, history: list[dict[str, Any]], log) -> None:
    """``curves.png`` via :func:`cifar_alexnet.plots.plot_history`; a plotting failure only warns."""
    try:
        from cifar_alexnet.plots import plot_history

        plot_history(history, run_dir / "curves.png")
    except Exception as exc:  # a broken plot must never end a training run
        log(f"warning: could not draw curves.png ({type(exc).__name__}: {exc})")


def resume_command(run_dir: Path, ctx: dist_utils.DistContext) -> str:
    """The shell command that continues ``run_dir``."""
    if ctx.enabled:
        return (f"torchrun --nproc_per_node={ctx.world_size} -m cifar_alexnet train --resume "
                f"{shlex.quote(str(run_dir))}")
    return f"cifar-alexnet train --resume {shlex.quote(str(run_dir))}"


# =============================================================================================
# Stopping: signals and non-finite losses
# =============================================================================================


class TrainingInterrupted(Exception):
    """Raised after SIGINT/SIGTERM once the resumable checkpoint is on disk."""

    def __init__(self, signal_name: str, exit_code: int, run_dir: Path, command: str):
        super().__init__(f"{signal_name} received: stopped after the current step and saved "
                         f"{run_dir / CHECKPOINT_LAST}. Resume with:\n  {command}")
        self.signal_name, self.exit_code, self.run_dir, self.command = signal_name, exit_code, run_dir, command


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; nothing after the last good checkpoint was saved."""

    def __init__(self, epoch: int, step: int, run_dir: Path | None):
        kept = ""
        if run_dir is not None and (run_dir / CHECKPOINT_LAST).is_file():
            kept = f" The last good checkpoint is kept: {run_dir / CHECKPOINT_LAST}."
        elif run_dir is not None:
            kept = " No checkpoint had been written yet."
        super().__init__(
            f"non-finite training loss at epoch {epoch}, step {step}: the run diverged.{kept} Lower the "
            "learning rate (--lr), use --amp off or fp16 with loss scaling, or check the data for NaN/Inf values.")
        self.epoch, self.step = epoch, step


class StopFlag:
    """Set by the SIGINT/SIGTERM handlers; read by the training loop after every step.

    The first signal asks for a clean stop. A second one raises ``KeyboardInterrupt`` at once
    (the previous checkpoint is still intact thanks to the atomic writes).
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: aborting without a new checkpoint")
        self.signal_name = signal.Signals(signum).name
        print(f"\n{self.signal_name} received: finishing the current step, then saving a resumable checkpoint "
              "(send it again to abort at once)", file=sys.stderr, flush=True)

    def install(self) -> None:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def exit_code(self) -> int:
        return EXIT_SIGTERM if self.signal_name == "SIGTERM" else EXIT_SIGINT


# =============================================================================================
# 3. Training and evaluation
# =============================================================================================


@dataclass
class EpochProgress:
    """Running sums of one training epoch, kept on the device (read once per epoch).

    ``step`` counts the steps done; ``first_bad_step`` is -1 until a loss is not finite.
    """

    loss_sum: torch.Tensor  # () float64 (float32 on MPS): sum over images of the per-image training loss
    correct: torch.Tensor  # () int64: images classified correctly
    seen: int = 0  # images seen by this process
    step: int = 0
    first_bad_step: torch.Tensor | None = None  # () int64
    train_time_s: float = 0.0  # time spent in training steps (before a resume included)

    @classmethod
    def zeros(cls, device: torch.device) -> "EpochProgress":
        return cls(loss_sum=torch.zeros((), dtype=sum_dtype(device), device=device),
                   correct=torch.zeros((), dtype=torch.int64, device=device),
                   first_bad_step=torch.full((), -1, dtype=torch.int64, device=device))


@dataclass
class Trainer:
    """Everything one run holds; built by :func:`_set_up`, driven by :func:`_fit`."""

    config: TrainConfig
    ctx: dist_utils.DistContext
    device: torch.device
    amp: str
    data: Data
    model: nn.Module  # the plain AlexNet (what checkpoints store)
    train_model: nn.Module  # what the training step calls: model, or DDP/compiled around it
    eval_model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    criterion: nn.Module
    train_loader: Any
    test_loader: Any
    generator: torch.Generator  # the training loader's generator (shuffling and augmentation)
    run_dir: Path
    compute_dtype: torch.dtype = torch.float32  # the model's dtype; batches are cast to it
    history: list[dict[str, Any]] = field(default_factory=list)
    best_acc: float = -1.0
    best_epoch: int = 0
    start_epoch: int = 1
    resume_progress: dict[str, Any] | None = None  # mid-epoch state from the checkpoint
    stop: StopFlag = field(default_factory=StopFlag)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    @property
    def sync_every(self) -> int:
        return 1 if self.device.type == "cpu" else ACCELERATOR_SYNC_EVERY

    def log(self, message: str) -> None:
        if self.ctx.is_main:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stdout)
            sys.stdout.flush()


def train_step(t: Trainer, x: torch.Tensor, y: torch.Tensor, lr: float, progress: EpochProgress) -> None:
    """One optimizer step on the batch ``x: (B, 3, 32, 32)``, ``y: (B,)``; sums stay on the device."""
    for group in t.optimizer.param_groups:
        group["lr"] = lr
    if x.dtype != t.compute_dtype:  # --dtype float64 (the loaders make float32 batches)
        x = x.to(t.compute_dtype)
    with autocast(t.device, t.amp):
        logits = t.train_model(x)  # (B, 10)
        loss = t.criterion(logits, y)  # () mean over the batch
    t.optimizer.zero_grad(set_to_none=True)
    if t.scaler is not None:  # fp16: scale the loss so small gradients do not underflow
        t.scaler.scale(loss).backward()
        t.scaler.step(t.optimizer)
        t.scaler.update()
    else:
        loss.backward()
        t.optimizer.step()
    loss = loss.detach()
    progress.loss_sum += loss.to(progress.loss_sum.dtype) * y.shape[0]
    progress.correct += (logits.detach().argmax(dim=1) == y).sum()
    bad_now = ~torch.isfinite(loss) & (progress.first_bad_step < 0)
    progress.first_bad_step = torch.where(bad_now, progress.step, progress.first_bad_step)
    progress.seen += y.shape[0]
    progress.step += 1


def check_for_stop(t: Trainer, progress: EpochProgress, epoch: int) -> bool:
    """Read the non-finite flag and the signal flag (agreed over all processes). True = stop now.

    Raises:
        NonFiniteLossError: some process saw a NaN/Inf loss.
    """
    big = 2**62
    bad = progress.first_bad_step.clone()
    bad = torch.where(bad < 0, torch.full_like(bad, big), bad)
    stop = torch.tensor(1 if t.stop.signal_name else 0, device=t.device)
    if t.ctx.enabled:
        import torch.distributed as dist

        dist.all_reduce(bad, op=dist.ReduceOp.MIN)
        dist_utils.all_reduce_max(stop, t.ctx)
        if stop.item() and t.stop.signal_name is None:  # another process got the signal
            t.stop.signal_name = "SIGTERM"
    first_bad = int(bad.item())
    if first_bad < big:
        raise NonFiniteLossError(epoch, first_bad + 1, t.run_dir if t.ctx.is_main else None)
    return bool(stop.item())


def sum_dtype(device: torch.device) -> torch.dtype:
    """The dtype of on-device running sums: float64, except on MPS (which has none)."""
    return torch.float32 if device.type == "mps" else torch.float64


@torch.no_grad()
def evaluate(t: Trainer, loader, *, tta_flip: bool) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) of the model in eval mode over ``loader`` (all processes' images).

    With ``tta_flip`` the logits of each image and of its mirror image are averaged.
    """
    t.eval_model.eval()
    dtype = sum_dtype(t.device)
    totals = torch.zeros(3, dtype=dtype, device=t.device)  # (loss sum, correct, count)
    for x, y in loader:
        if y.shape[0] == 0:
            continue
        if x.dtype != t.compute_dtype:
            x = x.to(t.compute_dtype)
        with autocast(t.device, t.amp):
            logits = t.eval_model(x).to(t.compute_dtype)  # (B, 10); autocast may give bf16/fp16
            if tta_flip:
                logits = (logits + t.eval_model(torch.flip(x, dims=[3])).to(t.compute_dtype)) / 2
        totals[0] += nn.functional.cross_entropy(logits, y, reduction="sum").to(dtype)
        totals[1] += (logits.argmax(dim=1) == y).sum().to(dtype)
        totals[2] += y.shape[0]
    dist_utils.all_reduce_sum(totals, t.ctx)
    loss_sum, correct, count = totals.tolist()
    return loss_sum / max(count, 1), 100.0 * correct / max(count, 1)


def train_one_epoch(t: Trainer, epoch: int) -> tuple[EpochProgress, float] | None:
    """Train for one epoch; returns the progress sums and the last learning rate.

    Returns ``None`` after a stop signal: the mid-epoch checkpoint has then been written.
    When the checkpoint being resumed stopped inside this epoch, the loader's generator is
    rewound to the epoch's start, the finished steps are drawn again and skipped (so every
    random stream is exactly where the interrupted run left it), and the sums continue.
    """
    from tqdm import tqdm

    progress = EpochProgress.zeros(t.device)
    skip = 0
    saved_rng = None
    if t.resume_progress is not None:  # continue inside this epoch
        saved = t.resume_progress
        skip = int(saved["step"])
        if t.ctx.is_main:  # the sums are global; counting them once (on rank 0) keeps them global
            progress.loss_sum.fill_(float(saved["loss_sum"]))
            progress.correct.fill_(int(saved["correct"]))
            progress.seen = int(saved["seen"])
        progress.step = skip
        progress.train_time_s = float(saved["train_time_s"])
        saved_rng = saved["rng_state"]
        t.resume_progress = None
    epoch_start_generator_state = t.generator.get_state()  # saved with a mid-epoch checkpoint

    total_steps = t.steps_per_epoch * t.config.epochs
    t.train_model.train()
    batches = iter(t.train_loader)
    for _ in range(skip):  # re-draw and drop the batches the interrupted run already used
        next(batches)
    if saved_rng is not None:  # dropout's generator etc., exactly as at the interruption
        from cifar_alexnet.checkpoint import restore_rng_state

        restore_rng_state(saved_rng)

    bar = tqdm(total=t.steps_per_epoch, initial=skip, desc=f"epoch {epoch}/{t.config.epochs}", unit="step",
               leave=False, dynamic_ncols=True, disable=t.config.quiet or not t.ctx.is_main)
    lr = learning_rate(t.config, (epoch - 1) * t.steps_per_epoch + skip, total_steps)
    started = time.perf_counter()
    seen_at_start = progress.seen
    try:
        for x, y in batches:
            lr = learning_rate(t.config, (epoch - 1) * t.steps_per_epoch + progress.step, total_steps)
            train_step(t, x, y, lr, progress)
            bar.update(1)
            last_step = progress.step == t.steps_per_epoch
            at_sync_point = progress.step % t.sync_every == 0 or last_step
            # One process: the signal flag is a Python variable, read after every step. Several
            # processes must agree on the step to stop at, which needs a collective: only at
            # sync points. Either way, a diverged state is never saved (check_for_stop raises).
            must_check = at_sync_point or (not t.ctx.enabled and t.stop.signal_name is not None)
            stopping = must_check and check_for_stop(t, progress, epoch)
            if stopping and not last_step:  # after the last step the epoch ends normally, then _fit stops
                progress.train_time_s += time.perf_counter() - started
                save_mid_epoch(t, epoch, progress, epoch_start_generator_state)
                return None
            if at_sync_point and not bar.disable:
                elapsed = time.perf_counter() - started
                bar.set_postfix(loss=f"{progress.loss_sum.item() / max(progress.seen, 1):.4f}",
                                acc=f"{100.0 * progress.correct.item() / max(progress.seen, 1):.2f}%",
                                img_s=f"{(progress.seen - seen_at_start) * t.ctx.world_size / max(elapsed, 1e-9):.0f}")
        check_for_stop(t, progress, epoch)
        if t.device.type == "cuda":
            torch.cuda.synchronize(t.device)
        progress.train_time_s += time.perf_counter() - started
    finally:
        bar.close()
    return progress, lr


def save_mid_epoch(t: Trainer, epoch: int, progress: EpochProgress, epoch_start_generator_state) -> None:
    """Write ``last.safetensors`` for a stop inside ``epoch`` (see :func:`train_one_epoch`)."""
    from cifar_alexnet.checkpoint import capture_rng_state

    sums = torch.stack([progress.loss_sum, progress.correct.to(progress.loss_sum.dtype),
                        torch.tensor(float(progress.seen), dtype=progress.loss_sum.dtype, device=t.device)])
    dist_utils.all_reduce_sum(sums, t.ctx)
    loss_sum, correct, seen = sums.tolist()
    rng_state = capture_rng_state()
    # The loader's generator is stored at the start of the epoch: resuming re-draws the epoch.
    rng_state["generators"] = {"loader": epoch_start_generator_state}
    mid = {"step": progress.step, "loss_sum": loss_sum, "correct": int(correct), "seen": int(seen),
           "train_time_s": progress.train_time_s}
    if t.ctx.is_main:
        save_training_checkpoint(t, t.run_dir / CHECKPOINT_LAST, completed_epochs=epoch - 1, rng_state=rng_state,
                                 mid_epoch=mid)


def checkpoint_meta(t: Trainer, completed_epochs: int, mid_epoch: dict | None) -> dict[str, Any]:
    """The JSON metadata stored with every checkpoint of this run."""
    return {
        "mean": list(t.data.mean), "std": list(t.data.std), "classes": list(t.data.classes),
        "data_source": t.data.source,
        "epoch": completed_epochs,
        "step": mid_epoch["step"] if mid_epoch else 0,
        "mid_epoch": mid_epoch,
        "metrics": t.history[-1] if t.history else {},
        "best": {"test_acc": t.best_acc, "epoch": t.best_epoch},
        "history": t.history,
        "scaler": t.scaler.state_dict() if t.scaler is not None else None,
        "world_size": t.ctx.world_size,
        "config": t.config.to_json(),
    }


def save_training_checkpoint(t: Trainer, path: Path, *, completed_epochs: int, rng_state: dict,
                             mid_epoch: dict | None = None) -> None:
    from cifar_alexnet.checkpoint import save_checkpoint

    save_checkpoint(path, t.model, meta=checkpoint_meta(t, completed_epochs, mid_epoch),
                    optimizer=t.optimizer, rng_state=rng_state)


def end_of_epoch(t: Trainer, epoch: int, row: dict[str, Any]) -> None:
    """Record ``row``; save best (if improved) then last, then history and curves (rank 0)."""
    from cifar_alexnet.checkpoint import capture_rng_state, save_checkpoint

    t.history.append(row)
    improved = row["test_acc"] > t.best_acc
    if improved:
        t.best_acc, t.best_epoch = row["test_acc"], epoch
    rng_state = capture_rng_state(generators={"loader": t.generator})
    if not t.ctx.is_main:
        return
    # best before last: if the process dies in between, resuming from the older last.safetensors
    # redoes this epoch and writes best again; the other order could leave a best file that is
    # worse than the best accuracy recorded in last.safetensors.
    if improved:
        save_checkpoint(t.run_dir / CHECKPOINT_BEST, t.model, meta=checkpoint_meta(t, epoch, None))
    save_training_checkpoint(t, t.run_dir / CHECKPOINT_LAST, completed_epochs=epoch, rng_state=rng_state)
    write_history(t.run_dir, t.history)
    write_curves(t.run_dir, t.history, t.log)


def format_row(row: dict[str, Any], epochs: int) -> str:
    line = (f"epoch {row['epoch']:>3}/{epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:6.2f}%  "
            f"test loss {row['test_loss']:.4f} acc {row['test_acc']:6.2f}%  lr {row['lr']:.3g}  "
            f"{row['epoch_time_s']:.1f} s  {row['images_per_s']:.0f} img/s")
    if "eval_train_acc" in row:
        line += f"  (eval-mode augmented train: loss {row['eval_train_loss']:.4f} acc {row['eval_train_acc']:.2f}%)"
    return line


def _fit(t: Trainer) -> None:
    """The epoch loop (see the module docstring)."""
    for epoch in range(t.start_epoch, t.config.epochs + 1):
        epoch_started = time.perf_counter()
        result = train_one_epoch(t, epoch)
        if result is None:  # a signal: the mid-epoch checkpoint is on disk
            raise TrainingInterrupted(t.stop.signal_name or "signal", t.stop.exit_code, t.run_dir,
                                      resume_command(t.run_dir, t.ctx))
        progress, lr = result
        sums = torch.stack([progress.loss_sum, progress.correct.to(progress.loss_sum.dtype),
                            torch.tensor(float(progress.seen), dtype=progress.loss_sum.dtype, device=t.device)])
        dist_utils.all_reduce_sum(sums, t.ctx)
        loss_sum, correct, seen = sums.tolist()
        test_loss, test_acc = evaluate(t, t.test_loader, tta_flip=t.config.tta_flip)
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": 100.0 * correct / max(seen, 1),
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr": lr,
            "epoch_time_s": 0.0,
            "images_per_s": seen / max(progress.train_time_s, 1e-9),
        }
        if t.config.eval_train:  # the original's "train accuracy": eval mode, augmented training images
            row["eval_train_loss"], row["eval_train_acc"] = evaluate(t, t.train_loader, tta_flip=False)
        row["epoch_time_s"] = time.perf_counter() - epoch_started
        end_of_epoch(t, epoch, row)
        t.log(format_row(row, t.config.epochs))
        # Several processes must all take part in the agreement (no short-circuit: a process that
        # skipped the collective would leave the others waiting forever).
        stop_now = _any_rank_stopping(t) if t.ctx.enabled else t.stop.signal_name is not None
        if stop_now:
            raise TrainingInterrupted(t.stop.signal_name or "SIGTERM", t.stop.exit_code, t.run_dir,
                                      resume_command(t.run_dir, t.ctx))


def _any_rank_stopping(t: Trainer) -> bool:
    stop = torch.tensor(1 if t.stop.signal_name else 0, device=t.device)
    dist_utils.all_reduce_max(stop, t.ctx)
    if stop.item() and t.stop.signal_name is None:
        t.stop.signal_name = "SIGTERM"
    return bool(stop.item())


# =============================================================================================
# Putting it together
# =============================================================================================


def _set_up(config: TrainConfig, ctx: dist_utils.DistContext, device: torch.device) -> Trainer:
    """Build everything; create the run directory only once nothing can fail any more."""
    from cifar_alexnet.checkpoint import load_checkpoint, restore_rng_state

    checkpoint = None
    if config.resume:
        run_dir = Path(config.resume)
        if not (run_dir / CHECKPOINT_LAST).is_file():
            raise FileNotFoundError(f"--resume {run_dir}: no {CHECKPOINT_LAST} there; the run stopped before its "
                                    "first checkpoint -- start it again instead")
        checkpoint = load_checkpoint(run_dir / CHECKPOINT_LAST)
    else:
        run_dir = Path(config.out) if config.out else default_run_dir(config.recipe)
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise FileExistsError(f"--out {run_dir} already exists and is not empty; choose another directory, "
                                  f"or continue that run with --resume {run_dir}")

    stored_norm = (checkpoint.meta["mean"], checkpoint.meta["std"]) if checkpoint else None
    data = load_data(config, stored_norm)

    model = AlexNet(num_classes=len(data.classes), hidden=config.hidden, dropout=config.dropout)
    compute_dtype = torch.float64 if config.dtype == "float64" else torch.float32
    model = model.to(device=device, dtype=compute_dtype)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ctx.enabled and config.sync_bn:  # before the optimizer: it must hold the final parameters
        model = dist_utils.convert_to_sync_batchnorm(model, device)
    optimizer = make_optimizer(config, model, device)
    amp = resolve_amp(config.amp, device)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    # A CPU generator on every device: the same batches on a CPU and a GPU, portable checkpoints.
    generator = torch.Generator()
    generator.manual_seed(config.seed)
    train_loader, test_loader = make_loaders(config, data, device, ctx, generator)
    if len(train_loader) == 0:
        raise ValueError(f"the training set ({len(data.train_labels)} images) is smaller than one batch "
                         f"(--batch-size {config.batch_size}); lower the batch size")

    t = Trainer(config=config, ctx=ctx, device=device, amp=amp, data=data, model=model, train_model=model,
                eval_model=model, optimizer=optimizer, scaler=scaler,
                criterion=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
                train_loader=train_loader, test_loader=test_loader, generator=generator, run_dir=run_dir,
                compute_dtype=compute_dtype)

    if checkpoint is not None:
        model.load_state_dict(checkpoint.state_dict)
        load_optimizer_state(optimizer, checkpoint.optimizer_state)
        if scaler is not None and checkpoint.meta.get("scaler"):
            scaler.load_state_dict(checkpoint.meta["scaler"])
        t.history = list(checkpoint.meta.get("history", []))
        t.best_acc = float(checkpoint.meta["best"]["test_acc"])
        t.best_epoch = int(checkpoint.meta["best"]["epoch"])
        t.start_epoch = int(checkpoint.meta["epoch"]) + 1
        mid = checkpoint.meta.get("mid_epoch")
        restore_rng_state(checkpoint.rng_state, generators={"loader": generator})
        if mid and mid["step"] > 0:
            t.resume_progress = dict(mid, rng_state=checkpoint.rng_state)

    # Wrap for several processes and/or compile; checkpoints always store the plain model.
    t.train_model = dist_utils.wrap_model(model, ctx, device)
    if config.compile:
        t.train_model = torch.compile(t.train_model)
        t.eval_model = torch.compile(t.model)

    if checkpoint is None:
        t.config = replace(config, out=str(run_dir))  # config.json names the directory actually used
        if ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(run_dir / "config.json", t.config.to_json())
    return t


def _describe(t: Trainer) -> str:
    c = t.config
    return (f"run {t.run_dir} | recipe {c.recipe} | {t.data.source}: {len(t.data.train_labels)} train / "
            f"{len(t.data.test_labels)} test images | device {t.device}"
            + (f" x {t.ctx.world_size} processes" if t.ctx.enabled else "")
            + f" | {c.optimizer} lr {c.lr:g} batch {c.batch_size} epochs {c.epochs} | amp {t.amp}"
            + (" | deterministic" if c.deterministic else ""))


def train(config: TrainConfig) -> Path:
    """Train as ``config`` says; return the run directory.

    Raises:
        ValueError / FileNotFoundError / FileExistsError: bad options or data (nothing was
            trained and no run directory is left behind).
        TrainingInterrupted: SIGINT/SIGTERM; the resumable checkpoint has been written.
        NonFiniteLossError: the loss diverged; the last good checkpoint is kept.
    """
    ctx = dist_utils.context_from_env()
    validate_config(config, ctx.world_size)
    device = select_device(config.device, ctx.local_rank)
    dist_utils.init_distributed(ctx, device)
    try:
        with reproducibility(config.seed, config.deterministic):
            existed = Path(config.out).exists() if (config.out and not config.resume) else True
            try:
                t = _set_up(config, ctx, device)
            except BaseException:
                if not config.resume and config.out and not existed:
                    shutil.rmtree(config.out, ignore_errors=True)
                raise
            if t.start_epoch > config.epochs:
                t.log(f"{t.run_dir}: all {config.epochs} epochs are done already (pass --epochs N to extend it)")
                return t.run_dir
            t.stop.install()  # before the first line: whoever reads it may signal at once
            t.log(_describe(t))
            try:
                _fit(t)
            except DiskFullError:
                # Nothing resumable was written yet: a run directory without a checkpoint is only
                # clutter. With a checkpoint, the directory stays and --resume continues it.
                if t.ctx.is_main and not config.resume and not (t.run_dir / "last.safetensors").exists():
                    shutil.rmtree(t.run_dir, ignore_errors=True)
                raise
            finally:
                t.stop.uninstall()
            if t.ctx.is_main:
                t.log(f"done: best test accuracy {t.best_acc:.2f} % at epoch {t.best_epoch} "
                      f"({t.data.source}); run directory {t.run_dir}")
            return t.run_dir
    finally:
        dist_utils.shutdown_distributed()


# =============================================================================================
# Command line
# =============================================================================================


def _recipe_default(name: str) -> str:
    return f"(default: from the recipe -- original: {getattr(ORIGINAL, name)}, fast: {getattr(FAST, name)})"


EPILOG = """examples:
  cifar-alexnet train --download                      # the original recipe: Adam 1e-3, batch 512, 100 epochs
  cifar-alexnet train --data ../shared/data/cifar10-jpeg.tar.gz --recipe fast
  cifar-alexnet train --limit-train 1000 --limit-test 1000 --epochs 2 --batch-size 64 --device cpu
  cifar-alexnet train --resume runs/20260101-120000-original      # continue a stopped run
  torchrun --nproc_per_node=4 -m cifar_alexnet train --recipe fast --sync-bn

Ctrl-C (SIGINT) or SIGTERM finish the current step, save a resumable checkpoint, print the resume
command and exit with 130 / 143. A NaN/Inf loss stops the run (exit 3) and keeps the last good
checkpoint. Bad options or data exit with 2 before anything is written; a full disk exits with 4,
leaving the previous version of every file intact. Multi-process runs (torchrun): --batch-size is the GLOBAL batch and must be divisible by
the number of processes; the learning rate is NOT scaled with the number of processes.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser`` (hyperparameters default to the recipe's values)."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    what = parser.add_argument_group("recipe and hyperparameters (override the recipe's values)")
    what.add_argument("--recipe", choices=sorted(RECIPES), default="original",
                      help="hyperparameter set, see cifar_alexnet/recipes.py (default: original)")
    what.add_argument("--epochs", type=int, help="passes over the training set " + _recipe_default("epochs"))
    what.add_argument("--batch-size", type=int,
                      help="images per step, GLOBAL over all processes " + _recipe_default("batch_size"))
    what.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], help=_recipe_default("optimizer"))
    what.add_argument("--lr", type=float, help="learning rate (peak rate with a schedule) " + _recipe_default("lr"))
    what.add_argument("--momentum", type=float, help="SGD momentum " + _recipe_default("momentum"))
    what.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                      help="SGD Nesterov momentum " + _recipe_default("nesterov"))
    what.add_argument("--weight-decay", type=float, help=_recipe_default("weight_decay"))
    what.add_argument("--schedule", choices=["constant", "onecycle"],
                      help="learning-rate schedule " + _recipe_default("schedule"))
    what.add_argument("--warmup-epochs", type=float, help="one-cycle warm-up length " + _recipe_default("warmup_epochs"))
    what.add_argument("--label-smoothing", type=float, help=_recipe_default("label_smoothing"))
    what.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                      help="the original's augmentations (crop, flip, grayscale) " + _recipe_default("augment"))
    what.add_argument("--dropout", type=float, help="drop probability " + _recipe_default("dropout"))
    what.add_argument("--hidden", type=int, help="width of the hidden linear layers " + _recipe_default("hidden"))
    what.add_argument("--drop-last", action=argparse.BooleanOptionalAction, default=None,
                      help="drop each epoch's last, smaller batch " + _recipe_default("drop_last"))

    speed = parser.add_argument_group("speed (GPU)")
    speed.add_argument("--amp", choices=["off", "bf16", "fp16"],
                       help="autocast precision; fp16 adds a GradScaler " + _recipe_default("amp"))
    speed.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                       help="NHWC memory format " + _recipe_default("channels_last"))
    speed.add_argument("--compile", action="store_true", help="torch.compile the model (default: off)")
    speed.add_argument("--tta-flip", action=argparse.BooleanOptionalAction, default=None,
                       help="average test logits over each image and its mirror " + _recipe_default("tta_flip"))
    speed.add_argument("--eval-batch-size", type=int, default=1024, help="test-time batch size (default: 1024)")
    speed.add_argument("--loader", choices=["device", "torchvision"], default="device",
                       help="device: the whole data set on the device, batched augmentation; torchvision: the "
                            "original PIL + DataLoader pipeline (default: device)")
    speed.add_argument("--workers", type=int, default=4,
                       help="DataLoader worker processes for --loader torchvision (default: 4)")
    speed.add_argument("--sync-bn", action="store_true",
                       help="multi-process runs: BatchNorm over the global batch (default: off)")
    speed.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                       help="float64 trains in double precision: slow, for verification (e.g. exact comparison of "
                            "1 and N processes, where float32 rounding differences grow step by step) "
                            "(default: float32)")

    where = parser.add_argument_group("data, output and reproducibility")
    where.add_argument("--data", help="a folder with cifar-10-python.tar.gz or cifar-10-batches-py/, or an image "
                                      "folder / .tar.gz of one (default: ./data)")
    where.add_argument("--download", action="store_true", help="download official CIFAR-10 if absent (default: off)")
    where.add_argument("--no-verify", dest="verify", action="store_false",
                       help="read an archive in the official format without comparing its MD5s with the official "
                            "ones (for home-made archives such as the tests'; default: verify)")
    where.add_argument("--limit-train", type=int, help="train on a class-balanced subset of N images (default: all)")
    where.add_argument("--limit-test", type=int, help="test on a class-balanced subset of N images (default: all)")
    where.add_argument("--out", help="run directory (default: runs/<UTC time>-<recipe>)")
    where.add_argument("--resume", metavar="RUN_DIR",
                       help="continue a stopped run with its stored configuration; only --epochs (to extend), "
                            "--device, --workers and --quiet may be given with it (default: none)")
    where.add_argument("--seed", type=int, default=0, help="seed of every random generator (default: 0)")
    where.add_argument("--deterministic", action="store_true",
                       help="deterministic kernels only: bit-identical reruns and resumes on one device "
                            "(slower on GPUs; default: off)")
    where.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: cuda, then mps, then cpu)")
    where.add_argument("--eval-train", action="store_true",
                       help="also evaluate in eval mode on the augmented training set each epoch, as the "
                            "original did (default: off)")
    where.add_argument("--quiet", action="store_true", help="no progress bar; one log line per epoch (default: off)")


_HYPERPARAMETERS = ("epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "schedule",
                    "warmup_epochs", "label_smoothing", "augment", "dropout", "hidden", "drop_last", "amp",
                    "channels_last", "tta_flip")
_RUN_OPTIONS = ("data", "download", "verify", "out", "seed", "deterministic", "device", "loader", "workers",
                "eval_batch_size", "eval_train", "limit_train", "limit_test", "compile", "sync_bn", "dtype", "quiet")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` a parsed ``train`` command line describes."""
    if args.resume:
        parser_defaults = {"eval_batch_size": 1024, "loader": "device", "workers": 4, "seed": 0, "verify": True,
                           "dtype": "float32"}
        changed = [name for name in _HYPERPARAMETERS + _RUN_OPTIONS
                   if name not in ("epochs", "quiet", "device", "workers")
                   and getattr(args, name) not in (None, False, parser_defaults.get(name))]
        if changed:
            raise ValueError(f"--resume continues a run with its stored configuration; drop "
                             f"{', '.join('--' + c.replace('_', '-') for c in changed)} (only --epochs, --device, "
                             "--workers and --quiet may be given with --resume)")
        return TrainConfig.for_resume(args.resume, epochs=args.epochs, quiet=args.quiet or None,
                                      device=args.device, workers=args.workers if args.workers != 4 else None)
    overrides = {name: getattr(args, name) for name in _HYPERPARAMETERS}
    overrides.update({name: getattr(args, name) for name in _RUN_OPTIONS})
    return TrainConfig.from_recipe(args.recipe, **overrides)


def run(args: argparse.Namespace) -> int:
    """The ``train`` subcommand: returns the process exit status.

    In a multi-process run every process exits with the same status, but only rank 0 prints.
    """
    try:
        is_main = dist_utils.context_from_env().is_main
    except ValueError:
        is_main = True

    def report(message: str) -> None:
        if is_main:
            print(message, file=sys.stderr, flush=True)

    try:
        config = config_from_args(args)
        train(config)
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
