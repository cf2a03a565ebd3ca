"""Classify image files with a trained checkpoint and print the top-k classes with their probabilities.

Image size policy (decided here, once): the network takes 32x32 RGB images, the size of
CIFAR-10. An image of any other size is **refused** with a message that names the file, its
size and the fix, because silently shrinking a photo to 32x32 gives an input unlike anything
the model saw in training, and the answer would look more trustworthy than it is. Pass
``--resize`` to accept other sizes anyway: the image is centre-cropped to a square and
resized to 32x32 (bicubic). Any PIL colour mode is converted to RGB (grayscale is fine: a
third of the training images were grayscale; transparency is dropped).

The probabilities are the softmax of the logits; for each image they sum to 1.

Command line (``cifar-alexnet predict``)::

    cifar-alexnet predict runs/fast-0001 cat.png ship.jpg --top-k 3
    cifar-alexnet predict best.safetensors photo.jpg --resize --json
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["IMAGE_SIZE", "load_image", "predict_probabilities", "top_k", "add_arguments", "run"]

#: Height and width the model takes.
IMAGE_SIZE = 32

#: Images read and classified at a time by ``cifar-alexnet predict``.
BATCH = 256


def load_image(path: str | Path, *, resize: bool = False) -> np.ndarray:
    """Read one image file as uint8 ``(32, 32, 3)`` RGB.

    Args:
        path: any format PIL reads (PNG, JPEG, BMP, ...).
        resize: accept sizes other than 32x32 by centre-cropping to a square and resizing.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not an image, or it is not 32x32 and ``resize`` is False.
    """
    from PIL import Image, UnidentifiedImageError

    from cifar_alexnet.limits import MAX_PREDICT_PIXELS

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        # Pillow only warns (DecompressionBombWarning) when it opens an image of more than about
        # 89 megapixels; as an error it becomes the one-line refusal below, not a stray warning.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)  # reads the header only
        with image:
            width, height = image.size
            if width * height > MAX_PREDICT_PIXELS:
                raise ValueError(f"{path}: {width}x{height} pixels is more than the {MAX_PREDICT_PIXELS:,} "
                                 "cifar-alexnet predict decodes; refused before decoding. Shrink it first.")
            image = image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"{path}: refused before decoding, far too many pixels ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: not an image PIL can read ({exc})") from None
    if (width, height) != (IMAGE_SIZE, IMAGE_SIZE):
        if not resize:
            raise ValueError(
                f"{path}: the model takes {IMAGE_SIZE}x{IMAGE_SIZE} RGB images (CIFAR-10 size), this one is "
                f"{width}x{height}. Resize it yourself, or pass --resize (resize=True) to centre-crop it to a "
                f"square and shrink it to {IMAGE_SIZE}x{IMAGE_SIZE}; expect less reliable answers for photos "
                "that do not look like CIFAR-10 images.")
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((IMAGE_SIZE, IMAGE_SIZE),
                                                                        Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)  # (32, 32, 3) HWC


@torch.no_grad()
def predict_probabilities(model: nn.Module, images: np.ndarray, mean: Sequence[float],
                          std: Sequence[float]) -> np.ndarray:
    """Class probabilities for uint8 images.

    Args:
        model: an eval-mode classifier on any device.
        images: uint8 ``(N, 32, 32, 3)``.
        mean, std: the training normalisation (checkpoint metadata), [0, 1] units.

    Returns:
        float64 ``(N, C)``, each row summing to 1.
    """
    from cifar_alexnet.evaluate import normalize_uint8_images

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        x = normalize_uint8_images(images, mean, std).to(device)  # (N, 3, 32, 32)
        logits = model(x).double()  # (N, C)
    finally:
        model.train(was_training)
    return torch.softmax(logits, dim=1).cpu().numpy()


def top_k(probabilities: np.ndarray, classes: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """For each row of ``probabilities`` ``(N, C)``: the ``k`` most probable ``(class, probability)``, best first."""
    k = max(1, min(k, probabilities.shape[1]))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]  # (N, k)
    return [[(classes[j], float(row[j])) for j in idx] for row, idx in zip(probabilities, order)]


# ------------------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cifar-alexnet predict``."""
    parser.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR",
                        help="a .safetensors checkpoint, a run directory, or the original notebook's .pth")
    parser.add_argument("images", metavar="IMAGE", nargs="+", type=Path, help="image files, 32x32 RGB")
    parser.add_argument("--top-k", type=int, default=3, help="how many classes to list per image")
    parser.add_argument("--resize", action="store_true",
                        help="accept images of other sizes: centre-crop to a square and resize to 32x32")
    parser.add_argument("--device", default=None, help="cpu, cuda, ...; None: cuda if available")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    """``cifar-alexnet predict``: returns the exit status (0 ok, 2 bad input).

    Images are read and classified :data:`BATCH` at a time, so memory does not grow with the
    number of files. A file that cannot be used gets one ``error:`` line and the others are
    still classified; the exit status is then 2.
    """
    from cifar_alexnet.checkpoint import model_from_checkpoint
    from cifar_alexnet.runtime.device import select_device

    if args.top_k < 1:
        print("error: --top-k must be at least 1", file=sys.stderr)
        return 2
    try:
        device = select_device(args.device)
        model, meta = model_from_checkpoint(args.checkpoint, map_location=device)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records, failed = [], 0  # records: the JSON output, one per image in the order given
    for start in range(0, len(args.images), BATCH):
        batch = args.images[start:start + BATCH]
        images, errors = [], {}  # errors: position in batch -> message
        for i, path in enumerate(batch):
            try:
                images.append(load_image(path, resize=args.resize))  # (32, 32, 3)
            except (ValueError, FileNotFoundError) as exc:
                errors[i] = str(exc)
                print(f"error: {exc}", file=sys.stderr)
        failed += len(errors)
        rankings = iter(top_k(predict_probabilities(model, np.stack(images), meta["mean"], meta["std"]),
                              meta["classes"], args.top_k) if images else [])
        for i, path in enumerate(batch):
            if i in errors:
                records.append({"image": str(path), "error": errors[i]})
                continue
            ranking = next(rankings)
            records.append({"image": str(path), "top_k": [{"class": c, "probability": pr} for c, pr in ranking]})
            if not args.json:
                print(f"{path}: " + ", ".join(f"{c} {100 * pr:.1f} %" for c, pr in ranking), flush=True)
    if args.json:
        print(json.dumps(records, indent=2))  # the JSON holds a few lines per image, not the images
    if failed:
        print(f"error: {failed} of {len(args.images)} image(s) could not be classified (see above)", file=sys.stderr)
        return 2
    return 0
