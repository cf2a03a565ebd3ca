"""CIFAR-10 on disk -> uint8 arrays in memory, plus the original notebook's augmentations.

Everything that reads images from disk lives here; everything that turns a batch of uint8
images into a normalised float batch on the GPU lives in :mod:`cifar_alexnet.device_data`.

Conventions (written once, used everywhere in the package):

* an image set is a ``uint8`` array of shape ``(N, 32, 32, 3)``: N images, height, width,
  channels R, G, B ("HWC", the layout of ``torchvision.datasets.CIFAR10.data``);
* labels are ``int64`` of shape ``(N,)``, an index into ``classes``;
* per-channel statistics are in ``[0, 1]`` units (a pixel value divided by 255).

Two kinds of input are understood by :func:`load_cifar10`:

1. **The official archive** ``cifar-10-python.tar.gz`` (or the folder
   ``cifar-10-batches-py/`` that it unpacks to). Its six batches are Python pickles; they are
   read with a *restricted* unpickler that can build only dicts, lists, strings, numbers and
   NumPy ``uint8`` arrays, so a tampered file cannot run code. With ``verify=True`` (the
   default) every file's MD5 is compared with the official value that torchvision records
   (:class:`torchvision.datasets.CIFAR10` ``tgz_md5``, ``train_list``, ``test_list``,
   ``meta``); with ``verify=False`` only the structure is checked (batch names, keys,
   shapes, dtypes, label range) -- that is how archives in the official *format* but with
   other contents (the test suite's small ones) are read, through the same code.
2. **An image folder** ``train/<class>/*.png|jpg`` and ``test/<class>/*.png|jpg`` of 32x32 RGB
   images, as a directory or a ``.tar.gz`` read without unpacking it. The images are decoded
   once and cached as a ``.npz`` (see :func:`default_cache_dir`); later loads read the cache.

Any problem with the input raises :class:`DataError` (a ``ValueError``) whose message names
the file and says how to fix it.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import posixpath
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from torch.utils.data import Dataset

from cifar_alexnet.atomic import atomic_path

__all__ = [
    "CIFAR10_CLASSES",
    "IMAGE_SHAPE",
    "DataError",
    "ArrayDataset",
    "load_cifar10",
    "load_official_archive",
    "load_image_folder",
    "default_cache_dir",
    "default_data_dir",
    "channel_stats",
    "class_balanced_subset",
    "original_train_transform",
    "test_transform",
    "TorchvisionDataset",
]

#: The ten classes in the official label order (label ``i`` is ``CIFAR10_CLASSES[i]``). It is
#: also the alphabetical order, so an image folder with these names gets the official labels.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
#: Shape of one image, height x width x channels.
IMAGE_SHAPE = (32, 32, 3)

OFFICIAL_ARCHIVE_NAME = "cifar-10-python.tar.gz"
OFFICIAL_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
META_FILE = "batches.meta"

#: Human labels of the data variants (stored in :attr:`ArrayDataset.source`).
SOURCE_OFFICIAL = "CIFAR-10 (official archive)"
SOURCE_OFFICIAL_FORMAT = "CIFAR-10 format archive (MD5 not checked)"
#: Archives recognised by their SHA-256, with the label their numbers must carry.
KNOWN_ARCHIVES = {
    "097287809041e0a666355dfce11470ba1b3f2631fe910d8793c716253f10b297": "CIFAR-10 (JPEG q75 copy)",
}

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_CACHE_FORMAT_VERSION = 1
_FIX_OFFICIAL = (
    f"re-download it (--download, or load_cifar10(..., download=True)) or pass --data DIR holding "
    f"{OFFICIAL_ARCHIVE_NAME} or {OFFICIAL_FOLDER}/"
)


class DataError(ValueError):
    """A data set on disk is missing, corrupt or not in a supported layout.

    The message always names the offending path and what to do about it.
    """


# ---------------------------------------------------------------------------------------
# The in-memory data set
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == is elementwise, not a bool
class ArrayDataset:
    """A labelled image set held in memory.

    Attributes:
        images: ``uint8`` array ``(N, 32, 32, 3)``, channels R, G, B.
        labels: ``int64`` array ``(N,)`` with values in ``[0, len(classes))``.
        classes: class names; ``classes[label]`` names an image's class.
        source: human label of where the images came from, e.g.
            ``"CIFAR-10 (official archive)"`` or ``"CIFAR-10 (JPEG q75 copy)"``. Reports and
            plots print it next to every accuracy.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            raise ValueError(
                "ArrayDataset.images must be a uint8 array of shape (N, H, W, 3) (HWC, RGB); got "
                f"{type(images).__name__} {getattr(images, 'dtype', '')} {getattr(images, 'shape', '')}"
            )
        if not isinstance(labels, np.ndarray) or labels.shape != (images.shape[0],):
            raise ValueError(
                f"ArrayDataset.labels must be an array of shape ({images.shape[0]},) (one label per image); "
                f"got {getattr(labels, 'shape', type(labels).__name__)}"
            )
        if labels.dtype != np.int64:
            if not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(f"ArrayDataset.labels must be integers, got dtype {labels.dtype}")
            object.__setattr__(self, "labels", labels.astype(np.int64))
        object.__setattr__(self, "classes", tuple(self.classes))
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"ArrayDataset.labels must lie in [0, {len(self.classes)}) for {len(self.classes)} classes; "
                f"got values from {self.labels.min()} to {self.labels.max()}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def class_counts(self) -> np.ndarray:
        """Number of images of each class, ``(len(classes),)`` int64."""
        return np.bincount(self.labels, minlength=len(self.classes)).astype(np.int64)


