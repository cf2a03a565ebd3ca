"""Tiny synthetic data sets on disk, in the two layouts :func:`cifar_alexnet.data.cifar10.load_cifar10` reads.

* :func:`write_official_archive`: the official CIFAR-10 format -- a folder
  ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
  ``batches.meta``, each a pickled dict as Python 2's ``cPickle`` wrote them (protocol 2,
  byte strings as Python 2 ``str``, arrays through ``numpy.core.multiarray._reconstruct``),
  optionally packed as ``cifar-10-python.tar.gz``;
* :func:`write_image_folder`: ``train/<class>/NNNN.png|jpg`` and ``test/<class>/...``,
  optionally packed as a ``.tar.gz``.

And the raw bytes hostile-input tests start from: :func:`png_bytes` (a valid PNG of any
size, built without holding its pixels), :func:`tar_header_offsets` (where each member's
header sits in a tar) and :func:`regzip_keeping_trailer` (a gzip stream of other contents
that keeps the original CRC-32 and length, as a corruption of the deflate data leaves it).

Both return a :class:`SyntheticData`: usable wherever a path is (it implements
``os.PathLike``), and carrying the arrays a correct loader must return.

    data = write_official_archive(tmp_path / "data", n_train=50, n_test=10, seed=0)
    train, test = load_cifar10(data.root, verify=False)
    assert (train.images == data.train_images).all()
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from cifar_alexnet.data.arrays import CIFAR10_CLASSES

__all__ = [
    "SyntheticData",
    "write_official_archive",
    "write_official_batches",
    "write_image_folder",
    "python2_pickle",
    "hwc_to_official_rows",
    "tar_directory",
    "png_bytes",
    "tar_header_offsets",
    "regzip_keeping_trailer",
]


@dataclass(frozen=True)
class SyntheticData:
    """What a factory wrote, and what loading it must give back.

    Attributes:
        path: the thing to load: the ``.tar.gz``, or the folder (``cifar-10-batches-py/`` for
            an unpacked official archive, the image-folder root otherwise).
        root: the directory the factory wrote into (what ``--data`` would point at).
        train_images, test_images: ``(n, 32, 32, 3)`` uint8 in the order a loader returns them.
        train_labels, test_labels: ``(n,)`` int64.
        classes: the class names, label order.
    """

    path: Path
    root: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


# ---------------------------------------------------------------------------------------
# The official format
# ---------------------------------------------------------------------------------------


class _Python2Pickler(pickle._Pickler):
    """Pickle protocol 2 as Python 2's cPickle wrote it.

    Python 3 pickles ``bytes`` at protocol 2 through a call to ``_codecs.encode``; Python 2
    wrote its byte strings with the ``SHORT_BINSTRING``/``BINSTRING`` opcodes, which is what
    the official batches contain (and what ``pickle.load(..., encoding="latin1"|"bytes")``
    exists for). NumPy 2 names its array constructor ``numpy._core.multiarray._reconstruct``;
    the official files, written with NumPy 1, say ``numpy.core.multiarray``.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes | str) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str  # Python 2 had no separate text type in these files

    def save_global(self, obj, name=None):
        reconstruct = np.empty(0).__reduce__()[0]
        names = {id(reconstruct): ("numpy.core.multiarray", "_reconstruct"),
                 id(np.ndarray): ("numpy", "ndarray"), id(np.dtype): ("numpy", "dtype")}
        if id(obj) not in names:
            return super().save_global(obj, name)
        module, qualname = names[id(obj)]
        self.write(pickle.GLOBAL + module.encode() + b"\n" + qualname.encode() + b"\n")
        self.memoize(obj)


def python2_pickle(obj) -> bytes:
    """``obj`` pickled the way the official batches were (protocol 2, Python 2 strings)."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def hwc_to_official_rows(images: np.ndarray) -> np.ndarray:
    """``(n, 32, 32, 3)`` uint8 -> ``(n, 3072)``: per image the R plane, then G, then B, row-major."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), 3 * 32 * 32)


