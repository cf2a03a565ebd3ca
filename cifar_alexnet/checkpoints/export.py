"""``cifar-alexnet export``: a trained model as one small file to share -- float16 weights and what they need.

A run's ``best.safetensors`` holds float32 weights, and ``last.safetensors`` the optimizer's
state too. To classify images nothing but the weights, the normalisation and the class names
is needed, and float16 weights -- half the bytes, under 30 MB for this network -- give the
same predictions up to rounding: float16 keeps about 3 significant digits, and BatchNorm
renormalises every layer's output (``tests/checkpoints/test_export.py`` compares the probabilities). A
weight beyond float16's range (65,504) is refused rather than written as infinity.

The exported file is a checkpoint like any other (:mod:`cifar_alexnet.checkpoints.format`), so
``predict``, ``evaluate`` and :func:`~cifar_alexnet.checkpoints.format.model_from_checkpoint` read it
as they are; loading casts the weights back to float32. Its metadata keeps the source's
normalisation statistics, class names, architecture, data source and configuration, and adds
``exported_from`` (the source file) and ``weights``: the epoch the weights come from,
the run's number of epochs and the test accuracy the weights had then. Exported from
``best.safetensors``, that epoch was chosen on the test set and its accuracy is optimistic;
``last.safetensors`` of a finished run holds the final epoch's weights.

The command line: :mod:`cifar_alexnet.commands.export`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from cifar_alexnet.checkpoints.format import model_from_checkpoint, resolve_checkpoint_path, save_checkpoint
from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.errors import CheckpointError

__all__ = ["EXPORT_DTYPE", "describe_weights", "export_weights"]

#: The dtype of exported floating-point tensors.
EXPORT_DTYPE = torch.float16

def export_weights(source: str | Path, out: str | Path) -> CheckpointMeta:
    """Write ``source``'s model as float16 to ``out`` (atomically); return the metadata written.

    The run state (history, optimizer, random states) is left out: it is what resuming needs,
    not what classifying needs.

    Raises:
        MissingFileError / CheckpointError: ``source`` is missing or unreadable, or a weight does
            not fit in float16 (its magnitude exceeds 65,504): the file would hold infinities.
    """
    source = resolve_checkpoint_path(source)
    model, meta = model_from_checkpoint(source)
    model.to(EXPORT_DTYPE)  # parameters and float buffers; BatchNorm's integer counters stay int64
    overflow = [name for name, tensor in model.state_dict().items()
                if tensor.is_floating_point() and not tensor.isfinite().all()]  # finite before: checked on load
    if overflow:
        raise CheckpointError(f"{source}: tensor(s) {overflow[:4]} hold values beyond float16's range (65,504); "
                              "these weights cannot be exported as float16")
    weights = meta.weights
    config = meta.config or {}
    if meta.run is not None and meta.metrics and "test_acc" in meta.metrics:  # what they scored when saved
        weights = {"epoch": meta.run.epoch, "epochs_of_run": config.get("epochs"),
                   "test_acc": meta.metrics["test_acc"], "tta_flip": bool(config.get("tta_flip", False))}
    exported = replace(meta, run=None, metrics=None, weights=weights,
                       extra={**meta.extra, "exported_from": str(source)})
    save_checkpoint(out, model, meta=exported)
    return exported


def describe_weights(weights: dict | None) -> str:
    """``"; epoch 30 of 30 (final): test accuracy 89.33 % ..."``, or ``""`` without a record."""
    if not weights:
        return ""
    epoch, epochs = weights["epoch"], weights["epochs_of_run"]
    when = ("the run's final epoch" if epoch == epochs else
            f"epoch {epoch} of {epochs}, chosen as the best on the test set, so its accuracy is optimistic")
    return (f"; these weights: test accuracy {weights['test_acc']:.2f} %"
            f"{' with flip TTA' if weights['tta_flip'] else ''} ({when})")
