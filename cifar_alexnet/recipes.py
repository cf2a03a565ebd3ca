"""Everything a training run is configured with: one dataclass, and the two recipes that are instances of it.

:class:`TrainConfig` lists every option of ``cifar-alexnet train`` once: its type, its
default, its help text and the reason for the default. The command-line options are
generated from its fields (:func:`add_arguments`), the run directory's ``config.json`` is
its fields as JSON, and ``--resume`` reads that file back.

Options come in two kinds:

* **hyperparameters** have no default of their own: a *recipe* gives all of them, with the
  reason for each value beside it. ``--recipe NAME`` picks one and every hyperparameter
  option that is given on the command line overrides the recipe's value;
* **run options** (where the data is, where the run goes, the seed, the device ...) do not
  change what a recipe means; each has its default in its field.

Two recipes ship:

``original``
    The 2020 notebook, value for value: Adam with learning rate 1e-3 and PyTorch's default
    betas, batch 512, 100 epochs, plain cross-entropy, no learning-rate schedule, no weight
    decay, float32. It reached 90.34 % best test accuracy on official CIFAR-10.

``fast``
    The same network and the same augmentations, with the usual modern GPU tricks: SGD with
    Nesterov momentum, a one-cycle schedule (linear warm-up, then linear decay to zero), label
    smoothing, bfloat16 autocast, channels-last memory and test-time flip averaging.
    ``bench/gpu.py`` measures its time to 90.34 % on a GPU; ``docs/runs/`` holds its
    recorded runs.

Why a learning-rate schedule matters here: with a constant rate (the original) the test
accuracy keeps oscillating by about a point from epoch to epoch (see the notebook's log); a
rate that decays to zero ends the run in a flat region, so far fewer epochs are needed.

Resuming (``--resume RUN_DIR``) continues a run with the configuration stored in its
``config.json``. Only the options in :data:`RESUME_MAY_CHANGE` may be given with it: they
do not change what is computed (``epochs`` only extends the run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cifar_alexnet.limits import MAX_COUNTER, MAX_HIDDEN, MAX_WORKERS

__all__ = ["TrainConfig", "ORIGINAL", "FAST", "RECIPES", "RESUME_MAY_CHANGE", "get_recipe", "validate_config",
           "config_from_json", "read_json_object", "check_same_run", "add_arguments", "config_from_args"]

#: The options that ``--resume`` accepts; everything else comes from the stored run.
#: ``data`` may move (the trainer then checks that it is the same data set: same classes and
#: the same per-channel mean and std of the training split).
RESUME_MAY_CHANGE = ("epochs", "quiet", "device", "workers", "data")

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
    """Every option of a training run; build one with :meth:`from_recipe` or :meth:`for_resume`."""

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
    recipe: str = run_option("original", "hyperparameter set, see cifar_alexnet/recipes.py",
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
                                  "folder / .tar.gz of one (default: ./data)", "see cifar_alexnet.data.load_cifar10")
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
    resume: str | None = run_option(None, "continue a stopped run with its stored configuration; only --epochs (to "
                                    "extend), --device, --workers, --quiet and --data (the same data set, moved) "
                                    "may differ from it",
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

    @classmethod
    def from_recipe(cls, recipe: str = "original", **overrides: Any) -> "TrainConfig":
        """The named recipe with ``overrides`` applied (``None`` means "keep the recipe's value")."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}")
        return replace(get_recipe(recipe), **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def for_resume(cls, run_dir: str | os.PathLike, **given: Any) -> "TrainConfig":
        """The configuration stored in ``run_dir/config.json``, set to resume that run.

        ``given``: the options of the resuming command line (``None``: not given). Those in
        :data:`RESUME_MAY_CHANGE` replace the stored values; any other must equal the stored
        value, or the resume is refused (a value that would be ignored is never accepted).

        Raises:
            FileNotFoundError: no ``config.json`` in ``run_dir``.
            ValueError: ``config.json`` breaks its schema (:func:`config_from_json`), or an
                option conflicts with it.
        """
        run_dir = Path(run_dir)
        path = run_dir / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"--resume {run_dir}: no config.json there; pass a run directory written by "
                                    "`cifar-alexnet train` (it holds config.json and last.safetensors)")
        stored = config_from_json(read_json_object(path), path)
        given = {k: v for k, v in given.items() if v is not None and k != "resume"}
        if "out" in given and Path(given["out"]).resolve() == run_dir.resolve():
            del given["out"]  # the run's own directory, however it is written
        conflicts = [f"{as_typed(k, v)} (the run has {as_typed(k, getattr(stored, k))})"
                     for k, v in sorted(given.items()) if k not in RESUME_MAY_CHANGE and v != getattr(stored, k)]
        if conflicts:
            raise ValueError(f"--resume {run_dir} continues the run as {path} describes it, and these options "
                             f"differ from it: {'; '.join(conflicts)}. Drop them to resume (only "
                             f"{', '.join('--' + k for k in RESUME_MAY_CHANGE)} may change), or start a new run "
                             "with --out.")
        changes = {k: v for k, v in given.items() if k in RESUME_MAY_CHANGE}
        if changes.get("data") is not None:
            changes["data"] = str(Path(changes["data"]).resolve())
        return replace(stored, **changes, resume=str(run_dir), out=str(run_dir))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out


