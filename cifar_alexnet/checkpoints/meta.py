"""What a checkpoint says about its weights: one typed record, written, checked and read through one class.

A checkpoint file (:mod:`cifar_alexnet.checkpoints.format`) stores :class:`CheckpointMeta` as
one JSON object in its header. Everything that reads or writes that object goes through
:meth:`CheckpointMeta.to_json` and :meth:`CheckpointMeta.from_json`; the second checks every
field before it builds the record, so code that holds a ``CheckpointMeta`` can trust it.

=====================  =============================================================================
JSON key               field and rule
=====================  =============================================================================
``classes``            2..1000 unique, non-empty names of at most 200 characters
``mean``, ``std``      3 finite per-channel numbers each; mean in [0, 1], std in (0, 1]
``arch``               ``{}`` (a model that is not this package's AlexNet), or exactly
                       ``num_classes`` (int, as many as ``classes``), ``hidden`` (int,
                       1..:data:`~cifar_alexnet.runtime.limits.MAX_HIDDEN`), ``dropout`` (in [0, 1))
``format_version``     1 or 2 (:data:`CHECKPOINT_FORMAT_VERSION`)
``epoch``              completed epochs, int in 0..:data:`~cifar_alexnet.runtime.limits.MAX_COUNTER`
``step``, ``mid_epoch``  steps done in the next epoch, and its running sums (:class:`MidEpoch`)
``best``               ``{epoch, test_acc}``: the best epoch so far (epoch at most ``epoch``)
``history``            one object per completed epoch, ``epoch`` counting 1, 2, ...
``scaler``             ``null`` or the fp16 ``GradScaler``'s state
``metrics``            the last epoch's row of the history (an object)
``config``             the run's :class:`~cifar_alexnet.training.config.TrainConfig` as JSON
``weights``            exported files: ``{epoch, epochs_of_run, test_acc, tta_flip}`` of the weights
any other key          kept as it is (:attr:`CheckpointMeta.extra`)
=====================  =============================================================================

The keys from ``epoch`` to ``scaler`` are what ``train --resume`` continues from; they are
grouped in :class:`RunState` (``meta.run``). A file without them holds weights only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cifar_alexnet.errors import CheckpointError
from cifar_alexnet.runtime.limits import MAX_CLASSES, MAX_COUNTER, MAX_HIDDEN, MIN_CLASSES

__all__ = ["CHECKPOINT_FORMAT_VERSION", "MAX_CLASS_NAME", "Arch", "MidEpoch", "RunState", "CheckpointMeta",
           "invalid_meta", "is_int", "is_number"]

#: Bumped whenever the file layout changes incompatibly (2: plain JSON; 1: tagged JSON, still read).
CHECKPOINT_FORMAT_VERSION = 2
#: Longest class name accepted.
MAX_CLASS_NAME = 200
#: What to do about a checkpoint whose metadata breaks the rules.
REWRITE_HINT = ("use another checkpoint of the run (last.safetensors / best.safetensors), or re-save the weights "
                "with cifar_alexnet.checkpoints.format.save_checkpoint")
_RUN_KEYS = ("epoch", "step", "mid_epoch", "best", "history", "scaler")
_KNOWN_KEYS = {"classes", "mean", "std", "arch", "format_version", "package_version", "torch_version", "metrics",
               "config", "data_source", "world_size", "weights", *_RUN_KEYS}


def invalid_meta(path: Path | str, field_name: str, problem: str) -> CheckpointError:
    """The one-line error for a metadata field that breaks its rule."""
    return CheckpointError(f"{path}: invalid checkpoint metadata: {field_name} {problem}; {REWRITE_HINT}")


@dataclass(frozen=True)
class Arch:
    """The constructor arguments of :class:`~cifar_alexnet.model.AlexNet`."""

    num_classes: int
    hidden: int
    dropout: float

    def to_json(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "hidden": self.hidden, "dropout": self.dropout}


@dataclass(frozen=True)
class MidEpoch:
    """The running sums of an epoch that a signal interrupted (all processes together)."""

    step: int  # steps done in the epoch
    loss_sum: float  # sum over images of the per-image training loss
    correct: int  # images classified correctly
    seen: int  # images seen
    train_time_s: float  # time spent in training steps

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "loss_sum": self.loss_sum, "correct": self.correct, "seen": self.seen,
                "train_time_s": self.train_time_s}


@dataclass(frozen=True)
class RunState:
    """Where a training run stands: what ``train --resume`` continues from."""

    epoch: int  # completed epochs
    history: tuple[dict[str, Any], ...] = ()  # one row per completed epoch
    best_epoch: int = 0  # the epoch of the best test accuracy so far (0: none yet)
    best_test_acc: float = -1.0
    mid_epoch: MidEpoch | None = None  # set when a signal stopped the run inside epoch ``epoch + 1``
    scaler: dict[str, Any] | None = None  # the fp16 GradScaler's state_dict()

    @property
    def step(self) -> int:
        """Steps already done in the next epoch."""
        return self.mid_epoch.step if self.mid_epoch else 0


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything a checkpoint records besides its tensors. Build one with the first three fields at least."""

    classes: tuple[str, ...]  # one name per output
    mean: tuple[float, float, float]  # per-channel normalisation the model was trained with, in [0, 1] units
    std: tuple[float, float, float]
    arch: Arch | None = None  # None: not this package's AlexNet (save_checkpoint fills it from the model)
    run: RunState | None = None  # None: weights only
    metrics: dict[str, Any] | None = None  # the last epoch's row of the history
    config: dict[str, Any] | None = None  # the TrainConfig as JSON
    data_source: str | None = None
    world_size: int | None = None
    weights: dict[str, Any] | None = None  # exported files: the record of where the weights come from
    format_version: int = CHECKPOINT_FORMAT_VERSION
    package_version: str | None = None
    torch_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other keys, kept as they are

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in the file."""
        out: dict[str, Any] = dict(self.extra)
        out.update(classes=list(self.classes), mean=[float(v) for v in self.mean], std=[float(v) for v in self.std],
                   arch=self.arch.to_json() if self.arch else {}, format_version=self.format_version)
        optional = {"metrics": self.metrics, "config": self.config, "data_source": self.data_source,
                    "world_size": self.world_size, "weights": self.weights,
                    "package_version": self.package_version, "torch_version": self.torch_version}
        out.update({key: value for key, value in optional.items() if value is not None})
        if self.run is not None:
            run = self.run
            out.update(epoch=run.epoch, step=run.step, mid_epoch=run.mid_epoch.to_json() if run.mid_epoch else None,
                       best={"epoch": run.best_epoch, "test_acc": run.best_test_acc}, history=list(run.history),
                       scaler=run.scaler)
        return out

    @classmethod
    def from_json(cls, path: Path | str, obj: Any) -> "CheckpointMeta":
        """Check the stored object against the rules of the module's table and build the record.

        Raises:
            CheckpointError: one line naming ``path``, the field and the fix.
        """
        if not isinstance(obj, dict):
            raise invalid_meta(path, "cifar_alexnet", "is not a JSON object")
        version = _format_version(path, obj.get("format_version"))
        arch = _arch(path, obj.get("arch"))
        classes = _classes(path, obj.get("classes"), arch)
        mean, std = _channel_values(path, "mean", obj.get("mean")), _channel_values(path, "std", obj.get("std"))
        for key in ("metrics", "config", "weights"):
            if key in obj and not isinstance(obj[key], dict):
                raise invalid_meta(path, key, "is not an object")
        for key in ("data_source", "package_version", "torch_version"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise invalid_meta(path, key, "is not a string")
        if obj.get("world_size") is not None:
            _check_int(path, "world_size", obj["world_size"], 1, MAX_COUNTER)
        return cls(classes=classes, mean=mean, std=std, arch=arch, run=_run_state(path, obj),
                   metrics=obj.get("metrics"), config=obj.get("config"), data_source=obj.get("data_source"),
                   world_size=obj.get("world_size"), weights=obj.get("weights"), format_version=version,
                   package_version=obj.get("package_version"), torch_version=obj.get("torch_version"),
                   extra={k: v for k, v in obj.items() if k not in _KNOWN_KEYS})


# ---------------------------------------------------------------------------------------------
# The rules, field by field
# ---------------------------------------------------------------------------------------------


def is_int(value: Any) -> bool:
    """An int that is not a bool (JSON's true/false are no counts)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float."""
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _check_int(path: Path | str, name: str, value: Any, low: int, high: int) -> int:
    if not is_int(value) or not low <= value <= high:
        raise invalid_meta(path, name, f"is {json.dumps(value)[:40]}, not an integer in {low}..{high}")
    return value


def _format_version(path: Path | str, version: Any) -> int:
    if not is_int(version) or version < 1:
        raise invalid_meta(path, "format_version", f"is {version!r}, not a format number 1..{CHECKPOINT_FORMAT_VERSION}")
    if version > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} is newer than this package "
                              f"understands ({CHECKPOINT_FORMAT_VERSION}); upgrade cifar-alexnet")
    return version


