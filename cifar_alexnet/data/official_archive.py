"""The official CIFAR-10 archive, ``cifar-10-python.tar.gz``: what it holds and how it is read safely.

The format (Krizhevsky's "python version"). The tarball unpacks to one folder; seven of its
files are read::

    cifar-10-batches-py/
        data_batch_1 ... data_batch_5    10,000 training images each
        test_batch                       10,000 test images
        batches.meta                     the class names
        readme.html                      (not needed)

Every batch file is a Python 2 ``cPickle`` of a dict. The keys that matter:

* ``data``: a ``uint8`` array ``(10000, 3072)``; each row is one image stored as three 32x32
  planes, R then G then B, each plane row-major (so ``row.reshape(3, 32, 32)`` is CHW);
* ``labels``: a list of 10,000 integers in ``[0, 10)``.

(``batch_label`` and ``filenames`` are there too and ignored.) ``batches.meta`` is a dict
whose ``label_names`` lists the ten class names in label order, :data:`CIFAR10_CLASSES`.

Reading it safely:

* **No code runs, and the cost is bounded.** Unpickling calls whatever callable the file
  names, and a few KB of nested shared references can describe a structure of any size. The
  batches are read with a *restricted* unpickler (:mod:`cifar_alexnet.data.safe_pickle`) that
  can build only dicts, lists, strings, numbers and NumPy integer arrays, runs a bounded number
  of instructions, and refuses any other name before it is called; every value's type is
  checked before it is converted or quoted in a message.
* **Integrity.** With ``verify=True`` (the default) every file's MD5 is compared with the
  official value that torchvision records (:class:`torchvision.datasets.CIFAR10`
  ``tgz_md5``, ``train_list``, ``test_list``, ``meta``): the tarball's, or each file's in
  the unpacked folder. With ``verify=False`` only the structure is checked (batch names,
  keys, shapes, dtypes, label range) -- that is how archives in the official *format* but
  with other contents (the test suite's small ones) are read, through the same code.
* **Bounded and complete.** The tarball is read in memory, never extracted, through
  :func:`cifar_alexnet.data.checked_tar.read_tarball`: its gzip CRC-32 and length are checked
  (also with ``verify=False``), a corrupt header or anything after the end of the archive
  is refused, and a batch file larger than
  :data:`~cifar_alexnet.runtime.limits.MAX_BATCH_FILE_BYTES` is refused by its header (or its
  size, unpacked) before it is read. Nothing is written.

:func:`load_official_archive` reads the tarball or the folder; :func:`download_official_archive`
fetches the tarball with torchvision. Problems raise :class:`DataError` naming the file and
the fix.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from cifar_alexnet.data.arrays import CIFAR10_CLASSES, ArrayDataset, describe_exception
from cifar_alexnet.errors import DataError
from cifar_alexnet.data.checked_tar import read_tarball
from cifar_alexnet.data.safe_pickle import PickleRefused, load_batch_pickle, short_repr
from cifar_alexnet.runtime.limits import MAX_BATCH_FILE_BYTES, format_bytes

__all__ = [
    "OFFICIAL_ARCHIVE_NAME",
    "OFFICIAL_FOLDER",
    "TRAIN_BATCHES",
    "TEST_BATCHES",
    "META_FILE",
    "SOURCE_OFFICIAL",
    "SOURCE_OFFICIAL_FORMAT",
    "load_official_archive",
    "download_official_archive",
]

#: The tarball's file name, as published and as torchvision downloads it.
OFFICIAL_ARCHIVE_NAME = "cifar-10-python.tar.gz"
#: The folder the tarball unpacks to.
OFFICIAL_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
META_FILE = "batches.meta"

#: Human labels of the data variants (stored in :attr:`ArrayDataset.source`).
SOURCE_OFFICIAL = "CIFAR-10 (official archive)"
SOURCE_OFFICIAL_FORMAT = "CIFAR-10 format archive (MD5 not checked)"

_FIX_OFFICIAL = (
    f"re-download it (--download, or load_cifar10(..., download=True)) or pass --data DIR holding "
    f"{OFFICIAL_ARCHIVE_NAME} or {OFFICIAL_FOLDER}/"
)


# ---------------------------------------------------------------------------------------
# Integrity: the official MD5s
# ---------------------------------------------------------------------------------------


def _official_md5s() -> dict[str, str]:
    """The official MD5s, as torchvision records them: file name -> hex digest."""
    from torchvision.datasets import CIFAR10

    md5s = {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}
    md5s[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    md5s[CIFAR10.filename] = CIFAR10.tgz_md5
    return md5s


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------
# Reading a batch: the restricted unpickler, then every value's type checked before use
# ---------------------------------------------------------------------------------------


def _unpickle_batch(raw: bytes, where: str) -> dict[str, object]:
    """Unpickle one batch file safely (:mod:`cifar_alexnet.data.safe_pickle`); keys are returned as ``str``.

    The official files were written by Python 2, whose byte strings arrive as ``str`` with
    ``encoding="latin1"`` (NumPy's documented choice for Python 2 pickles); files written by
    Python 3 have ``bytes`` keys. Both are accepted.
    """
    try:
        obj = load_batch_pickle(raw)
    except PickleRefused as exc:
        raise DataError(f"{where}: not read as a CIFAR-10 batch: {exc}. A batch is a dict of strings, lists of "
                        f"numbers and uint8 arrays, as pickle and NumPy write them; {_FIX_OFFICIAL}") from None
    except Exception as exc:  # truncated or garbled files raise many kinds of errors
        raise DataError(
            f"{where}: cannot be read as a CIFAR-10 batch ({describe_exception(exc)}); the file is corrupt or "
            f"truncated: {_FIX_OFFICIAL}"
        ) from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a pickled dict, found {type(obj).__name__}; {_FIX_OFFICIAL}")
    return {key.decode("latin1") if isinstance(key, bytes) else str(key): value for key, value in obj.items()}


def _batch_arrays(batch: dict[str, object], where: str) -> tuple[np.ndarray, np.ndarray]:
    """``data``/``labels`` of one batch -> images ``(n, 32, 32, 3)`` uint8 and labels ``(n,)`` int64.

    The official ``data`` is ``(n, 3072)`` uint8, each row one image stored as three 32x32
    planes, R then G then B, each plane row-major.
    """
    for key in ("data", "labels"):
        if key not in batch:
            raise DataError(f"{where}: the batch has no {key!r} entry (keys: {short_repr(sorted(batch))}); "
                            f"{_FIX_OFFICIAL}")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"{where}: 'data' must be a uint8 array of shape (n, 3072); got {short_repr(data)}; {_FIX_OFFICIAL}"
        )
    labels = batch["labels"]
    if isinstance(labels, np.ndarray) and labels.ndim == 1:  # an integer array (checked when it was unpickled)
        labels = labels.tolist()
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):  # before NumPy walks it
        raise DataError(f"{where}: 'labels' must be a list of integers, got {short_repr(labels)}; {_FIX_OFFICIAL}")
    if len(labels) != data.shape[0]:
        raise DataError(f"{where}: {data.shape[0]} images but {len(labels)} labels; {_FIX_OFFICIAL}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except OverflowError:
        raise DataError(f"{where}: 'labels' holds an integer beyond 64 bits; {_FIX_OFFICIAL}") from None
    bad = (labels < 0) | (labels >= len(CIFAR10_CLASSES))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: label {int(labels[first])} at position {first} is out of range [0, {len(CIFAR10_CLASSES)}) "
            f"({int(bad.sum())} such labels); {_FIX_OFFICIAL}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (n, 3072) -> (n, C, H, W) -> (n, H, W, C)
    return np.ascontiguousarray(images), labels


class _OfficialFiles:
    """The seven files of the official archive, from the unpacked folder or the tarball.

    ``read(name)`` returns a file's bytes; ``where(name)`` a path to print in messages.
    """

    def __init__(self, path: Path):
        self.path = path
        self.is_tarball = path.is_file()
        self._members: dict[str, bytes] = {}
        if self.is_tarball:
            self._members = self._read_tarball(path)

    @staticmethod
    def _read_tarball(path: Path) -> dict[str, bytes]:
        """The seven files, each refused beyond MAX_BATCH_FILE_BYTES by its header; the archive checked end to end."""
        wanted = {f"{OFFICIAL_FOLDER}/{name}" for name in TRAIN_BATCHES + TEST_BATCHES + (META_FILE,)}
        tar = read_tarball(path, wanted.__contains__, max_member_bytes=MAX_BATCH_FILE_BYTES,
                           member_kind="a CIFAR-10 batch file", fix=_FIX_OFFICIAL)
        return {name.split("/", 1)[1]: data for name, data in tar.files.items()}

    def names_missing(self) -> list[str]:
        names = TRAIN_BATCHES + TEST_BATCHES + (META_FILE,)
        if self.is_tarball:
            return [n for n in names if n not in self._members]
        return [n for n in names if not (self.path / n).is_file()]

    def where(self, name: str) -> str:
        return f"{self.path}:{OFFICIAL_FOLDER}/{name}" if self.is_tarball else str(self.path / name)

    def read(self, name: str) -> bytes:
        if self.is_tarball:
            return self._members[name]
        data = b""
        too_large = (self.path / name).stat().st_size > MAX_BATCH_FILE_BYTES
        if not too_large:
            with open(self.path / name, "rb") as handle:  # bounded: the file may have grown since
                chunks, size = [], 0
                while size <= MAX_BATCH_FILE_BYTES and (chunk := handle.read(1 << 20)):
                    chunks.append(chunk)
                    size += len(chunk)
            data = b"".join(chunks)
            too_large = len(data) > MAX_BATCH_FILE_BYTES
        if too_large:
            raise DataError(
                f"{self.where(name)}: larger than the {format_bytes(MAX_BATCH_FILE_BYTES)} allowed for a CIFAR-10 "
                f"batch file (cifar_alexnet/runtime/limits.py; an official batch is 31 MB); refused without reading it "
                f"whole; {_FIX_OFFICIAL}"
            )
        return data



# ---------------------------------------------------------------------------------------
# Loading and downloading
# ---------------------------------------------------------------------------------------


def load_official_archive(path: str | os.PathLike, *, verify: bool = True) -> tuple[ArrayDataset, ArrayDataset]:
    """Read the official archive: ``cifar-10-python.tar.gz`` or an unpacked ``cifar-10-batches-py/``.

    Args:
        path: the tarball, or the ``cifar-10-batches-py`` folder itself.
        verify: compare MD5s with the official ones torchvision records -- the tarball's
            (as torchvision does after a download) or, for the folder, each batch file's.
            ``False`` checks the structure only (for archives in the official format with
            other contents, like the test suite's).

    What is checked either way: all seven files present; each batch a pickled dict with
    ``data`` (uint8, ``(n, 3072)``) and ``labels`` (``n`` integers in ``[0, 10)``);
    ``batches.meta`` lists the ten CIFAR-10 class names. Nothing is written to disk.

    Returns:
        ``(train, test)``: 50,000 and 10,000 images for the real archive.

    Raises:
        DataError: missing files, wrong MD5, corrupt, truncated or unsafe pickles, bad
            shapes or labels. The message names the file and the fix.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found; {_FIX_OFFICIAL}")
    expected = _official_md5s()
    if verify and path.is_file():
        actual = _md5_file(path)
        if actual != expected[OFFICIAL_ARCHIVE_NAME]:
            raise DataError(
                f"{path}: MD5 {actual} differs from the official {expected[OFFICIAL_ARCHIVE_NAME]} (a partial or "
                f"altered download); {_FIX_OFFICIAL}. For an archive in the official format with other contents, "
                "pass verify=False (--no-verify)."
            )
    files = _OfficialFiles(path)
    missing = files.names_missing()
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)} (an incomplete archive); {_FIX_OFFICIAL}")
    md5s = expected if verify and not files.is_tarball else None  # a verified tarball's members are its own
    _check_label_names(_unpickle_batch(_read_file(files, META_FILE, md5s), files.where(META_FILE)),
                       files.where(META_FILE))
    source = SOURCE_OFFICIAL if verify else SOURCE_OFFICIAL_FORMAT
    return _read_split(files, TRAIN_BATCHES, md5s, source), _read_split(files, TEST_BATCHES, md5s, source)