ORIGINAL = TrainConfig(
    recipe="original",
    epochs=100,  # the notebook's end_epoch; its best test accuracy (90.34 %) came at epoch 60
    batch_size=512,  # the notebook's BATCH_SIZE
    optimizer="adam",  # torch.optim.Adam(net.parameters(), lr=0.001)
    lr=1e-3,  # ... with PyTorch's default betas and eps
    momentum=0.0,  # unused by Adam
    nesterov=False,  # unused by Adam
    betas=(0.9, 0.999),  # PyTorch's defaults, which the notebook kept
    weight_decay=0.0,  # the notebook used none (dropout 0.2 and BatchNorm regularise)
    schedule="constant",  # "LR Scheduler: None"
    warmup_epochs=0.0,  # no schedule, no warm-up
    warmup_start=1.0,  # (unused without a schedule)
    label_smoothing=0.0,  # nn.CrossEntropyLoss() with defaults
    augment=True,  # RandomCrop(32, 4), RandomHorizontalFlip, ColorJitter() (no-op), RandomGrayscale(0.3)
    amp="off",  # float32 throughout, as in 2020
    channels_last=False,  # the default NCHW memory format
    tta_flip=False,  # the notebook evaluated each test image once
    drop_last=False,  # DataLoader's default: the last batch of 50,000 % 512 = 336 images is used
    dropout=0.2,  # DROPOUT_RATE
    hidden=2048,  # "Classifier Neuron: 2048"
)

FAST = TrainConfig(
    recipe="fast",
    # About a third of the original's 100 epochs: with a decaying rate most of the original's
    # late epochs only oscillate around the same accuracy.
    epochs=30,
    # 512 keeps BatchNorm's batch statistics as in the original and still fills an H100 for a
    # network this small; larger batches would need a retuned rate.
    batch_size=512,
    # SGD + Nesterov momentum with a one-cycle rate is the standard fast CIFAR-10 recipe for
    # BatchNorm'd CNNs; it generalises at least as well as Adam with fewer epochs.
    optimizer="sgd",
    # Peak rate 0.1 for batch 512 is the usual value for BN networks of this size (ResNet-18 on
    # CIFAR uses 0.1 at batch 128-512); BatchNorm after every layer makes the net tolerant of it.
    lr=0.1,
    momentum=0.9,  # the standard value; with Nesterov it damps oscillations at the peak rate
    nesterov=True,
    betas=(0.9, 0.999),  # (unused by SGD)
    # 5e-4 is the usual CIFAR value for SGD; it keeps the weight norms (and so the effective
    # rate under BatchNorm) from drifting during the 30 epochs.
    weight_decay=5e-4,
    # One cycle: a short warm-up avoids the early blow-ups of a large rate on random weights;
    # the linear decay to zero ends training at a flat minimum (no need to pick the best epoch).
    schedule="onecycle",
    warmup_epochs=3.0,  # 10 % of the run
    warmup_start=0.1,  # start at lr/10 rather than 0 so the first steps already learn something
    # 0.1 is the common value: it stops the (BatchNorm'd) logits from growing without bound and
    # usually gains a few tenths of a point on CIFAR-10.
    label_smoothing=0.1,
    augment=True,  # the original's augmentations, so the comparison isolates optimiser and precision
    # bfloat16 autocast: tensor cores, no loss scaling needed (same exponent range as float32).
    # Where bf16 would only be emulated the trainer falls back: fp16 with a GradScaler on older
    # GPUs, float32 on CPUs without AVX512-BF16/AMX (runtime.device.resolve_amp).
    amp="bf16",
    channels_last=True,  # NHWC is the layout tensor-core convolutions want
    tta_flip=True,  # averaging each image with its mirror image: free accuracy at test time
    drop_last=True,  # equal-size batches: no small last batch with noisy BatchNorm statistics
    dropout=0.2,  # same architecture as the original
    hidden=2048,  # same architecture as the original
)

