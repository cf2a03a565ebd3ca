"""``cifar-alexnet predict``: the top-k classes of image files, with their probabilities.

Reading and classifying: :mod:`cifar_alexnet.inference.predict` (its image-size policy:
32x32 only, unless ``--resize``).

Command line::

    cifar-alexnet predict docs/assets/samples/cat.png       # the weights that ship with the package
    cifar-alexnet predict runs/fast-0001 cat.png ship.jpg --top-k 3
    cifar-alexnet predict best.safetensors photo.jpg --resize --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cifar_alexnet.checkpoints.format import model_from_checkpoint
from cifar_alexnet.errors import CifarAlexnetError, OptionsError
from cifar_alexnet.inference.predict import load_image, predict_probabilities, top_k
from cifar_alexnet.runtime.device import select_device
from cifar_alexnet.runtime.limits import count_problem
from cifar_alexnet.weights import shipped_checkpoint

__all__ = ["BATCH", "CHECKPOINT_SUFFIXES", "add_arguments", "run", "split_checkpoint"]

#: Images read and classified at a time.
BATCH = 256
#: File endings of checkpoints, which predict's first argument may be.
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cifar-alexnet predict``."""
    parser.usage = "%(prog)s [-h] [--top-k TOP_K] [--resize] [--device DEVICE] [--json] [CHECKPOINT] IMAGE [IMAGE ...]"
    parser.add_argument("paths", metavar="[CHECKPOINT] IMAGE", nargs="+", type=Path,
                        help="image files, 32x32 RGB; first, optionally, a checkpoint: a .safetensors or .pth file, "
                             "or a run directory (without one: the weights that ship with the package)")
    parser.add_argument("--top-k", type=int, default=3, help="how many classes to list per image")
    parser.add_argument("--resize", action="store_true",
                        help="accept images of other sizes: centre-crop to a square and resize to 32x32")
    parser.add_argument("--device", default=None, help="cpu, cuda, ...; None: cuda if available")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    """``cifar-alexnet predict``: returns the exit status (0 ok, 2 when an image could not be classified).

    Images are read and classified :data:`BATCH` at a time, so memory does not grow with the
    number of files. A file that cannot be used gets one ``error:`` line and the others are
    still classified; the exit status is then 2.
    """
    if problem := count_problem("--top-k", args.top_k, 1):
        raise OptionsError(problem)
    checkpoint, args.images = split_checkpoint(args.paths)
    if checkpoint is None:
        checkpoint, note = shipped_checkpoint()
        print(note, file=sys.stderr)
    model, meta = model_from_checkpoint(checkpoint, map_location=select_device(args.device))
    records = []  # the JSON output, one per image in the order given
    for start in range(0, len(args.images), BATCH):
        for record in _classify(model, meta, args.images[start:start + BATCH], args.resize, args.top_k):
            records.append(record)
            if "error" in record:
                print(f"error: {record['error']}", file=sys.stderr)
            elif not args.json:
                print(f"{record['image']}: " + ", ".join(f"{c['class']} {100 * c['probability']:.1f} %"
                                                         for c in record["top_k"]), flush=True)
    if args.json:
        print(json.dumps(records, indent=2))  # the JSON holds a few lines per image, not the images
    failed = sum("error" in record for record in records)
    if failed:
        print(f"error: {failed} of {len(args.images)} image(s) could not be classified (see above)", file=sys.stderr)
        return 2
    return 0


def split_checkpoint(paths: list[Path]) -> tuple[Path | None, list[Path]]:
    """``(checkpoint or None, images)``: the first path is a checkpoint if it is a run directory or a
    ``.safetensors``/``.pth`` file (an image is never either)."""
    first = paths[0]
    if first.is_dir() or first.suffix.lower() in CHECKPOINT_SUFFIXES:
        if len(paths) == 1:
            raise OptionsError(f"{first} is a checkpoint; name the image files to classify after it")
        return first, paths[1:]
    return None, paths


def _classify(model, meta, paths: list[Path], resize: bool, k: int) -> list[dict]:
    """One record per path: ``{"image", "top_k": [{"class", "probability"}, ...]}`` or ``{"image", "error"}``."""
    images, errors = [], {}  # errors: position in paths -> message
    for i, path in enumerate(paths):
        try:
            images.append(load_image(path, resize=resize))  # (32, 32, 3)
        except CifarAlexnetError as exc:
            errors[i] = str(exc)
    rankings = iter(top_k(predict_probabilities(model, np.stack(images), meta.mean, meta.std), meta.classes, k)
                    if images else [])
    return [{"image": str(path), "error": errors[i]} if i in errors else
            {"image": str(path), "top_k": [{"class": c, "probability": p} for c, p in next(rankings)]}
            for i, path in enumerate(paths)]
