"""Shared by the examples' ``--smoke`` modes: a tiny real image folder and the device choice.

``--smoke`` runs an example end to end on the CPU in seconds, so the tests can run every
example (``tests/cli/test_examples.py``). The data of a smoke run are the real CIFAR-10 sample
images committed for the documentation (``docs/assets/cifar10_jpeg_samples.npz``, two
training images per class of the JPEG q75 copy), written out as a small image folder. A smoke
run proves that the example works, not that it learns anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "docs" / "assets" / "cifar10_jpeg_samples.npz"


def write_sample_image_folder(root: Path) -> Path:
    """Write the committed samples as ``root/train/<class>/*.png`` and ``root/test/<class>/*.png``.

    The same images serve as training and test split: enough for a smoke run. Returns ``root``.
    """
    import numpy as np
    from PIL import Image

    with np.load(SAMPLES) as z:
        images, labels, classes = z["images"], z["labels"], [str(c) for c in z["classes"]]
    for split in ("train", "test"):
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:04d}.png")  # PNG: lossless, decodes exactly
    return root


def pick_device(requested: str | None, smoke: bool) -> str:
    """``cpu`` for a smoke run; otherwise the requested device, or CUDA (and a clear exit without it)."""
    import torch

    if smoke:
        return requested or "cpu"
    if requested:
        return requested
    if not torch.cuda.is_available():
        sys.exit("This example runs on a CUDA GPU by default and none is available here. "
                 "Run it with --smoke (a seconds-long CPU check) or choose --device cpu explicitly.")
    return "cuda"
