"""Everything a training run is configured with: one dataclass, every option with its help and reason.

:class:`TrainConfig` lists every option of ``cifar-alexnet train`` once: its type, its
default, its help text and the reason for the default. The command-line options are
generated from its fields (:mod:`cifar_alexnet.training.options`), the run directory's
``config.json`` is its fields as JSON, and ``--resume`` reads that file back
(:mod:`cifar_alexnet.training.recipes`).

Options come in two kinds:

* **hyperparameters** have no default of their own: a *recipe*
  (:mod:`cifar_alexnet.training.recipes`) gives all of them, with the reason for each value
  beside it. ``--recipe NAME`` picks one and every hyperparameter option that is given on the
  command line overrides the recipe's value;
* **run options** (where the data is, where the run goes, the seed, the device ...) do not
  change what a recipe means; each has its default in its field.

Resuming (``--resume RUN_DIR``) continues a run with the configuration stored in its
``config.json``. Only the options in :data:`RESUME_MAY_CHANGE` may be given with it: they
do not change what is computed.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cifar_alexnet.errors import OptionsError
from cifar_alexnet.runtime.limits import MAX_COUNTER, MAX_HIDDEN, MAX_WORKERS, subset_size_problem

__all__ = ["TrainConfig", "RESUME_MAY_CHANGE", "HYPER", "SPEED", "RUN", "validate_config", "field_base_type",
           "field_type_problem"]

#: The options that ``--resume`` accepts, each with what it may change; everything else comes
#: from the stored run. ``epochs`` may only grow, and only with a constant learning rate (a
#: schedule's shape depends on the number of epochs). ``data`` may move (the trainer then checks
#: that it is the same data set: same classes and the same per-channel mean and std of the
#: training split).
RESUME_MAY_CHANGE = {"epochs": "to extend a run with a constant learning rate", "quiet": "the output",
                     "device": "where it runs", "workers": "loader processes",
                     "data": "the same data set, moved"}

HYPER, SPEED, RUN = ("recipe and hyperparameters (override the recipe's values)", "speed (GPU)",
                     "data, output and reproducibility")


def hyperparameter(help: str, group: str = HYPER, *, cli: str = "value", choices=None) -> Any:
    """A field whose value comes from the recipe. ``cli``: ``"value"``, ``"flag"`` (--x/--no-x) or ``""`` (none)."""
    return field(metadata={"kind": "hyperparameter", "help": help, "group": group, "cli": cli, "choices": choices})


def run_option(default: Any, help: str, why: str, group: str = RUN, *, cli: str = "value", choices=None,
               metavar: str | None = None) -> Any:
    """A field with its own default and the reason for it. ``cli``: ``"value"``, ``"flag"`` (store_true) or ``"no"``."""
    return field(default=default, metadata={"kind": "run", "help": help, "why": why, "group": group, "cli": cli,
                                            "choices": choices, "metavar": metavar})


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run; build one with :func:`~cifar_alexnet.training.recipes.config_from_recipe`
    or :func:`~cifar_alexnet.training.recipes.config_for_resume`."""

    # --- hyperparameters: the recipe gives each value, and the reason for it -------------------
    epochs: int = hyperparameter("passes over the training set")
    batch_size: int = hyperparameter("images per step, GLOBAL over all processes (divisible by their number)")
    optimizer: str = hyperparameter("the optimizer", choices=("adam", "adamw", "sgd"))
    lr: float = hyperparameter("learning rate (peak rate with a schedule)")
    momentum: float = hyperparameter("SGD momentum (Adam's betas play that role)")
    nesterov: bool = hyperparameter("SGD Nesterov momentum", cli="flag")
    betas: tuple[float, float] = hyperparameter("Adam/AdamW moving-average coefficients", cli="")
    weight_decay: float = hyperparameter("L2 penalty (Adam, SGD) or decoupled decay (AdamW)")
    schedule: str = hyperparameter("learning-rate schedule: constant, or onecycle (linear warm-up from "
                                   "lr * warmup_start to lr, then linear decay to 0)",
                                   choices=("constant", "onecycle"))
    warmup_epochs: float = hyperparameter("one-cycle warm-up length in epochs (fractions allowed)")
    warmup_start: float = hyperparameter("one-cycle rate at the first step, as a fraction of lr", cli="")
    label_smoothing: float = hyperparameter("cross-entropy label smoothing (0 = plain cross-entropy)")
    augment: bool = hyperparameter("the original's augmentations (crop, flip, grayscale)", cli="flag")
    amp: str = hyperparameter("autocast precision; fp16 adds a GradScaler; where bf16 would be emulated "
                               "it falls back: to fp16 on pre-A100 GPUs, to off on CPUs without "
                               "AVX512-BF16/AMX", SPEED, choices=("off", "bf16", "fp16"))
    channels_last: bool = hyperparameter("NHWC memory format", SPEED, cli="flag")
    tta_flip: bool = hyperparameter("average test logits over each image and its mirror", SPEED, cli="flag")
    drop_last: bool = hyperparameter("drop each epoch's last, smaller batch", cli="flag")
    dropout: float = hyperparameter("drop probability of the classifier's dropout layers")
    hidden: int = hyperparameter("width of the hidden linear layers")

    # --- run options: each default with its reason ---------------------------------------------
    recipe: str = run_option("original", "hyperparameter set, see cifar_alexnet/training/recipes.py",
                             "the 2020 notebook's values: the run this project reproduces", HYPER)
    compile: bool = run_option(False, "torch.compile the model", "compiling takes minutes; worth it on GPUs only",
                               SPEED, cli="flag")
    eval_batch_size: int = run_option(1024, "test-time batch size",
                                      "no gradients are kept, so test batches can be twice the training batch", SPEED)
    loader: str = run_option("device", "device: the whole data set on the device, batched augmentation; "
                             "torchvision: the original PIL + DataLoader pipeline",
                             "same augmentations as the original's, without per-image PIL work", SPEED,
                             choices=("device", "torchvision"))
    workers: int = run_option(4, "DataLoader worker processes for --loader torchvision",
                              "the original notebook's num_workers", SPEED)
    sync_bn: bool = run_option(False, "multi-process runs: BatchNorm over the global batch",
                               "per-process BatchNorm is what DistributedDataParallel does by default", SPEED,
                               cli="flag")
    dtype: str = run_option("float32", "float64 trains in double precision: slow, for verification (e.g. exact "
                            "comparison of 1 and N processes, where float32 rounding differences grow step by step)",
                            "float32 is what the original trained in", SPEED, choices=("float32", "float64"))
    data: str | None = run_option(None, "a folder with cifar-10-python.tar.gz or cifar-10-batches-py/, or an image "
                                  "folder / .tar.gz of one (default: ./data)", "see cifar_alexnet.data.cifar10.load_cifar10")
    download: bool = run_option(False, "download official CIFAR-10 if absent",
                                "no network access unless asked for", cli="flag")
    verify: bool = run_option(True, "read an archive in the official format without comparing its MD5s with the "
                              "official ones (for home-made archives such as the tests')",
                              "an altered archive must not train silently", cli="no")
    limit_train: int | None = run_option(None, "train on a class-balanced subset of N images (default: all)",
                                         "the whole training set, as the original")
    limit_test: int | None = run_option(None, "test on a class-balanced subset of N images (default: all)",
                                        "the whole test set, as the original")
    out: str | None = run_option(None, "run directory (default: runs/<UTC time>-<recipe>)",
                                 "a new directory per run, so no run overwrites another")
    resume: str | None = run_option(None, "continue a stopped run with its stored configuration; only "
                                    + "; ".join(f"--{name} ({why})" for name, why in RESUME_MAY_CHANGE.items())
                                    + " may differ from it",
                                    "a new run unless asked", metavar="RUN_DIR")
    seed: int = run_option(0, "seed of every random generator", "any fixed value makes reruns repeatable")
    deterministic: bool = run_option(False, "deterministic kernels only: bit-identical reruns and resumes on one "
                                     "device (slower on GPUs)", "cuDNN's autotuner is faster", cli="flag")
    device: str | None = run_option(None, "cpu, cuda, cuda:1, mps (default: cuda, then mps, then cpu)",
                                    "the fastest device present")
    eval_train: bool = run_option(False, "also evaluate in eval mode on the augmented training set each epoch, as "
                                  "the original did", "it costs a third of an epoch", cli="flag")
    quiet: bool = run_option(False, "no progress bar; one log line per epoch", "a bar shows progress inside an epoch",
                             cli="flag")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out


