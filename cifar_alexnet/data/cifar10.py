"""CIFAR-10 on disk -> uint8 arrays in memory.

:func:`load_cifar10` looks at a path and hands it to the reader of its format (the official
archive or an image folder); :func:`channel_stats` gives the per-channel mean and standard
deviation used for normalisation; :func:`class_balanced_subset` draws a smaller set with the
same number of images per class; :func:`default_data_dir` is where data is looked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cifar_alexnet.data.arrays import ArrayDataset
from cifar_alexnet.data.image_folder import load_image_folder
from cifar_alexnet.data.official_archive import (OFFICIAL_ARCHIVE_NAME, OFFICIAL_FOLDER, download_official_archive,
                                                 load_official_archive)
from cifar_alexnet.errors import DataError, OptionsError
from cifar_alexnet.runtime.paths import file_kind

__all__ = ["load_cifar10", "default_data_dir", "channel_stats", "class_balanced_subset"]


def default_data_dir() -> Path:
    """``$CIFAR_ALEXNET_DATA`` if set, else ``./data`` (the original notebook's ``root``)."""
    return Path(os.environ.get("CIFAR_ALEXNET_DATA", "data"))


# ---------------------------------------------------------------------------------------
# One entry point
# ---------------------------------------------------------------------------------------


def _is_tarball(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith((".tar.gz", ".tgz", ".tar"))


def load_cifar10(data: str | os.PathLike | None = None, *, download: bool = False,
                 cache_dir: str | os.PathLike | None = None,
                 verify: bool = True) -> tuple[ArrayDataset, ArrayDataset]:
    """Load CIFAR-10 (or an image folder like it) as ``(train, test)`` uint8 arrays.

    ``data`` may be, in the order they are looked for:

    * ``None``: :func:`default_data_dir` (``$CIFAR_ALEXNET_DATA`` or ``./data``), read as a directory;
    * a directory holding ``cifar-10-batches-py/`` (preferred) or ``cifar-10-python.tar.gz``:
      the official archive, see :func:`load_official_archive`;
    * the ``cifar-10-python.tar.gz`` file or the ``cifar-10-batches-py`` folder itself;
    * a directory with ``train/`` and ``test/`` class folders, or any other ``.tar.gz``/``.tgz``/
      ``.tar``: an image folder, see :func:`load_image_folder` (decoded once, cached).

    Args:
        data: see above.
        download: if no data set is found in the directory, download the official archive
            into it (torchvision's ``download_url``, MD5-checked).
        cache_dir: cache for decoded image folders (default :func:`default_cache_dir`).
        verify: check the official archive's MD5s (see :func:`load_official_archive`).

    Raises:
        DataError: nothing usable at ``data``, or the data is corrupt; the message names the
            path and the fix.
    """
    path = Path(data) if data is not None else default_data_dir()
    if path.is_file():
        if path.name == OFFICIAL_ARCHIVE_NAME:
            return load_official_archive(path, verify=verify)
        if _is_tarball(path):
            return load_image_folder(path, cache_dir=cache_dir)
        raise DataError(
            f"{path}: not a data set (expected {OFFICIAL_ARCHIVE_NAME}, an image-folder .tar.gz, or a directory)."
        )
    if path.exists() and not path.is_dir():  # a FIFO, a device, a socket: nothing to read a data set from
        raise DataError(f"{path}: not a regular file or a folder but {file_kind(os.stat(path).st_mode)}; pass a "
                        f"folder, {OFFICIAL_ARCHIVE_NAME} or an image-folder .tar.gz")
    if path.name == OFFICIAL_FOLDER and path.is_dir():
        return load_official_archive(path, verify=verify)
    if path.is_dir():
        if (path / OFFICIAL_FOLDER).is_dir():
            return load_official_archive(path / OFFICIAL_FOLDER, verify=verify)
        if (path / OFFICIAL_ARCHIVE_NAME).is_file():
            return load_official_archive(path / OFFICIAL_ARCHIVE_NAME, verify=verify)
        if (path / "train").is_dir() or (path / "test").is_dir() or any(
            (sub / "train").is_dir() for sub in path.iterdir() if sub.is_dir()
        ):
            return load_image_folder(path, cache_dir=cache_dir)
    if download:
        return load_official_archive(download_official_archive(path), verify=verify)
    raise DataError(
        f"{path}: no CIFAR-10 data found. Expected a directory holding {OFFICIAL_FOLDER}/ or {OFFICIAL_ARCHIVE_NAME}, "
        "or an image folder train/<class>/, test/<class>/ (directory or .tar.gz). Fix: pass --download to fetch "
        f"the official archive, or --data DIR pointing at one of these."
    )


# ---------------------------------------------------------------------------------------
# Statistics and subsets
# ---------------------------------------------------------------------------------------


def channel_stats(images: np.ndarray | ArrayDataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population standard deviation, in ``[0, 1]`` units.

    What the original computes as ``np.mean(x[..., c]) / 255`` and ``np.std(x[..., c]) / 255``,
    but exactly: a uint8 channel takes only 256 values, so its sum and sum of squares follow
    from a histogram, in integer arithmetic without rounding; only the final division is
    floating point. Memory stays small (the original's ``np.std`` makes a float64 copy of the
    whole channel, 400 MB for the training set).

    Args:
        images: ``(N, H, W, 3)`` uint8, or an :class:`ArrayDataset`.

    Returns:
        ``(mean, std)``, each float64 of shape ``(3,)``.
    """
    if isinstance(images, ArrayDataset):
        images = images.images
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            "channel_stats: expected uint8 images of shape (N, H, W, 3); got "
            f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', '')}"
        )
    if images.shape[0] == 0:
        raise ValueError("channel_stats: no images (N = 0); the mean of an empty set is undefined")
    flat = images.reshape(-1, 3)  # (N*H*W, 3): one row per pixel
    counts = np.zeros((3, 256), dtype=np.int64)
    for start in range(0, flat.shape[0], 1 << 22):  # chunks keep bincount's int64 copy small
        chunk = flat[start:start + (1 << 22)]
        for c in range(3):
            counts[c] += np.bincount(chunk[:, c], minlength=256)
    values = np.arange(256)
    mean, std = np.empty(3), np.empty(3)
    for c in range(3):
        n = int(counts[c].sum())
        s1 = int((counts[c] * values).sum())  # exact integer sum of pixel values
        s2 = int((counts[c] * values * values).sum())  # exact integer sum of squares
        mean[c] = s1 / (n * 255)
        # population variance in 255^2 units = (n*s2 - s1^2) / n^2, exact in Python integers
        std[c] = np.sqrt((n * s2 - s1 * s1) / (n * n)) / 255
    return mean, std


def class_balanced_subset(ds: ArrayDataset, n: int, seed: int = 0, option: str = "n") -> ArrayDataset:
    """A random subset with ``n / len(classes)`` images of every class.

    Images are drawn without replacement with ``numpy.random.default_rng(seed)`` and kept in
    their original order. ``option`` names ``n`` in the messages (``"--limit-test"``).

    Raises:
        OptionsError: ``n`` is not a positive multiple of the number of classes, or some class
            has fewer images than ``n / len(classes)`` (the message names it).
    """
    k = len(ds.classes)
    if n <= 0 or n % k:
        raise OptionsError(
            f"{option} {n}: must be a positive multiple of the number of classes ({k}) so every "
            f"class gets the same count; try {option} {max(k, n - n % k)}"
        )
    per_class = n // k
    counts = ds.class_counts()
    short = [(ds.classes[c], int(counts[c])) for c in range(k) if counts[c] < per_class]
    if short:
        raise OptionsError(
            f"{option} {n}: needs {per_class} images per class but "
            + ", ".join(f"{name!r} has {count}" for name, count in short)
            + f"; the largest that can be met is {option} {k * int(counts.min())}"
        )
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(ds.labels == c), size=per_class, replace=False) for c in range(k)]
    index = np.sort(np.concatenate(chosen))
    return ArrayDataset(ds.images[index], ds.labels[index], ds.classes,
                        f"{ds.source}, class-balanced subset of {n} (seed {seed})")