# ---------------------------------------------------------------------------------------
# Where data and caches live
# ---------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """``$CIFAR_ALEXNET_DATA`` if set, else ``./data`` (the original notebook's ``root``)."""
    return Path(os.environ.get("CIFAR_ALEXNET_DATA", "data"))


def default_cache_dir() -> Path:
    """``$CIFAR_ALEXNET_CACHE`` if set, else ``~/.cache/cifar-alexnet``."""
    env = os.environ.get("CIFAR_ALEXNET_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cifar-alexnet"


# ---------------------------------------------------------------------------------------
# The official archive
# ---------------------------------------------------------------------------------------


def _official_md5s() -> dict[str, str]:
    """The official MD5s, as torchvision records them: file name -> hex digest."""
    from torchvision.datasets import CIFAR10

    md5s = {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}
    md5s[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    md5s[CIFAR10.filename] = CIFAR10.tgz_md5
    return md5s


#: The ndarray-rebuilding functions NumPy's pickles call, taken from NumPy itself (the module
#: that holds them moved from ``numpy.core`` to ``numpy._core`` in NumPy 2).
_NUMPY_RECONSTRUCT = np.empty(0, np.uint8).__reduce__()[0]
_NUMPY_FROMBUFFER = np.empty(0, np.uint8).__reduce_ex__(5)[0]
_ALLOWED_GLOBALS = {
    # Protocol 0-4 arrays (the official files: Python 2 cPickle, protocol 2).
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    # Protocol 5 arrays (pickle.dump in Python 3.8+ with protocol=5).
    ("numpy.core.numeric", "_frombuffer"): _NUMPY_FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _NUMPY_FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a callable that a CIFAR-10 batch never needs."""


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that can build only what a CIFAR-10 batch contains.

    Unpickling calls whatever callable the file names (``os.system`` included), so an
    ordinary ``pickle.load`` of a downloaded file can run code. Containers, strings and
    numbers need no callables at all; NumPy arrays need the four functions and types in
    ``_ALLOWED_GLOBALS``. Every other name is refused *before* anything is called.
    """

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch holds only dicts, lists, "
                "strings, numbers and uint8 arrays"
            ) from None


def _describe(exc: BaseException) -> str:
    """``"Type: message"`` on one line, at most 120 characters (messages can quote binary garbage)."""
    text = str(exc)
    text = text if text.isprintable() and len(text) <= 100 else repr(text[:100])
    return f"{type(exc).__name__}: {text}"


def _unpickle_batch(raw: bytes, where: str) -> dict[str, object]:
    """Unpickle one batch file safely; keys are returned as ``str``.

    The official files were written by Python 2, whose byte strings arrive as ``str`` with
    ``encoding="latin1"`` (NumPy's documented choice for Python 2 pickles); files written by
    Python 3 have ``bytes`` keys. Both are accepted.
    """
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _RefusedGlobal as exc:
        raise DataError(f"{where}: not a safe CIFAR-10 batch ({exc}). The file may be tampered with; {_FIX_OFFICIAL}") from None
    except Exception as exc:  # truncated or garbled files raise many kinds of errors
        raise DataError(
            f"{where}: cannot be read as a CIFAR-10 batch ({_describe(exc)}); the file is corrupt or "
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
            raise DataError(f"{where}: the batch has no {key!r} entry (keys: {sorted(batch)}); {_FIX_OFFICIAL}")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"{where}: 'data' must be a uint8 array of shape (n, 3072); got {type(data).__name__} "
            f"{getattr(data, 'dtype', '')} {getattr(data, 'shape', '')}; {_FIX_OFFICIAL}"
        )
    try:
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: 'labels' must be a list of integers; {_FIX_OFFICIAL}") from None
    if labels.shape != (data.shape[0],):
        raise DataError(f"{where}: {data.shape[0]} images but {labels.size} labels; {_FIX_OFFICIAL}")
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
        wanted = {f"{OFFICIAL_FOLDER}/{name}" for name in TRAIN_BATCHES + TEST_BATCHES + (META_FILE,)}
        members: dict[str, bytes] = {}
        try:
            with tarfile.open(path, mode="r:*") as archive:
                for member in archive:
                    name = posixpath.normpath(member.name)
                    if name in wanted and member.isfile():
                        members[name.split("/", 1)[1]] = archive.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path}: corrupt or truncated archive ({_describe(exc)}); {_FIX_OFFICIAL}"
            ) from None
        return members

    def names_missing(self) -> list[str]:
        names = TRAIN_BATCHES + TEST_BATCHES + (META_FILE,)
        if self.is_tarball:
            return [n for n in names if n not in self._members]
        return [n for n in names if not (self.path / n).is_file()]

    def where(self, name: str) -> str:
        return f"{self.path}:{OFFICIAL_FOLDER}/{name}" if self.is_tarball else str(self.path / name)

    def read(self, name: str) -> bytes:
        return self._members[name] if self.is_tarball else (self.path / name).read_bytes()


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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

    def read(name: str) -> bytes:
        raw = files.read(name)
        if verify and not files.is_tarball and _md5(raw) != expected[name]:
            raise DataError(
                f"{files.where(name)}: MD5 {_md5(raw)} differs from the official {expected[name]}; {_FIX_OFFICIAL}. "
                "For an archive in the official format with other contents, pass verify=False (--no-verify)."
            )
        return raw

    meta = _unpickle_batch(read(META_FILE), files.where(META_FILE))
    names = meta.get("label_names")
    names = [n.decode("latin1") if isinstance(n, bytes) else n for n in names] if isinstance(names, list) else names
    if names != list(CIFAR10_CLASSES):
        raise DataError(
            f"{files.where(META_FILE)}: label_names {names!r} are not the ten CIFAR-10 classes {list(CIFAR10_CLASSES)}; "
            f"{_FIX_OFFICIAL}"
        )

    def split(batch_names: Sequence[str]) -> ArrayDataset:
        parts = [_batch_arrays(_unpickle_batch(read(n), files.where(n)), files.where(n)) for n in batch_names]
        images = np.concatenate([p[0] for p in parts])  # (n_total, 32, 32, 3)
        labels = np.concatenate([p[1] for p in parts])  # (n_total,)
        return ArrayDataset(images, labels, CIFAR10_CLASSES, SOURCE_OFFICIAL if verify else SOURCE_OFFICIAL_FORMAT)

    return split(TRAIN_BATCHES), split(TEST_BATCHES)