#: Each field's type, read once from the annotations.
_FIELD_TYPES = typing.get_type_hints(TrainConfig)


def validate_config(config: TrainConfig, world_size: int = 1) -> None:
    """Reject impossible values with one message that names every bad option and its fix.

    Raises:
        OptionsError: one line listing the problems.
    """
    c, problems = config, []
    for f in fields(c):
        choices = f.metadata.get("choices")
        if choices and getattr(c, f.name) not in choices:
            problems.append(f"--{f.name.replace('_', '-')} {getattr(c, f.name)!r}: choose one of {', '.join(choices)}")
    if not 1 <= c.epochs <= MAX_COUNTER:
        problems.append(f"--epochs {c.epochs}: must be in 1..{MAX_COUNTER:,}")
    if c.batch_size < 2:
        problems.append(f"--batch-size {c.batch_size}: must be at least 2 (BatchNorm needs two images)")
    elif c.batch_size % world_size:
        problems.append(f"--batch-size {c.batch_size} is the global batch and must be divisible by the "
                        f"number of processes ({world_size})")
    if c.eval_batch_size < 1:
        problems.append(f"--eval-batch-size {c.eval_batch_size}: must be at least 1")
    if not (c.lr > 0 and math.isfinite(c.lr)):
        problems.append(f"--lr {c.lr}: must be a positive finite number")
    if c.loader == "torchvision" and world_size > 1:
        problems.append("--loader torchvision runs in one process only; use the default device loader with torchrun")
    if not 0.0 <= c.label_smoothing < 1.0:
        problems.append(f"--label-smoothing {c.label_smoothing}: must be in [0, 1)")
    if not 0.0 <= c.dropout < 1.0:
        problems.append(f"--dropout {c.dropout}: must be in [0, 1)")
    if not 1 <= c.hidden <= MAX_HIDDEN:
        problems.append(f"--hidden {c.hidden}: must be in 1..{MAX_HIDDEN}")
    if not 0.0 <= c.momentum < 1.0:
        problems.append(f"--momentum {c.momentum}: must be in [0, 1)")
    if not all(0.0 <= b < 1.0 for b in c.betas):
        problems.append(f"betas {list(c.betas)}: each must be in [0, 1)")
    if not (0.0 <= c.weight_decay and math.isfinite(c.weight_decay)):
        problems.append(f"--weight-decay {c.weight_decay}: must be a finite number, 0 or more")
    if not 0.0 <= c.warmup_epochs <= MAX_COUNTER:
        problems.append(f"--warmup-epochs {c.warmup_epochs}: must be in [0, {MAX_COUNTER:,}] (longer than --epochs: "
                        "the run ends inside the warm-up)")
    if not 0.0 < c.warmup_start <= 1.0:
        problems.append(f"warmup_start {c.warmup_start}: must be in (0, 1]")
    if not 0 <= c.seed < 2**63:
        problems.append(f"--seed {c.seed}: must be in 0..2**63-1")
    if c.dtype == "float64" and c.amp != "off":
        problems.append(f"--dtype float64 with --amp {c.amp}: autocast is for lower precision; use --amp off")
    if not 0 <= c.workers <= MAX_WORKERS:
        problems.append(f"--workers {c.workers}: must be in 0..{MAX_WORKERS}")
    for name in ("limit_train", "limit_test"):
        if problem := subset_size_problem(f"--{name.replace('_', '-')}", getattr(c, name)):
            problems.append(problem)
    if problems:
        raise OptionsError("invalid training configuration: " + "; ".join(problems))


def field_base_type(name: str) -> type:
    """The type of field ``name`` without ``| None``: ``bool``, ``int``, ``float``, ``str`` or ``tuple``."""
    kind = _FIELD_TYPES[name]
    if isinstance(kind, types.UnionType):  # "int | None"
        kind = next(t for t in typing.get_args(kind) if t is not type(None))
    return typing.get_origin(kind) or kind


def field_type_problem(name: str, value: Any) -> str | None:
    """Why ``value`` (read from JSON) cannot be the value of field ``name``, or None if it can."""
    kind = _FIELD_TYPES[name]
    optional = isinstance(kind, types.UnionType) and type(None) in typing.get_args(kind)
    if value is None:
        return None if optional else "must not be null"
    base = field_base_type(name)
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif base is str:
        ok = isinstance(value, str)
    else:  # tuple[float, float]: the betas
        ok = (isinstance(value, list) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value))
    wanted = {bool: "bool", int: "int", float: "a finite number", str: "str"}.get(base, "two finite numbers")
    return None if ok else f"must be {wanted}{' or null' if optional else ''}"