#: The recipes by name (``--recipe NAME``).
RECIPES: dict[str, TrainConfig] = {"original": ORIGINAL, "fast": FAST}


def get_recipe(name: str) -> TrainConfig:
    """Look a recipe up by name, with an error that lists the known names."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}") from None


def validate_config(config: TrainConfig, world_size: int = 1) -> None:
    """Reject impossible values with a message that names the option and the fix."""
    c, problems = config, []
    for f in fields(c):
        choices = f.metadata.get("choices")
        if choices and getattr(c, f.name) not in choices:
            problems.append(f"--{f.name.replace('_', '-')} {getattr(c, f.name)!r}: choose one of {', '.join(choices)}")
    if c.recipe not in RECIPES:
        problems.append(f"--recipe {c.recipe!r}: choose one of {sorted(RECIPES)}")
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
        value = getattr(c, name)
        if value is not None and not 10 <= value <= MAX_COUNTER:
            problems.append(f"--{name.replace('_', '-')} {value}: must be in 10..{MAX_COUNTER:,} (at least one image "
                            "per class)")
    if problems:
        raise ValueError("invalid training configuration: " + "; ".join(problems))


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; a ValueError naming the file if it is not one."""
    try:
        size = path.stat().st_size
        if size > 1 << 20:
            raise ValueError(f"{path}: {size:,} bytes; a config.json has about 1 KB -- it is not a run's configuration")
        obj = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); restore the file the run wrote") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a JSON {type(obj).__name__}, not an object of training options")
    return obj


def _field_type_error(annotation: str, value: Any) -> str | None:
    """Why ``value`` is not of the field type ``annotation`` (a string such as ``"int | None"``), or None."""
    kinds = annotation.split(" | ")
    if value is None:
        return None if "None" in kinds else "must not be null"
    kind = kinds[0]
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "str":
        ok = isinstance(value, str)
    else:  # tuple[float, float]: the betas
        ok = (isinstance(value, list) and len(value) == 2
              and all(_field_type_error("float", v) is None for v in value))
    return None if ok else f"must be {'a finite number' if kind == 'float' else kind}{' or null' if 'None' in kinds else ''}"


def config_from_json(stored: dict[str, Any], source: Path) -> TrainConfig:
    """The :class:`TrainConfig` a run's ``config.json`` object describes, every field checked first.

    Each field must have its declared type (a float field: a finite number); unknown fields are
    refused; a field the file lacks takes the recipe's value. The result then passes
    :func:`validate_config`. Every problem is listed in one ValueError that names ``source``.
    """
    known = {f.name: f for f in fields(TrainConfig)}
    problems = [f"unknown field {name!r}" for name in sorted(set(stored) - set(known))]
    for name, value in stored.items():
        if name in known and (why := _field_type_error(known[name].type, value)):
            problems.append(f"{name}: {json.dumps(value)[:60]} {why}")
    recipe = stored.get("recipe", "original")
    if isinstance(recipe, str) and recipe not in RECIPES:
        problems.append(f"recipe: {json.dumps(recipe)[:60]} is not one of {sorted(RECIPES)}")
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems) + ". Restore the file the run wrote (or start a new run).")
    values = {name: stored[name] for name in known if name in stored}
    if "betas" in values:
        values["betas"] = tuple(float(b) for b in values["betas"])
    config = replace(RECIPES[recipe], **values)
    try:
        validate_config(config)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return config