def _read_file(files: "_OfficialFiles", name: str, md5s: dict[str, str] | None) -> bytes:
    """One file of the archive, compared with its official MD5 when ``md5s`` is given."""
    raw = files.read(name)
    if md5s is not None and _md5(raw) != md5s[name]:
        raise DataError(
            f"{files.where(name)}: MD5 {_md5(raw)} differs from the official {md5s[name]}; {_FIX_OFFICIAL}. "
            "For an archive in the official format with other contents, pass verify=False (--no-verify)."
        )
    return raw


def _check_label_names(meta: dict, where: str) -> None:
    """``batches.meta`` must name the ten CIFAR-10 classes in the official order."""
    names = meta.get("label_names")
    if isinstance(names, list) and len(names) == len(CIFAR10_CLASSES):  # then each is compared, not walked
        names = [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
    if names != list(CIFAR10_CLASSES):
        raise DataError(f"{where}: label_names {short_repr(names)} are not the ten CIFAR-10 classes "
                        f"{list(CIFAR10_CLASSES)}; {_FIX_OFFICIAL}")


def _read_split(files: "_OfficialFiles", batch_names: Sequence[str], md5s: dict[str, str] | None,
                source: str) -> ArrayDataset:
    """The batches of one split, checked and concatenated."""
    parts = [_batch_arrays(_unpickle_batch(_read_file(files, n, md5s), files.where(n)), files.where(n))
             for n in batch_names]
    images = np.concatenate([p[0] for p in parts])  # (n_total, 32, 32, 3)
    labels = np.concatenate([p[1] for p in parts])  # (n_total,)
    return ArrayDataset(images, labels, CIFAR10_CLASSES, source)


def download_official_archive(root: Path) -> Path:
    """Download ``cifar-10-python.tar.gz`` into ``root`` with torchvision (MD5-checked).

    Returns:
        The path of the downloaded tarball, ``root / "cifar-10-python.tar.gz"``.

    Raises:
        DataError: the download failed (no network, wrong MD5); the message says how to
            supply the data by hand.
    """
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_url

    root.mkdir(parents=True, exist_ok=True)
    try:
        download_url(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
    except Exception as exc:  # network errors come in many types
        raise DataError(
            f"could not download {CIFAR10.url} into {root} ({describe_exception(exc)}). Without internet access, "
            f"copy {OFFICIAL_ARCHIVE_NAME} (or an image folder) to a directory and pass it with --data DIR."
        ) from None
    return root / CIFAR10.filename

