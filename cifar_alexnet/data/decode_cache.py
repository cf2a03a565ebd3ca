"""The decode cache: an image folder decoded once, kept as one uint8 ``.npz``.

Decoding every PNG/JPEG again on every run would be wasted work: the pixels never change.
:func:`cifar_alexnet.data.image_folder.load_image_folder` therefore decodes an image folder once
and stores the result here; later loads read the arrays back.

The format: one uncompressed NumPy ``.npz`` (a zip of ``.npy`` files) with the keys

* ``train_images``, ``test_images``: ``uint8`` ``(N, 32, 32, 3)``;
* ``train_labels``, ``test_labels``: ``int64`` ``(N,)``;
* ``classes``: the class names (a NumPy string array); ``source``: the human label;
* ``format_version``: :data:`CACHE_FORMAT_VERSION`; a cache of another version is ignored
  and rebuilt.

Only plain arrays are stored, so it is read with ``allow_pickle=False``.

Where and under which name (see :func:`cache_file_for`)::

    <cache dir>/<input name up to its first dot>-<first 16 hex digits of a key>-v<format version>.npz

The key is the archive's SHA-256 for a tarball (a content key: it survives moves and
copies), and for an unpacked folder a hash of every listed image file's relative path, size
and modification time, so any change to the input gives a new name and a fresh decode. The
cache directory is :func:`default_cache_dir` unless one is passed. A cache is written
atomically (an interrupted write leaves no file); one that cannot be read, for whatever
reason, is treated as absent, decoded again and replaced. Each member of the ``.npz`` carries
the zip format's CRC-32, checked as it is read, so a damaged cache is never read as data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from cifar_alexnet.data.arrays import ArrayDataset
from cifar_alexnet.runtime.atomic import atomic_path

__all__ = [
    "CACHE_FORMAT_VERSION",
    "default_cache_dir",
    "sha256_file",
    "folder_fingerprint",
    "cache_file_for",
    "write_cache",
    "read_cache",
]

#: Version of the ``.npz`` layout; part of every cache file's name and stored inside it.
CACHE_FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$CIFAR_ALEXNET_CACHE`` if set, else ``~/.cache/cifar-alexnet``."""
    env = os.environ.get("CIFAR_ALEXNET_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cifar-alexnet"


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_fingerprint(root: Path, files: Iterable[Path]) -> str:
    """A key that changes when any of ``files`` (the image files listed under ``root``) is added, removed or modified."""
    digest = hashlib.sha256()
    for p in sorted(files):
        st = p.stat()
        digest.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_file_for(source_path: Path, key: str, cache_dir: Path) -> Path:
    """The cache path of an image folder or tarball whose key (SHA-256 or :func:`folder_fingerprint`) is ``key``."""
    stem = source_path.name.split(".")[0] or "data"
    return cache_dir / f"{stem}-{key[:16]}-v{CACHE_FORMAT_VERSION}.npz"


def write_cache(path: Path, train: ArrayDataset, test: ArrayDataset) -> None:
    """Save both splits to one ``.npz`` atomically (an interrupted write leaves no file)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:  # a handle, so numpy does not append ".npz" to the temp name
            np.savez(
                handle,
                train_images=train.images, train_labels=train.labels,
                test_images=test.images, test_labels=test.labels,
                classes=np.array(train.classes), source=np.array(train.source),
                format_version=np.array(CACHE_FORMAT_VERSION),
            )


def read_cache(path: Path) -> tuple[ArrayDataset, ArrayDataset] | None:
    """Load a cache written by :func:`write_cache`; None if it is unreadable (then it is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if int(npz["format_version"]) != CACHE_FORMAT_VERSION:
                return None
            classes = tuple(str(c) for c in npz["classes"])
            source = str(npz["source"])
            train = ArrayDataset(npz["train_images"], npz["train_labels"], classes, source)
            test = ArrayDataset(npz["test_images"], npz["test_labels"], classes, source)
    except Exception:  # a damaged cache fails in many ways (zipfile, numpy's header parser, ...); decode again
        return None
    return train, test