def _arch(path: Path | str, arch: Any) -> Arch | None:
    if not isinstance(arch, dict):
        raise invalid_meta(path, "arch", "is missing or not an object (the AlexNet constructor arguments)")
    if not arch:
        return None
    if set(arch) != {"num_classes", "hidden", "dropout"}:
        raise invalid_meta(path, "arch", f"has keys {sorted(arch)[:6]}, expected exactly num_classes, hidden, dropout")
    _check_int(path, "arch.num_classes", arch["num_classes"], MIN_CLASSES, MAX_CLASSES)
    _check_int(path, "arch.hidden", arch["hidden"], 1, MAX_HIDDEN)
    if not is_number(arch["dropout"]) or not 0 <= arch["dropout"] < 1:
        raise invalid_meta(path, "arch.dropout", f"is {arch['dropout']!r}, not a probability in [0, 1)")
    return Arch(arch["num_classes"], arch["hidden"], float(arch["dropout"]))


def _classes(path: Path | str, classes: Any, arch: Arch | None) -> tuple[str, ...]:
    if not isinstance(classes, list) or not MIN_CLASSES <= len(classes) <= MAX_CLASSES:
        raise invalid_meta(path, "classes", f"is not a list of {MIN_CLASSES}..{MAX_CLASSES} class names")
    bad = [c for c in classes if not isinstance(c, str) or not c.strip() or len(c) > MAX_CLASS_NAME]
    if bad:
        raise invalid_meta(path, "classes", f"holds {str(bad[0])[:40]!r}, not a non-empty name of at most "
                                            f"{MAX_CLASS_NAME} characters")
    if len(set(classes)) != len(classes):
        raise invalid_meta(path, "classes", "names a class twice")
    if arch and len(classes) != arch.num_classes:
        raise invalid_meta(path, "classes", f"has {len(classes)} names for arch.num_classes={arch.num_classes}")
    return tuple(classes)


