"""The two recipes, and building a run's configuration from a recipe, a command line or a stored run.

A recipe is a :class:`~cifar_alexnet.training.config.TrainConfig` that gives every
hyperparameter, with the reason for each value beside it. Two ship:

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

:func:`config_from_recipe` builds a new run's configuration, :func:`config_for_resume` a
resumed run's from its ``config.json`` (:func:`config_from_json` checks that file field by
field), and :func:`check_same_run` compares it with the configuration the checkpoint stored.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from cifar_alexnet.errors import MissingFileError, OptionsError
from cifar_alexnet.training.config import RESUME_MAY_CHANGE, TrainConfig, field_type_problem, validate_config

__all__ = ["ORIGINAL", "FAST", "RECIPES", "get_recipe", "config_from_recipe", "config_for_resume",
           "config_from_json", "read_json_object", "check_same_run", "as_typed"]


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
        raise OptionsError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}") from None


def config_from_recipe(recipe: str = "original", **overrides: Any) -> TrainConfig:
    """The named recipe with ``overrides`` applied (``None`` means "keep the recipe's value")."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise OptionsError(f"unknown training option(s) {unknown}")
    return replace(get_recipe(recipe), **{k: v for k, v in overrides.items() if v is not None})


def config_for_resume(run_dir: str | os.PathLike, **given: Any) -> TrainConfig:
    """The configuration stored in ``run_dir/config.json``, set to resume that run.

    ``given``: the options of the resuming command line (``None``: not given). Those in
    :data:`RESUME_MAY_CHANGE` replace the stored values; any other must equal the stored
    value, or the resume is refused (a value that would be ignored is never accepted).

    ``--epochs`` may only extend a run, and only one with a constant learning rate: a
    schedule's shape depends on the number of epochs, so changing it would change the steps
    already taken's successors (a one-cycle rate would jump back up).

    Raises:
        MissingFileError: no ``config.json`` in ``run_dir``.
        OptionsError: ``config.json`` breaks its schema (:func:`config_from_json`), or an
            option conflicts with it.
    """
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.is_file():
        raise MissingFileError(f"--resume {run_dir}: no config.json there; pass a run directory written by "
                                "`cifar-alexnet train` (it holds config.json and last.safetensors)")
    stored = config_from_json(read_json_object(path), path)
    given = {k: v for k, v in given.items() if v is not None and k != "resume"}
    if "out" in given and Path(given["out"]).resolve() == run_dir.resolve():
        del given["out"]  # the run's own directory, however it is written
    conflicts = [f"{as_typed(k, v)} (the run has {as_typed(k, getattr(stored, k))})"
                 for k, v in sorted(given.items()) if k not in RESUME_MAY_CHANGE and v != getattr(stored, k)]
    if conflicts:
        raise OptionsError(f"--resume {run_dir} continues the run as {path} describes it, and these options "
                           f"differ from it: {'; '.join(conflicts)}. Drop them to resume (only "
                           f"{', '.join('--' + k for k in RESUME_MAY_CHANGE)} may change), or start a new run "
                           "with --out.")
    changes = {k: v for k, v in given.items() if k in RESUME_MAY_CHANGE}
    epochs = changes.get("epochs", stored.epochs)
    if epochs < stored.epochs:
        raise OptionsError(f"--resume {run_dir} --epochs {epochs}: the run is set to {stored.epochs} epochs and "
                           "--epochs may only extend it; to stop earlier, use the checkpoint of the epoch you want")
    if epochs != stored.epochs and stored.schedule != "constant":
        raise OptionsError(f"--resume {run_dir} --epochs {epochs}: the run's {stored.schedule} learning-rate "
                           f"schedule is laid out over its {stored.epochs} epochs, so a different --epochs would "
                           "change the rate of the steps still to come; resume without --epochs, or start a new run")
    if changes.get("data") is not None:
        changes["data"] = str(Path(changes["data"]).resolve())
    return replace(stored, **changes, resume=str(run_dir), out=str(run_dir))


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; an :class:`~cifar_alexnet.errors.OptionsError` naming the file if it is not one."""
    try:
        size = path.stat().st_size
        if size > 1 << 20:
            raise OptionsError(f"{path}: {size:,} bytes; a config.json has about 1 KB -- it is not a run's configuration")
        obj = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise OptionsError(f"{path}: not valid JSON ({str(exc)[:200]}); restore the file the run wrote") from None
    except OSError as exc:
        raise OptionsError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(obj, dict):
        raise OptionsError(f"{path}: holds a JSON {type(obj).__name__}, not an object of training options")
    return obj


def config_from_json(stored: dict[str, Any], source: Path) -> TrainConfig:
    """The :class:`TrainConfig` a run's ``config.json`` object describes, every field checked first.

    Each field must have its declared type (a float field: a finite number); unknown fields are
    refused; a field the file lacks takes the recipe's value. The result then passes
    :func:`validate_config`. Every problem is listed in one :class:`~cifar_alexnet.errors.OptionsError` that names ``source``.
    """
    known = {f.name: f for f in fields(TrainConfig)}
    problems = [f"unknown field {name!r}" for name in sorted(set(stored) - set(known))]
    for name, value in stored.items():
        if name in known and (why := field_type_problem(name, value)):
            problems.append(f"{name}: {json.dumps(value)[:60]} {why}")
    recipe = stored.get("recipe", "original")
    if isinstance(recipe, str) and recipe not in RECIPES:
        problems.append(f"recipe: {json.dumps(recipe)[:60]} is not one of {sorted(RECIPES)}")
    if problems:
        raise OptionsError(f"{source}: " + "; ".join(problems) + ". Restore the file the run wrote (or start a new run).")
    values = {name: stored[name] for name in known if name in stored}
    if "betas" in values:
        values["betas"] = tuple(float(b) for b in values["betas"])
    config = replace(RECIPES[recipe], **values)
    try:
        validate_config(config)
    except OptionsError as exc:
        raise OptionsError(f"{source}: {exc}") from None
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
              if name not in (*RESUME_MAY_CHANGE, "resume", "out") and name in checkpoint_config
              and checkpoint_config[name] != mine[name]]
    if differ:
        raise OptionsError(f"{checkpoint.parent / 'config.json'} does not match {checkpoint}, which this run "
                         f"resumes from: {'; '.join(differ)}. Restore config.json as the run wrote it, or start a "
                         "new run.")


def as_typed(name: str, value: Any) -> str:
    """An option as one types it: ``("lr", 0.5)`` -> ``--lr 0.5``; ``("augment", False)`` -> ``--no-augment``."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {value}"