def tar_directory(source: Path, tarball: Path, arcname: str | None = None) -> Path:
    """Pack ``source`` (with its directory entries) as a gzipped tarball."""
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(source, arcname=arcname if arcname is not None else source.name)
    return tarball


def write_official_batches(root: str | os.PathLike, train_rows: np.ndarray, train_labels: Sequence[int],
                           test_rows: np.ndarray, test_labels: Sequence[int], *, as_tarball: bool = True,
                           label_names: Sequence[str] = CIFAR10_CLASSES) -> Path:
    """Write batches from raw official rows ``(n, 3072)`` (for tests that craft bytes directly).

    The training rows are split over the five ``data_batch_*`` files as evenly as possible.
    Labels are written as given (even out-of-range ones). Returns the tarball or the folder.
    """
    root = Path(root)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_labels = [int(v) for v in train_labels]
    bounds = np.linspace(0, len(train_rows), 6).round().astype(int)
    for i in range(5):
        lo, hi = bounds[i], bounds[i + 1]
        batch = {
            b"data": np.ascontiguousarray(train_rows[lo:hi], dtype=np.uint8),
            b"labels": train_labels[lo:hi],
            b"batch_label": f"training batch {i + 1} of 5".encode(),
            b"filenames": [f"synthetic_{k:06d}.png".encode() for k in range(lo, hi)],
        }
        (folder / f"data_batch_{i + 1}").write_bytes(python2_pickle(batch))
    test = {
        b"data": np.ascontiguousarray(test_rows, dtype=np.uint8),
        b"labels": [int(v) for v in test_labels],
        b"batch_label": b"testing batch 1 of 1",
        b"filenames": [f"synthetic_test_{k:06d}.png".encode() for k in range(len(test_rows))],
    }
    (folder / "test_batch").write_bytes(python2_pickle(test))
    meta = {b"num_cases_per_batch": int(bounds[1] - bounds[0]), b"label_names": [n.encode() for n in label_names],
            b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(python2_pickle(meta))
    (folder / "readme.html").write_text("<p>Synthetic CIFAR-10-format archive for tests.</p>\n")
    if not as_tarball:
        return folder
    tarball = tar_directory(folder, root / "cifar-10-python.tar.gz")
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    return tarball


def write_official_archive(root: str | os.PathLike, n_train: int = 50, n_test: int = 10, seed: int = 0,
                           as_tarball: bool = True) -> SyntheticData:
    """Random images and labels in the exact official CIFAR-10 layout, written under ``root``.

    Args:
        root: directory to write into (created). It will hold ``cifar-10-python.tar.gz``
            (``as_tarball=True``) or ``cifar-10-batches-py/`` -- ``load_cifar10(root,
            verify=False)`` reads either. (``verify=False``: the MD5s are not the official ones.)
        n_train: images over the five training batches; n_test: images in ``test_batch``.
        seed: for ``numpy.random.default_rng``. Labels cycle through the ten classes in a
            random order, so every class appears when ``n >= 10``.
    """
    rng = np.random.default_rng(seed)
    train_images = rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8)
    test_images = rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8)
    train_labels = rng.permutation(np.arange(n_train) % 10).astype(np.int64)
    test_labels = rng.permutation(np.arange(n_test) % 10).astype(np.int64)
    path = write_official_batches(root, hwc_to_official_rows(train_images), train_labels,
                                  hwc_to_official_rows(test_images), test_labels, as_tarball=as_tarball)
    return SyntheticData(path, Path(root), train_images, train_labels, test_images, test_labels, CIFAR10_CLASSES)


# ---------------------------------------------------------------------------------------
# Image folders
# ---------------------------------------------------------------------------------------