def check_same_run(config: TrainConfig, checkpoint_config: dict[str, Any] | None, checkpoint: Path) -> None:
    """Refuse to resume when ``config`` differs from the configuration the checkpoint was trained with.

    Compared: every field except :data:`RESUME_MAY_CHANGE` and the run's own paths. So a
    ``config.json`` edited (or damaged) after the run started cannot change what the rest of
    the run computes. A checkpoint without a stored configuration (an older format) is not compared.
    """
    if not isinstance(checkpoint_config, dict):
        return
    mine = config.to_json()
    differ = [f"{name} {json.dumps(mine[name])} vs {json.dumps(checkpoint_config[name])}" for name in mine
              if name not in RESUME_MAY_CHANGE + ("resume", "out") and name in checkpoint_config
              and checkpoint_config[name] != mine[name]]
    if differ:
        raise ValueError(f"{checkpoint.parent / 'config.json'} does not match {checkpoint}, which this run "
                         f"resumes from: {'; '.join(differ)}. Restore config.json as the run wrote it, or start a "
                         "new run.")


# ---------------------------------------------------------------------------------------------
# The command line, generated from the fields
# ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per field with a ``cli`` entry; its help names the default (the recipe's, for hyperparameters)."""
    groups = {name: parser.add_argument_group(name) for name in (HYPER, SPEED, RUN)}
    for f in sorted(fields(TrainConfig), key=lambda f: f.name != "recipe"):  # --recipe first
        meta = f.metadata
        if not meta["cli"]:
            continue
        flag = "--" + f.name.replace("_", "-")
        if meta["kind"] == "hyperparameter":
            recipe_values = ", ".join(f"{name}: {getattr(r, f.name)}" for name, r in RECIPES.items())
            help_text = f"{meta['help']} (default: from the recipe -- {recipe_values})"
        else:
            help_text = meta["help"] if "(default:" in meta["help"] else f"{meta['help']} (default: {f.default})"
        # Options not typed stay out of the namespace: config_from_args tells given from default.
        kwargs: dict[str, Any] = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        if meta["cli"] == "flag" and meta["kind"] == "hyperparameter":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif meta["cli"] == "flag":
            kwargs["action"] = "store_true"
        elif meta["cli"] == "no":
            flag, kwargs["action"] = "--no-" + f.name.replace("_", "-"), "store_false"
            kwargs["help"] = f"{meta['help']} (default: {f.name})"
        else:
            kwargs["type"] = _option_type(f.type)
            if meta["choices"] or f.name == "recipe":
                kwargs["choices"] = list(meta["choices"] or sorted(RECIPES))
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
        groups[meta["group"]].add_argument(flag, **kwargs)


def as_typed(name: str, value: Any) -> str:
    """An option as one types it: ``("lr", 0.5)`` -> ``--lr 0.5``; ``("augment", False)`` -> ``--no-augment``."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {value}"


def _option_type(annotation: str):
    """``int``/``float``/``str`` from a field's annotation (``"int | None"`` -> ``int``)."""
    return {"int": int, "float": float}.get(annotation.split(" | ")[0], str)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` a parsed ``train`` command line describes.

    The parser leaves out every option that was not typed (``argparse.SUPPRESS``), so what is
    in ``args`` is exactly what the user asked for: on a new run it overrides the recipe, on
    ``--resume`` it is checked against the stored run.
    """
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    resume = given.pop("resume", None)
    if resume is None:
        return TrainConfig.from_recipe(given.pop("recipe", "original"), **given)
    return TrainConfig.for_resume(resume, **given)