def _download_official(root: Path) -> Path:
    """Download ``cifar-10-python.tar.gz`` into ``root`` with torchvision (MD5-checked)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_url

    root.mkdir(parents=True, exist_ok=True)
    try:
        download_url(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
    except Exception as exc:  # network errors come in many types
        raise DataError(
            f"could not download {CIFAR10.url} into {root} ({_describe(exc)}). Without internet access, "
            f"copy {OFFICIAL_ARCHIVE_NAME} (or an image folder) to a directory and pass it with --data DIR."
        ) from None
    return root / CIFAR10.filename


# ---------------------------------------------------------------------------------------
# Image folders: train/<class>/*.png|jpg and test/<class>/*.png|jpg
# ---------------------------------------------------------------------------------------

_SPLITS = ("train", "test")


@dataclass(frozen=True)
class _ImageFile:
    """One image file of an image folder, not yet decoded."""

    split: str
    class_name: str
    name: str  # path relative to the folder root, for messages and sorting
    read: Callable[[], bytes]


def _safe_relative(name: str, where: Path) -> str:
    """Normalise a tar member name; refuse absolute paths and ``..`` (path traversal)."""
    norm = posixpath.normpath(name.replace("\\", "/"))  # "a/./b/../c" -> "a/c"; a leading ".." stays
    if norm.startswith("/") or norm == ".." or norm.startswith("../"):
        raise DataError(
            f"{where}: member {name!r} points outside the archive (absolute path or '..'); refusing to read an "
            "archive built to escape its folder. Rebuild it with relative paths train/<class>/<file>."
        )
    return "" if norm == "." else norm


def _split_layout(relative_paths: Iterable[str]) -> str:
    """The prefix under which ``train/`` and ``test/`` live: ``""`` or ``"<top>/"``.

    ``""`` when they sit at the top (or when several top-level folders hold them, which is
    ambiguous; the caller then finds no class folders and says so).
    """
    prefixes = set()
    for rel in relative_paths:
        parts = rel.split("/")
        if len(parts) >= 2 and parts[0] in _SPLITS:
            prefixes.add("")
        if len(parts) >= 3 and parts[1] in _SPLITS:
            prefixes.add(parts[0] + "/")
    return "" if "" in prefixes else (sorted(prefixes)[0] if len(prefixes) == 1 else "")


def _classify(rel: str, prefix: str) -> tuple[str, str, str] | None:
    """``train/cat/0001.png`` -> ``("train", "cat", "0001.png")``; None for other paths."""
    if not rel.startswith(prefix):
        return None
    parts = rel[len(prefix):].split("/")
    if len(parts) != 3 or parts[0] not in _SPLITS:
        return None
    return parts[0], parts[1], parts[2]


def _list_image_folder(root: Path) -> tuple[list[_ImageFile], dict[str, set[str]]]:
    """Image files and class folders (per split) of an unpacked image folder."""
    rels = [p.relative_to(root).as_posix() for p in root.rglob("*")]
    prefix = _split_layout(rels)
    files: list[_ImageFile] = []
    class_dirs: dict[str, set[str]] = {s: set() for s in _SPLITS}
    for split in _SPLITS:
        split_dir = root / prefix / split
        if split_dir.is_dir():
            class_dirs[split] = {d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")}
    for rel in sorted(rels):
        parsed = _classify(rel, prefix)
        if parsed is None or parsed[2].startswith(".") or not (root / rel).is_file():
            continue
        split, class_name, _ = parsed
        path = root / rel
        files.append(_ImageFile(split, class_name, rel, path.read_bytes))
    return files, class_dirs


def _list_image_tarball(path: Path) -> tuple[list[_ImageFile], dict[str, set[str]]]:
    """Image files and class folders of an image folder packed as a (gzipped) tarball.

    Members are read into memory; nothing is extracted to disk.
    """
    contents: dict[str, bytes] = {}
    directories: set[str] = set()
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                rel = _safe_relative(member.name, path)
                if member.isdir():
                    directories.add(rel)
                elif member.isfile():
                    contents[rel] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: corrupt or truncated archive ({_describe(exc)}); re-download or re-create it "
            "(tar czf data.tar.gz train test)"
        ) from None
    prefix = _split_layout(list(contents) + [d + "/x" for d in directories])
    class_dirs: dict[str, set[str]] = {s: set() for s in _SPLITS}
    for rel in list(contents) + [d + "/" for d in directories]:
        parts = rel[len(prefix):].split("/") if rel.startswith(prefix) else []
        if len(parts) >= 2 and parts[0] in _SPLITS and parts[1] and not parts[1].startswith("."):
            if len(parts) >= 3 or rel.endswith("/"):
                class_dirs[parts[0]].add(parts[1])
    files = []
    for rel in sorted(contents):
        parsed = _classify(rel, prefix)
        if parsed is None or parsed[2].startswith("."):
            continue
        files.append(_ImageFile(parsed[0], parsed[1], rel, (lambda data=contents[rel]: data)))
    return files, class_dirs


def _decode_image(raw: bytes, where: str) -> np.ndarray:
    """Decode one PNG/JPEG to ``(32, 32, 3)`` uint8, or raise a :class:`DataError`.

    Images that are not 32x32 or not RGB are refused rather than converted: a silent resize
    or grayscale-to-RGB conversion would change the data (and its statistics) behind the
    user's back. The message says how to convert the file.
    """
    from PIL import Image, UnidentifiedImageError

    try:  # (DecompressionBombError: an absurdly large image, refused by PIL before decoding)
        with Image.open(io.BytesIO(raw)) as image:
            image.load()  # decodes now, so truncated files fail here
            mode, size = image.mode, image.size
            array = np.asarray(image) if mode == "RGB" and size == (32, 32) else None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"{where}: cannot decode the image ({_describe(exc)}); the file is corrupt or truncated. "
            "Replace it with a valid 32x32 RGB PNG or JPEG, or delete it."
        ) from None
    if size != (32, 32):
        raise DataError(
            f"{where}: image is {size[0]}x{size[1]} pixels, expected 32x32. Resize it first, e.g. "
            "PIL.Image.open(path).convert('RGB').resize((32, 32)).save(path)."
        )
    if mode != "RGB":
        raise DataError(
            f"{where}: image mode is {mode!r}, expected 'RGB' (3 channels). Convert it first, e.g. "
            "PIL.Image.open(path).convert('RGB').save(path)."
        )
    return array


def _decode_all(files: Sequence[_ImageFile], where: Path, chunk: int = 2000) -> np.ndarray:
    """Decode ``files`` into one ``(n, 32, 32, 3)`` uint8 array, on a few threads.

    PIL releases the GIL while it decodes, so threads use all cores. The chunks' results are
    collected in order, so the error raised for a bad input is always that of the first bad
    file in sorted order, however the threads were scheduled.
    """
    from concurrent.futures import ThreadPoolExecutor

    images = np.empty((len(files), *IMAGE_SHAPE), dtype=np.uint8)

    def decode_chunk(start: int) -> None:
        for i in range(start, min(start + chunk, len(files))):
            images[i] = _decode_image(files[i].read(), f"{where}/{files[i].name}")

    try:
        workers = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        workers = os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=max(1, min(workers, 8))) as pool:
        for finished in pool.map(decode_chunk, range(0, len(files), chunk)):  # re-raises in chunk order
            pass
    return images


def _decode_image_folder(files: list[_ImageFile], class_dirs: dict[str, set[str]], where: Path,
                         source: str) -> tuple[ArrayDataset, ArrayDataset]:
    """Check the layout, decode every image, return ``(train, test)``."""
    for split in _SPLITS:
        if not class_dirs[split]:
            raise DataError(
                f"{where}: no {split}/<class>/ folders found. An image folder needs train/<class>/*.png|jpg and "
                "test/<class>/*.png|jpg (or pass the official cifar-10-python.tar.gz)."
            )
    if class_dirs["train"] != class_dirs["test"]:
        only_train = sorted(class_dirs["train"] - class_dirs["test"])
        only_test = sorted(class_dirs["test"] - class_dirs["train"])
        raise DataError(
            f"{where}: train/ and test/ have different class folders (only in train: {only_train}; only in test: "
            f"{only_test}). Both splits need the same classes."
        )
    classes = tuple(sorted(class_dirs["train"]))  # CIFAR-10's names sort into the official order
    index = {name: i for i, name in enumerate(classes)}
    for f in files:
        if not f.name.lower().endswith(_IMAGE_SUFFIXES):
            raise DataError(f"{where}/{f.name}: not a .png/.jpg/.jpeg file; remove it from the class folder.")
    splits = []
    for split in _SPLITS:
        chosen = [f for f in files if f.split == split]
        counts = {c: 0 for c in classes}
        for f in chosen:
            counts[f.class_name] += 1
        empty = [c for c, n in counts.items() if n == 0]
        if empty:
            raise DataError(
                f"{where}: class folder(s) {', '.join(f'{split}/{c}/' for c in empty)} hold no images. Add images or "
                "remove the folder from both train/ and test/."
            )
        images = _decode_all(chosen, where)  # (n, 32, 32, 3)
        labels = np.array([index[f.class_name] for f in chosen], dtype=np.int64)
        splits.append(ArrayDataset(images, labels, classes, source))
    return splits[0], splits[1]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _folder_fingerprint(root: Path) -> str:
    """A key that changes when any file under ``root`` is added, removed or modified."""
    digest = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            digest.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cache_file(source_path: Path, cache_dir: Path) -> tuple[Path, str]:
    """The cache path of an image folder or tarball, and the archive's SHA-256 (or '')."""
    if source_path.is_file():
        sha = _sha256_file(source_path)  # content key: survives moves and copies
        key = sha
    else:
        sha = ""
        key = _folder_fingerprint(source_path)
    stem = source_path.name.split(".")[0] or "data"
    return cache_dir / f"{stem}-{key[:16]}-v{_CACHE_FORMAT_VERSION}.npz", sha


