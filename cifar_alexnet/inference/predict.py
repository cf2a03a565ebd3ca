"""Classify image files with a trained checkpoint and print the top-k classes with their probabilities.

Image size policy (decided here, once): the network takes 32x32 RGB images, the size of
CIFAR-10. An image of any other size is **refused** with a message that names the file, its
size and the fix, because silently shrinking a photo to 32x32 gives an input unlike anything
the model saw in training, and the answer would look more trustworthy than it is. Pass
``--resize`` to accept other sizes anyway: the image is centre-cropped to a square and
resized to 32x32 (bicubic).

Colour policy: every Pillow mode becomes 8-bit RGB by its real range (:func:`rgb_image`).
Grayscale is fine (a third of the training images were grayscale). 16-bit images (``I;16``,
a 16-bit grayscale PNG) are scaled from 0..65535 to 0..255 -- Pillow's own ``convert``
clips them at 255, which makes such a PNG almost white. Palettes, CMYK, YCbCr, LAB, HSV and the
alpha modes go through Pillow's ``convert("RGB")`` (transparency is dropped, as there). 32-bit
integer and float images (``I``, ``F``) carry no range at all and are refused with a message.

The probabilities are the softmax of the logits; for each image they sum to 1.

The command line: :mod:`cifar_alexnet.commands.predict`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from cifar_alexnet.errors import DataError
from cifar_alexnet.inference.evaluate import normalize_uint8_images
from cifar_alexnet.runtime.limits import MAX_PREDICT_PIXELS
from cifar_alexnet.runtime.paths import input_file

__all__ = ["IMAGE_SIZE", "SIXTEEN_BIT_MODES", "rgb_image", "load_image", "predict_probabilities", "top_k"]

#: Height and width the model takes.
IMAGE_SIZE = 32
#: Pillow's modes of one 16-bit channel: integers 0..65535.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def rgb_image(image, where: str | Path):
    """``image`` (a PIL image of any mode) as an 8-bit RGB PIL image, each mode by its real range.

    16-bit modes: ``round(v * 255 / 65535)``, so ``v = 257 * g`` (how 8 bits are widened to 16)
    gives back ``g`` exactly. ``I`` and ``F``: refused (no range). Every other mode: Pillow's
    ``convert("RGB")``, through ``RGBA`` for a palette with transparency and ``LA`` for ``La``.

    Raises:
        DataError: a 32-bit integer or float image.
    """
    from PIL import Image

    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.uint32)  # (H, W), 0..65535 whatever the byte order
        gray = ((values * 255 + 32767) // 65535).astype(np.uint8)
        return Image.fromarray(np.repeat(gray[..., None], 3, axis=2), "RGB")
    if image.mode in ("I", "F"):
        kind = "32-bit integers" if image.mode == "I" else "32-bit floats"
        raise DataError(f"{where}: mode {image.mode!r} ({kind}) has no fixed range, so its 8-bit colours are "
                        "unknown; convert it to an 8- or 16-bit image first")
    if image.mode == "La":  # premultiplied: Pillow converts it only to LA
        image = image.convert("LA")
    if image.mode == "P" and "transparency" in image.info:  # Pillow warns unless it goes through RGBA
        image = image.convert("RGBA")
    return image.convert("RGB")


def load_image(path: str | Path, *, resize: bool = False) -> np.ndarray:
    """Read one image file as uint8 ``(32, 32, 3)`` RGB.

    Args:
        path: any format PIL reads (PNG, JPEG, BMP, ...).
        resize: accept sizes other than 32x32 by centre-cropping to a square and resizing.

    Raises:
        MissingFileError: no such file.
        DataError: not a regular file, not an image, or not 32x32 while ``resize`` is False.
    """
    from PIL import Image, UnidentifiedImageError

    path = input_file(path, "image", DataError)  # "does not exist", or "not a regular file but a FIFO"
    try:
        # Pillow only warns (DecompressionBombWarning) when it opens an image of more than about
        # 89 megapixels; as an error it becomes the one-line refusal below, not a stray warning.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)  # reads the header only
        with image:
            width, height = image.size
            if width * height > MAX_PREDICT_PIXELS:
                raise DataError(f"{path}: {width}x{height} pixels is more than the {MAX_PREDICT_PIXELS:,} "
                                 "cifar-alexnet predict decodes; refused before decoding. Shrink it first.")
            image = rgb_image(image, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path}: refused before decoding, far too many pixels ({exc})") from None
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: not an image PIL can read ({exc})") from None
    if (width, height) != (IMAGE_SIZE, IMAGE_SIZE):
        if not resize:
            raise DataError(
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
