"""The decode cache: an image folder decoded once, kept as one uint8 ``.npz``.

Decoding every PNG/JPEG again on every run would be wasted work: the pixels never change.
:func:`cifar_alexnet.data.image_folder.load_image_folder` therefore decodes an image folder once
and stores the result here; later loads read the arrays back.

The format: one uncompressed NumPy ``.npz`` (a zip of ``.npy`` files) with the keys

* ``train_images``, ``test_images``: ``uint8`` ``(N, 32, 32, 3)``;
* ``train_labels``, ``test_labels``: ``int64`` ``(N,)``;
* ``classes``: the class names (a NumPy string array); ``source``: the human label;
* ``source_key``: the key of the input it was decoded from (below);
* ``checksum``: the SHA-256 of the key and of every array above, names, dtypes and shapes
  included (:func:`cache_checksum`);
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

The zip CRCs are rewritten by whatever rewrites the file, so they cannot tell a cache that was
*changed* -- relabelled, say, with NumPy -- from one the decoder wrote. The stored checksum
can: a cache whose arrays, or whose input key, do not match it is not used; the load says so
in one ``warning:`` line, decodes the input again and replaces the cache. (The checksum
detects changes, not an adversary: whoever can write the cache can also write a new
checksum.)
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from cifar_alexnet.data.arrays import ArrayDataset
from cifar_alexnet.runtime.atomic import atomic_path

__all__ = [
    "CACHE_FORMAT_VERSION",
    "default_cache_dir",
    "sha256_file",
    "folder_fingerprint",
    "cache_file_for",
    "cache_checksum",
    "write_cache",
    "read_cache",
]

#: Version of the ``.npz`` layout; part of every cache file's name and stored inside it.
#: Version 2 added ``source_key`` and ``checksum``.
CACHE_FORMAT_VERSION = 2


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


def cache_checksum(key: str, arrays: Mapping[str, np.ndarray]) -> str:
    """The SHA-256 of a cache's input key and arrays: every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256(key.encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array)  # the array's own buffer: no copy of the images
    return digest.hexdigest()


def _arrays(train: ArrayDataset, test: ArrayDataset) -> dict[str, np.ndarray]:
    return {"train_images": train.images, "train_labels": train.labels, "test_images": test.images,
            "test_labels": test.labels, "classes": np.array(train.classes), "source": np.array(train.source)}


def write_cache(path: Path, train: ArrayDataset, test: ArrayDataset, key: str = "") -> None:
    """Save both splits to one ``.npz`` atomically (an interrupted write leaves no file), with their checksum.

    ``key``: the input's key (its SHA-256, or :func:`folder_fingerprint`), stored and checksummed.
    """
    arrays = _arrays(train, test)
    checksum = cache_checksum(key, arrays)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:  # a handle, so numpy does not append ".npz" to the temp name
            np.savez(handle, **arrays, source_key=np.array(key), checksum=np.array(checksum),
                     format_version=np.array(CACHE_FORMAT_VERSION))


def read_cache(path: Path, key: str | None = None) -> tuple[ArrayDataset, ArrayDataset] | None:
    """Load a cache written by :func:`write_cache`; None if it cannot be used (then it is rebuilt).

    Not used, with one ``warning:`` line on stderr: a cache that cannot be read, one of another
    format version, one made from another input than ``key`` (when given), and one whose
    contents do not match their stored checksum.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            if int(npz["format_version"]) != CACHE_FORMAT_VERSION:
                return _unusable(path, f"format version {int(npz['format_version'])}, not {CACHE_FORMAT_VERSION}")
            arrays = {name: npz[name] for name in ("train_images", "train_labels", "test_images", "test_labels",
                                                   "classes", "source")}
            stored_key, checksum = str(npz["source_key"]), str(npz["checksum"])
    except Exception as exc:  # a damaged cache fails in many ways (zipfile, numpy's header parser, ...); decode again
        return _unusable(path, f"cannot be read: {type(exc).__name__}")
    if key is not None and stored_key != key:
        return _unusable(path, "it was made from other data")
    if cache_checksum(stored_key, arrays) != checksum:
        return _unusable(path, "its contents do not match their checksum: the file was changed after it was written")
    classes, source = tuple(str(c) for c in arrays["classes"]), str(arrays["source"])
    try:
        return (ArrayDataset(arrays["train_images"], arrays["train_labels"], classes, source),
                ArrayDataset(arrays["test_images"], arrays["test_labels"], classes, source))
    except (TypeError, ValueError) as exc:  # arrays of the wrong shape or type for a data set
        return _unusable(path, f"its arrays are not a data set ({type(exc).__name__})")


def _unusable(path: Path, why: str) -> None:
    print(f"warning: not using the decode cache {path} ({why}); decoding the data again and replacing it",
          file=sys.stderr, flush=True)
    return None