def _smooth_images(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 32, 32, 3)`` uint8 images with some structure (JPEG-friendly, unlike pure noise)."""
    coarse = rng.integers(0, 256, (n, 8, 8, 3)).astype(np.float64)
    images = coarse.repeat(4, axis=1).repeat(4, axis=2)  # (n, 32, 32, 3) blocks of 4x4
    images += rng.normal(0, 12, images.shape)
    return images.clip(0, 255).round().astype(np.uint8)


def write_image_folder(root: str | os.PathLike, n_per_class_train: int = 3, n_per_class_test: int = 2,
                       fmt: str = "png", as_tarball: bool = False, *, seed: int = 0,
                       classes: Sequence[str] = CIFAR10_CLASSES) -> SyntheticData:
    """Random 32x32 RGB images as ``train/<class>/NNNN.<fmt>`` and ``test/<class>/NNNN.<fmt>``.

    Args:
        root: directory to write into (created). With ``as_tarball=True`` it holds
            ``images.tar.gz`` (members ``train/...``, ``test/...``) and nothing else.
        n_per_class_train, n_per_class_test: images per class and split.
        fmt: ``"png"`` (lossless) or ``"jpg"`` (quality 90). For JPEG the expected arrays are
            the decoded files, so they are what a loader must return.
        as_tarball: pack the folder as ``root/images.tar.gz``.
        seed: for ``numpy.random.default_rng``.
        classes: class folder names; labels follow their sorted order.
    """
    from PIL import Image

    if fmt not in ("png", "jpg"):
        raise ValueError(f"write_image_folder: fmt must be 'png' or 'jpg', got {fmt!r}")
    root = Path(root)
    folder = root / "images" if as_tarball else root
    rng = np.random.default_rng(seed)
    sorted_classes = tuple(sorted(classes))
    expected = {}
    for split, per_class in (("train", n_per_class_train), ("test", n_per_class_test)):
        images, labels = [], []
        for label, name in enumerate(sorted_classes):
            (folder / split / name).mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(_smooth_images(rng, per_class)):
                path = folder / split / name / f"{i:04d}.{fmt}"
                Image.fromarray(image).save(path, **({"quality": 90} if fmt == "jpg" else {}))
                with Image.open(path) as written:
                    images.append(np.asarray(written.convert("RGB")))
                labels.append(label)
        expected[split] = (np.stack(images) if images else np.empty((0, 32, 32, 3), np.uint8),
                           np.array(labels, dtype=np.int64))
    path = folder
    if as_tarball:
        path = root / "images.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            for split in ("train", "test"):
                archive.add(folder / split, arcname=split)
        for file in sorted(folder.rglob("*"), reverse=True):
            file.unlink() if file.is_file() else file.rmdir()
        folder.rmdir()
    return SyntheticData(path, root, expected["train"][0], expected["train"][1], expected["test"][0],
                         expected["test"][1], sorted_classes)


# ---------------------------------------------------------------------------------------
# Raw bytes for hostile inputs
# ---------------------------------------------------------------------------------------


def png_bytes(width: int, height: int) -> bytes:
    """A valid all-black 8-bit RGB PNG of ``width`` x ``height``, compressed row by row.

    A 12000 x 12000 image (144 megapixels, 432 MB of pixels) comes out at about 420 KB and
    is built in a few seconds without ever holding its pixels.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter type 0, then R, G, B of every pixel
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits per sample, colour type 2: RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def tar_header_offsets(tar: bytes) -> list[int]:
    """Byte offsets of every member's header block in an uncompressed tar."""
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        return [member.offset for member in archive]


def regzip_keeping_trailer(original_gz: bytes, new_tar: bytes) -> bytes:
    """``new_tar`` gzipped, but with ``original_gz``'s trailer (CRC-32 and length of the original).

    What a corruption of the deflate data that still inflates looks like: every layer above
    gzip is well formed, and only the trailer says the inflated bytes are not the original.
    """
    return gzip.compress(new_tar, mtime=0)[:-8] + original_gz[-8:]
