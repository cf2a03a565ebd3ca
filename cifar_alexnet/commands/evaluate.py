"""``cifar-alexnet evaluate``: a checkpoint's test accuracy, per-class accuracy and confusion matrix.

The numbers come from :func:`cifar_alexnet.inference.evaluate.evaluate_model` (its
conventions: rows of the confusion matrix are true classes, columns predicted ones).

Command line::

    cifar-alexnet evaluate runs/fast-0001 --data ~/data/cifar10 --out confusion.png
    cifar-alexnet evaluate alexnet_sukjoon.pth --data ~/data/cifar10 --limit-test 1000 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cifar_alexnet.checkpoints.format import model_from_checkpoint
from cifar_alexnet.data.cifar10 import class_balanced_subset, load_cifar10
from cifar_alexnet.errors import DataError, OptionsError
from cifar_alexnet.inference.evaluate import EvalResult, evaluate_model
from cifar_alexnet.runtime.atomic import atomic_path
from cifar_alexnet.runtime.device import select_device
from cifar_alexnet.runtime.limits import count_problem, subset_size_problem
from cifar_alexnet.runtime.paths import output_file
from cifar_alexnet.weights import shipped_checkpoint

__all__ = ["format_report", "plot_confusion_matrix", "add_arguments", "run"]


def format_report(result: EvalResult, title: str = "") -> str:
    """The text report: overall numbers, per-class accuracy and the confusion matrix with class names."""
    width = max(6, max(len(c) for c in result.classes))
    lines = []
    if title:
        lines += [title, "=" * len(title)]
    lines.append(f"images: {result.count}   accuracy: {100 * result.accuracy:.2f} %   "
                 f"loss: {result.loss:.4f}")
    lines.append("")
    lines.append(f"{'class':<{width}}  {'images':>6}  {'correct':>7}  {'accuracy':>8}")
    totals = result.confusion.sum(axis=1)
    for name, total, correct, acc in zip(result.classes, totals, np.diag(result.confusion),
                                         result.per_class_accuracy):
        acc_text = "-" if np.isnan(acc) else f"{100 * acc:.2f} %"
        lines.append(f"{name:<{width}}  {total:>6}  {correct:>7}  {acc_text:>8}")
    lines.append("")
    lines.append("confusion matrix (rows: true class, columns: predicted class)")
    col = max(6, len(str(result.confusion.max())) + 1)  # 5 letters: "horse", "truck", "airpl"
    short = [c[:col - 1] for c in result.classes]
    lines.append(" " * width + "".join(f"{s:>{col}}" for s in short))
    for name, row in zip(result.classes, result.confusion):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>{col}}" for v in row))
    return "\n".join(lines)


def plot_confusion_matrix(result: EvalResult, path: str | Path, *, title: str = "") -> Path:
    """Write the confusion matrix as a PNG heat map (row-normalised colours, counts as text).

    Uses matplotlib's object-oriented API with the Agg canvas, so it works without a display
    and does not touch pyplot's global state. Written atomically.
    """
    from matplotlib.figure import Figure

    matrix = result.confusion
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.nan_to_num(matrix / matrix.sum(axis=1, keepdims=True))
    n = len(result.classes)
    fig = Figure(figsize=(1.0 + 0.7 * n, 1.0 + 0.6 * n), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    ax.set_xticks(range(n), result.classes, rotation=45, ha="right")
    ax.set_yticks(range(n), result.classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or f"accuracy {100 * result.accuracy:.2f} % on {result.count} images")
    if n <= 20:
        for t in range(n):
            for p in range(n):
                ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=7,
                        color="white" if fractions[t, p] > 0.5 else "black")
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


# ------------------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cifar-alexnet evaluate``."""
    parser.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR", nargs="?", default=None,
                        help="a .safetensors checkpoint, a run directory (uses best.safetensors), or the "
                             "original notebook's .pth state_dict; none: the weights that ship with the package")
    parser.add_argument("--data", default=None,
                        help="CIFAR-10 location, as for `cifar-alexnet train --data`; None: $CIFAR_ALEXNET_DATA or ./data")
    parser.add_argument("--download", action="store_true", help="download the official archive if missing")
    parser.add_argument("--no-verify", action="store_true",
                        help="read an archive in the official format without comparing its MD5s with the official "
                             "ones (for home-made archives; default: verify)")
    parser.add_argument("--cache-dir", default=None, help="cache for decoded image folders; None: "
                        "$CIFAR_ALEXNET_CACHE or ~/.cache/cifar-alexnet")
    parser.add_argument("--limit-test", type=int, default=None, metavar="N",
                        help="evaluate a class-balanced subset of N test images, N a multiple of the number "
                             "of classes (quick checks)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ...; None: cuda if available")
    parser.add_argument("--tta-flip", action="store_true", help="average each image's and its mirror's logits")
    parser.add_argument("--out", type=Path, default=None, metavar="PNG",
                        help="write the confusion matrix as a PNG here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of the text report")


def run(args: argparse.Namespace) -> int:
    """``cifar-alexnet evaluate``: print the report; returns 0 (errors are raised for :mod:`cifar_alexnet.cli`)."""
    problems = [p for p in (count_problem("--batch-size", args.batch_size, 1),
                            subset_size_problem("--limit-test", args.limit_test)) if p]
    if problems:  # the rules train applies to the same options
        raise OptionsError("; ".join(problems))
    if args.out is not None:
        output_file(args.out, "--out")  # refused before the evaluation, not after it
    device = select_device(args.device)
    if args.checkpoint is None:
        args.checkpoint, note = shipped_checkpoint()
        print(note, file=sys.stderr)
    model, meta = model_from_checkpoint(args.checkpoint, map_location=device)
    _, test = load_cifar10(args.data, download=args.download, cache_dir=args.cache_dir, verify=not args.no_verify)
    if tuple(test.classes) != meta.classes:
        raise DataError(f"the checkpoint's classes {meta.classes} differ from the data's {tuple(test.classes)}")
    if args.limit_test is not None:  # also when it asks for more images than there are: refused, not ignored
        test = class_balanced_subset(test, args.limit_test, seed=0, option="--limit-test")
    result = evaluate_model(model, (test.images, test.labels), classes=meta.classes, batch_size=args.batch_size,
                            mean=meta.mean, std=meta.std, tta_flip=args.tta_flip)
    title = f"{args.checkpoint} on {test.source} test set" + (" (flip TTA)" if args.tta_flip else "")
    if args.json:
        print(json.dumps({"checkpoint": str(args.checkpoint), "data": test.source, "tta_flip": args.tta_flip,
                          "epoch": meta.run.epoch if meta.run else None, **result.to_dict()}, indent=2))
    else:
        print(format_report(result, title=title))
    if args.out is not None:  # after the report, so a failed write cannot lose the evaluation
        plot_confusion_matrix(result, args.out, title=f"{Path(str(args.checkpoint)).name}: "
                                                      f"{100 * result.accuracy:.2f} % ({result.count} images)")
        if not args.json:
            print(f"\nconfusion matrix written to {args.out}")
    return 0

