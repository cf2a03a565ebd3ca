"""``cifar-alexnet export``: a trained model as one small file to share -- float16 weights and what they need.

A run's ``best.safetensors`` holds float32 weights, and ``last.safetensors`` the optimizer's
state too. To classify images nothing but the weights, the normalisation and the class names
is needed, and float16 weights -- half the bytes, under 30 MB for this network -- give the
same predictions up to rounding: float16 keeps about 3 significant digits, and BatchNorm
renormalises every layer's output (``tests/test_export.py`` compares the probabilities). A
weight beyond float16's range (65,504) is refused rather than written as infinity.

The exported file is a checkpoint like any other (:mod:`cifar_alexnet.checkpoint`), so
``predict``, ``evaluate`` and :func:`~cifar_alexnet.checkpoint.model_from_checkpoint` read it
as they are; loading casts the weights back to float32. Its metadata keeps the source's
normalisation statistics, class names, architecture, data source, epoch and configuration,
and adds ``exported_from`` (the source file) and ``weights``: the epoch the weights come from,
the run's number of epochs and the test accuracy the weights had then. Exported from
``best.safetensors``, that epoch was chosen on the test set and its accuracy is optimistic;
``last.safetensors`` of a finished run holds the final epoch's weights.

Command line::

    cifar-alexnet export runs/fast-0001/best.safetensors --out alexnet-cifar10-fp16.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

__all__ = ["EXPORT_DTYPE", "describe_weights", "export_weights", "add_arguments", "run"]

#: The dtype of exported floating-point tensors.
EXPORT_DTYPE = torch.float16

#: Metadata kept from the source checkpoint (the rest -- optimizer, random states, history --
#: is what resuming needs, not what classifying needs).
KEPT_META = ("mean", "std", "classes", "data_source", "epoch", "config", "metrics", "best")


def export_weights(source: str | Path, out: str | Path) -> dict:
    """Write ``source``'s model as float16 to ``out`` (atomically); return the metadata written.

    Raises:
        FileNotFoundError / CheckpointError: ``source`` is missing or unreadable.
        ValueError: a weight does not fit in float16 (its magnitude exceeds 65,504): the file
            would hold infinities.
    """
    from cifar_alexnet.checkpoint import model_from_checkpoint, resolve_checkpoint_path, save_checkpoint

    source = resolve_checkpoint_path(source)
    model, meta = model_from_checkpoint(source)
    model.to(EXPORT_DTYPE)  # parameters and float buffers; BatchNorm's integer counters stay int64
    overflow = [name for name, tensor in model.state_dict().items()
                if tensor.is_floating_point() and not tensor.isfinite().all()]  # finite before: checked on load
    if overflow:
        raise ValueError(f"{source}: tensor(s) {overflow[:4]} hold values beyond float16's range (65,504); "
                         "these weights cannot be exported as float16")
    exported = {key: meta[key] for key in KEPT_META if key in meta}
    exported["exported_from"] = str(source)
    metrics, config = meta.get("metrics") or {}, meta.get("config") or {}
    if "test_acc" in metrics:  # what these weights scored when they were saved
        exported["weights"] = {"epoch": meta.get("epoch"), "epochs_of_run": config.get("epochs"),
                               "test_acc": metrics["test_acc"], "tta_flip": bool(config.get("tta_flip", False))}
    save_checkpoint(out, model, meta=exported)
    return exported


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cifar-alexnet export``."""
    parser.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR",
                        help="a .safetensors checkpoint or a run directory (its best.safetensors)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="the file to write, conventionally *.safetensors (an existing file is refused)")


def run(args: argparse.Namespace) -> int:
    """``cifar-alexnet export``: returns the exit status (0 ok, 2 bad input)."""
    if args.out.exists():
        print(f"error: --out {args.out} already exists; choose another name or remove it first", file=sys.stderr)
        return 2
    try:
        meta = export_weights(args.checkpoint, args.out)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: --out {args.out}: cannot write it ({exc.strerror or exc})", file=sys.stderr)
        return 2
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1e6:.1f} MB, float16 weights){describe_weights(meta.get('weights'))}")
    return 0


def describe_weights(weights: dict | None) -> str:
    """``"; epoch 30 of 30 (final): test accuracy 89.33 % ..."``, or ``""`` without a record."""
    if not weights:
        return ""
    epoch, epochs = weights["epoch"], weights["epochs_of_run"]
    when = ("the run's final epoch" if epoch == epochs else
            f"epoch {epoch} of {epochs}, chosen as the best on the test set, so its accuracy is optimistic")
    return (f"; these weights: test accuracy {weights['test_acc']:.2f} %"
            f"{' with flip TTA' if weights['tta_flip'] else ''} ({when})")