def _write_cache(path: Path, train: ArrayDataset, test: ArrayDataset) -> None:
    """Save both splits to one ``.npz`` atomically (an interrupted write leaves no file)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:  # a handle, so numpy does not append ".npz" to the temp name
            np.savez(
                handle,
                train_images=train.images, train_labels=train.labels,
                test_images=test.images, test_labels=test.labels,
                classes=np.array(train.classes), source=np.array(train.source),
                format_version=np.array(_CACHE_FORMAT_VERSION),
            )


def _read_cache(path: Path) -> tuple[ArrayDataset, ArrayDataset] | None:
    """Load a cache written by :func:`_write_cache`; None if it is unreadable (then it is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if int(npz["format_version"]) != _CACHE_FORMAT_VERSION:
                return None
            classes = tuple(str(c) for c in npz["classes"])
            source = str(npz["source"])
            train = ArrayDataset(npz["train_images"], npz["train_labels"], classes, source)
            test = ArrayDataset(npz["test_images"], npz["test_labels"], classes, source)
    except (OSError, KeyError, ValueError, EOFError, zlib.error, zipfile.BadZipFile):
        return None
    return train, test


def load_image_folder(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
                      use_cache: bool = True) -> tuple[ArrayDataset, ArrayDataset]:
    """Read an image-folder data set, decoding it once and caching the result.

    Layout (directly under ``path``, or under one top-level folder inside it)::

        train/<class>/*.png|.jpg|.jpeg     test/<class>/*.png|.jpg|.jpeg

    Every image must be 32x32 RGB. Class names are the sorted folder names (so the CIFAR-10
    names get the official labels); train and test must have the same classes. Images are
    ordered by class, then file name.

    Args:
        path: the folder, or a ``.tar``/``.tar.gz``/``.tgz`` of it (read in memory; members
            with absolute paths or ``..`` are refused).
        cache_dir: where the decoded ``.npz`` goes (default :func:`default_cache_dir`). The
            cache name carries the archive's SHA-256 (for a folder: a hash of every file's
            name, size and modification time), so a changed input is decoded again. It is
            written atomically: an interrupted decode leaves no cache behind.
        use_cache: ``False`` decodes every time and writes nothing.

    Returns:
        ``(train, test)``. ``source`` is the archive's known label (e.g. "CIFAR-10 (JPEG q75
        copy)" for the copy in ``shared/data``) or ``"image folder <name>"``.

    Raises:
        DataError: corrupt archive or image, wrong image size or mode, empty class folder,
            train/test classes differ, no images.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found. Pass --data with an existing image folder or .tar.gz.")
    cache_path = sha = None
    if use_cache:
        cache_path, sha = _cache_file(path, Path(cache_dir) if cache_dir is not None else default_cache_dir())
        if cache_path.is_file():
            cached = _read_cache(cache_path)
            if cached is not None:
                return cached
    elif path.is_file():
        sha = _sha256_file(path)
    source = KNOWN_ARCHIVES.get(sha or "", f"image folder {path.name}")
    files, class_dirs = _list_image_tarball(path) if path.is_file() else _list_image_folder(path)
    if not files and any(class_dirs.values()):
        raise DataError(f"{path}: no images found under train/<class>/ or test/<class>/. Add 32x32 RGB PNG/JPEG files.")
    train, test = _decode_image_folder(files, class_dirs, path, source)
    if cache_path is not None:
        _write_cache(cache_path, train, test)
    return train, test


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
        return load_official_archive(_download_official(path), verify=verify)
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


def class_balanced_subset(ds: ArrayDataset, n: int, seed: int = 0) -> ArrayDataset:
    """A random subset with ``n / len(classes)`` images of every class.

    Images are drawn without replacement with ``numpy.random.default_rng(seed)`` and kept in
    their original order.

    Raises:
        ValueError: ``n`` is not a positive multiple of the number of classes, or some class
            has fewer images than ``n / len(classes)`` (the message names it).
    """
    k = len(ds.classes)
    if n <= 0 or n % k:
        raise ValueError(
            f"class_balanced_subset: n={n} must be a positive multiple of the number of classes ({k}) so every "
            f"class gets the same count; try n={max(k, n - n % k)}"
        )
    per_class = n // k
    counts = ds.class_counts()
    short = [(ds.classes[c], int(counts[c])) for c in range(k) if counts[c] < per_class]
    if short:
        raise ValueError(
            f"class_balanced_subset: n={n} needs {per_class} images per class but "
            + ", ".join(f"{name!r} has {count}" for name, count in short)
            + f"; the largest reachable n is {k * int(counts.min())}"
        )
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(ds.labels == c), size=per_class, replace=False) for c in range(k)]
    index = np.sort(np.concatenate(chosen))
    return ArrayDataset(ds.images[index], ds.labels[index], ds.classes,
                        f"{ds.source}, class-balanced subset of {n} (seed {seed})")


# ---------------------------------------------------------------------------------------
# The original notebook's torchvision pipeline (PIL images, DataLoader workers)
# ---------------------------------------------------------------------------------------


def original_train_transform(mean: Sequence[float], std: Sequence[float], *, crop: bool = True,
                             flip: bool = True, color_jitter: bool = True, grayscale: bool = True):
    """The original training transform, as a ``torchvision.transforms.Compose`` on PIL images.

    ``RandomCrop(32, padding=4)`` (zero padding), ``RandomHorizontalFlip()`` (p = 0.5),
    ``ColorJitter()``, ``RandomGrayscale(p=0.3)``, ``ToTensor()``, ``Normalize(mean, std)``.

    ``ColorJitter()`` is kept because the original has it, but it changes nothing: called
    without arguments, brightness, contrast, saturation and hue are all ``None``, and the
    transform applies only the factors that are set. (The notebook's own print-out shows
    ``ColorJitter(brightness=None, contrast=None, saturation=None, hue=None)``.) The batched
    pipeline in :mod:`cifar_alexnet.device_data` therefore leaves it out.

    The keyword flags drop single steps (for ablations and tests).
    """
    from torchvision import transforms

    steps = []
    if crop:
        steps.append(transforms.RandomCrop(32, padding=4))
    if flip:
        steps.append(transforms.RandomHorizontalFlip())
    if color_jitter:
        steps.append(transforms.ColorJitter())  # all factors None: the identity, see the docstring
    if grayscale:
        steps.append(transforms.RandomGrayscale(p=0.3))
    steps += [transforms.ToTensor(), transforms.Normalize(tuple(mean), tuple(std))]
    return transforms.Compose(steps)


def test_transform(mean: Sequence[float], std: Sequence[float]):
    """The original test transform: ``ToTensor()`` then ``Normalize(mean, std)``."""
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(tuple(mean), tuple(std))])


test_transform.__test__ = False  # its name starts with "test": tell pytest it is not a test


class TorchvisionDataset(Dataset):
    """An :class:`ArrayDataset` as a torch ``Dataset`` of ``(transform(PIL image), label)``.

    This is how the original fed its ``DataLoader``: every image becomes a PIL image, goes
    through the transform in a worker process, and is collated into a batch.
    """

    def __init__(self, ds: ArrayDataset, transform: Callable | None = None):
        self.ds = ds
        self.transform = transform

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int):
        from PIL import Image

        image = Image.fromarray(self.ds.images[index])  # (32, 32, 3) uint8 -> RGB PIL image
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.ds.labels[index])