def _channel_values(path: Path | str, key: str, values: Any) -> tuple[float, float, float]:
    low_open = key == "std"
    if not (isinstance(values, list) and len(values) == 3 and all(is_number(v) for v in values)
            and all((v > 0 if low_open else v >= 0) and v <= 1.0 for v in values)):
        rule = "in (0, 1]" if low_open else "in [0, 1]"
        raise invalid_meta(path, key, f"is {str(values)[:60]}, not 3 finite per-channel values {rule}")
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def _run_state(path: Path | str, obj: Mapping[str, Any]) -> RunState | None:
    """``epoch``, ``step``, ``mid_epoch``, ``best``, ``history``, ``scaler``: what ``train --resume`` reads."""
    if "epoch" not in obj:
        for key in _RUN_KEYS:
            if key in obj and obj[key] is not None:
                raise invalid_meta(path, key, "is given without epoch (the number of completed epochs)")
        return None
    epoch = _check_int(path, "epoch", obj["epoch"], 0, MAX_COUNTER)
    step = _check_int(path, "step", obj.get("step", 0), 0, MAX_COUNTER)
    mid = _mid_epoch(path, obj.get("mid_epoch"))
    if mid is not None and mid.step != step:
        raise invalid_meta(path, "mid_epoch.step", f"is {mid.step}, but step is {step}")
    best = obj.get("best", {"epoch": 0, "test_acc": -1.0})
    if not isinstance(best, dict) or not is_int(best.get("epoch")) or not is_number(best.get("test_acc")):
        raise invalid_meta(path, "best", "is not {epoch: int, test_acc: number}")
    _check_int(path, "best.epoch", best["epoch"], 0, epoch)
    history = obj.get("history", [])
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise invalid_meta(path, "history", "is not a list of per-epoch objects")
    epochs = [row.get("epoch") for row in history]
    if epochs != list(range(1, len(history) + 1)) or len(history) > epoch:
        raise invalid_meta(path, "history", f"rows' epochs {str(epochs)[:60]} do not count 1, 2, ... up to "
                                            f"epoch={epoch}")
    scaler = obj.get("scaler")
    if scaler is not None and not isinstance(scaler, dict):
        raise invalid_meta(path, "scaler", "is neither null nor an object (GradScaler.state_dict())")
    return RunState(epoch=epoch, history=tuple(history), best_epoch=best["epoch"],
                    best_test_acc=float(best["test_acc"]), mid_epoch=mid, scaler=scaler)


def _mid_epoch(path: Path | str, mid: Any) -> MidEpoch | None:
    if mid is None:
        return None
    if not isinstance(mid, dict) or set(mid) != {"step", "loss_sum", "correct", "seen", "train_time_s"}:
        raise invalid_meta(path, "mid_epoch", "is neither null nor {step, loss_sum, correct, seen, train_time_s}")
    for key in ("step", "correct", "seen"):
        _check_int(path, f"mid_epoch.{key}", mid[key], 0, MAX_COUNTER * 1000)
    for key in ("loss_sum", "train_time_s"):
        if not is_number(mid[key]) or mid[key] < 0:
            raise invalid_meta(path, f"mid_epoch.{key}", f"is {mid[key]!r}, not a finite number >= 0")
    return MidEpoch(step=mid["step"], loss_sum=float(mid["loss_sum"]), correct=mid["correct"], seen=mid["seen"],
                    train_time_s=float(mid["train_time_s"]))
