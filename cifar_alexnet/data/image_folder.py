"""Image folders: CIFAR-10 (or a data set like it) as individual PNG/JPEG files.

The format. One folder per split, one sub-folder per class, one file per image::

    train/airplane/0001.png      test/airplane/0001.png
    train/airplane/0002.png      ...
    ...                          test/truck/1000.png
    train/truck/5000.png

``train/`` and ``test/`` sit directly in the folder or under one top-level folder inside it
(``cifar10/train/...``, as ``tar czf data.tar.gz cifar10`` leaves them). Every image is a
32x32 RGB ``.png``, ``.jpg`` or ``.jpeg``. The labels come from the folder names: the class
names sorted alphabetically, label ``i`` for the ``i``-th, which for the ten CIFAR-10 names
is the official order. Both splits must have the same class folders, none of them empty, and
there must be ``MIN_CLASSES`` to ``MAX_CLASSES`` of them (2 to 1,000: the bounds a checkpoint
is read back with, :mod:`cifar_alexnet.runtime.limits`), checked before anything is decoded.

Entries whose names start with ``.`` and ``__MACOSX`` folders (:func:`is_skipped_name`) are
skipped at every level -- Jupyter, macOS and version control leave them in data folders --
and the load says in one line how many it skipped. Symbolic links in a folder are followed
(a class folder may live elsewhere); in a tarball, links to files are resolved inside the
archive and any other link where an image or a class folder is expected is refused. Anything
in a class folder that is not a regular file (a FIFO, a device) is refused by name.

The folder may also be packed as a ``.tar``, ``.tar.gz`` or ``.tgz``. It is then read in
memory, never extracted, and checked end to end by :mod:`cifar_alexnet.data.checked_tar`: a
member whose path is absolute or climbs out with ``..`` ("path traversal") is refused, and
so is a gzip stream whose CRC-32 or length does not match, a corrupt header, or anything
after the end of the archive. Sizes are bounded (:mod:`cifar_alexnet.runtime.limits`): an image
file by its byte count before it is read, an image by its width and height before it is
decoded, the archive by what it inflates to.

Reading happens in three steps:

1. **List** the image files (:func:`_list_image_folder` or :func:`_list_image_tarball`)
   without decoding them.
2. **Decode** them with Pillow (:func:`_decode_image`), a few threads at a time. An image
   that is not 32x32 or not RGB is refused, not converted: a silent resize or conversion
   would change the data and its statistics behind the user's back.
3. **Cache** the two decoded uint8 arrays (:mod:`cifar_alexnet.data.decode_cache`), so later
   loads skip steps 1 and 2.

Some archives are recognised by their SHA-256 (:data:`KNOWN_ARCHIVES`) and get the label
their numbers must carry, e.g. "CIFAR-10 (JPEG q75 copy)"; their listing must show the
images per class they are known to hold (:data:`KNOWN_ARCHIVE_COUNTS`). Problems raise
:class:`DataError` naming the file and the fix.
"""

from __future__ import annotations

import io
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from cifar_alexnet.data.arrays import IMAGE_SHAPE, ArrayDataset, describe_exception
from cifar_alexnet.errors import DataError, DiskFullError, OutputPathError
from cifar_alexnet.data.checked_tar import read_tarball
from cifar_alexnet.data.decode_cache import (cache_file_for, default_cache_dir, folder_fingerprint, read_cache,
                                              sha256_file, write_cache)
from cifar_alexnet.runtime.limits import IMAGE_SIZE, MAX_CLASSES, MAX_IMAGE_FILE_BYTES, MIN_CLASSES, format_bytes
from cifar_alexnet.runtime.paths import input_file

__all__ = ["KNOWN_ARCHIVES", "KNOWN_ARCHIVE_COUNTS", "is_skipped_name", "load_image_folder"]

#: Archives recognised by their SHA-256, with the label their numbers must carry.
KNOWN_ARCHIVES = {
    "097287809041e0a666355dfce11470ba1b3f2631fe910d8793c716253f10b297": "CIFAR-10 (JPEG q75 copy)",
}
#: Images per class, ``(train, test)``, that each known archive holds; its listing is checked
#: against them before anything is decoded.
KNOWN_ARCHIVE_COUNTS = {
    "097287809041e0a666355dfce11470ba1b3f2631fe910d8793c716253f10b297": (5_000, 1_000),
}

_SPLITS = ("train", "test")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# ---------------------------------------------------------------------------------------
# Listing: which files are images of which split and class
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ImageFile:
    """One image file of an image folder, not yet decoded."""

    split: str
    class_name: str
    name: str  # path relative to the folder root, for messages and sorting
    read: Callable[[], bytes]


@dataclass
class _Listing:
    """What listing an image folder found, before anything is decoded."""

    files: list[_ImageFile]
    class_dirs: dict[str, set[str]]  # split -> class folder names
    skipped: set[str] = field(default_factory=set)  # hidden entries of the layout, by relative path


def is_skipped_name(name: str) -> bool:
    """Whether an image folder skips an entry of this name: a hidden one, or a Mac's ``__MACOSX`` folder.

    Tools leave such entries in data folders: Jupyter's ``.ipynb_checkpoints``, macOS's
    ``.DS_Store`` and ``._<name>`` files (and, in zip files made on a Mac, a ``__MACOSX``
    folder of them), version control's ``.git``. They are never images of a class.
    """
    return name.startswith(".") or name == "__MACOSX"


def _split_layout(relative_paths: Iterable[str]) -> str:
    """The prefix under which ``train/`` and ``test/`` live: ``""`` or ``"<top>/"``.

    ``""`` when they sit at the top (or when several top-level folders hold them, which is
    ambiguous; the caller then finds no class folders and says so). A skipped top-level
    folder (``__MACOSX``) is never the top.
    """
    prefixes = set()
    for rel in relative_paths:
        parts = rel.split("/")
        if len(parts) >= 2 and parts[0] in _SPLITS:
            prefixes.add("")
        if len(parts) >= 3 and parts[1] in _SPLITS and not is_skipped_name(parts[0]):
            prefixes.add(parts[0] + "/")
    return "" if "" in prefixes else (sorted(prefixes)[0] if len(prefixes) == 1 else "")


def _classify(rel: str, prefix: str) -> tuple[str, str, str] | None:
    """``train/cat/0001.png`` -> ``("train", "cat", "0001.png")``; None for other paths and skipped names."""
    if not rel.startswith(prefix):
        return None
    parts = rel[len(prefix):].split("/")
    if len(parts) != 3 or parts[0] not in _SPLITS or is_skipped_name(parts[1]) or is_skipped_name(parts[2]):
        return None
    return parts[0], parts[1], parts[2]


def _skipped_entry(rel: str, prefix: str) -> str | None:
    """The skipped entry of the layout that ``rel`` lies in (its path up to the skipped name), or None.

    Counted: a skipped class folder or file (``train/.ipynb_checkpoints``, ``train/cat/.DS_Store``)
    and a skipped top-level folder that holds a split (``__MACOSX/train/...``).
    """
    parts = rel.split("/")
    first = next((i for i, part in enumerate(parts) if is_skipped_name(part)), None)
    if first is None:
        return None
    top = prefix.count("/")
    in_layout = rel.startswith(prefix) and len(parts) > top and parts[top] in _SPLITS and first in (top + 1, top + 2)
    holds_a_split = first == 0 and len(parts) > 1 and parts[1] in _SPLITS
    return "/".join(parts[:first + 1]) if in_layout or holds_a_split else None


def _list_image_folder(root: Path) -> _Listing:
    """Image files and class folders (per split) of an unpacked image folder.

    The layout is walked level by level, following symbolic links (a class folder may be a
    link to a folder elsewhere), so its depth is bounded and a link loop cannot recur.
    """
    listing = _Listing([], {s: set() for s in _SPLITS})
    tops = sorted(root.iterdir())
    listing.skipped |= {d.name for d in tops if is_skipped_name(d.name) and any((d / s).is_dir() for s in _SPLITS)}
    prefix = ""
    if not any((root / s).is_dir() for s in _SPLITS):
        holding = [d.name for d in tops if not is_skipped_name(d.name) and any((d / s).is_dir() for s in _SPLITS)]
        prefix = holding[0] + "/" if len(holding) == 1 else ""
    for split in _SPLITS:
        split_dir = root / prefix / split
        if not split_dir.is_dir():
            continue
        for class_dir in sorted(split_dir.iterdir()):
            rel = f"{prefix}{split}/{class_dir.name}"
            if is_skipped_name(class_dir.name):
                listing.skipped.add(rel)
            elif class_dir.is_dir():
                listing.class_dirs[split].add(class_dir.name)
                _list_class_folder(root, class_dir, rel, split, listing)
    listing.files.sort(key=lambda f: f.name)
    return listing


def _list_class_folder(root: Path, class_dir: Path, rel_class: str, split: str, listing: _Listing) -> None:
    """Add the files of one class folder; anything there that is not a regular file (a FIFO, a device) is refused."""
    for entry in class_dir.iterdir():
        rel = f"{rel_class}/{entry.name}"
        if is_skipped_name(entry.name):
            listing.skipped.add(rel)
        elif not entry.is_dir():  # a folder inside a class folder is not part of the layout
            input_file(entry, "image", DataError)
            listing.files.append(_ImageFile(split, class_dir.name, rel, _bounded_reader(entry, f"{root}/{rel}")))


def _bounded_reader(path: Path, where: str) -> Callable[[], bytes]:
    """A function that reads ``path``, refusing it if it holds more than MAX_IMAGE_FILE_BYTES."""

    def read() -> bytes:
        with open(path, "rb") as handle:
            data = handle.read(MAX_IMAGE_FILE_BYTES + 1)
        if len(data) > MAX_IMAGE_FILE_BYTES:
            raise DataError(
                f"{where}: larger than the {format_bytes(MAX_IMAGE_FILE_BYTES)} allowed for an image file "
                "(cifar_alexnet/runtime/limits.py; a 32x32 PNG is about 3 KB); refused without reading it whole. Replace it "
                "with a 32x32 RGB PNG or JPEG, or delete it."
            )
        return data

    return read


def _may_hold_images(rel: str) -> bool:
    """True for ``<split>/<class>/<file>`` and ``<top>/<split>/<class>/<file>`` without a skipped name: worth reading."""
    parts = rel.split("/")
    return (((len(parts) == 3 and parts[0] in _SPLITS) or (len(parts) == 4 and parts[1] in _SPLITS))
            and not any(is_skipped_name(part) for part in parts))


def _list_image_tarball(path: Path) -> _Listing:
    """Image files and class folders of an image folder packed as a (gzipped) tarball.

    The files that may be images are read into memory, each refused beyond
    MAX_IMAGE_FILE_BYTES by its header; nothing is extracted to disk. The archive is checked
    end to end by :func:`cifar_alexnet.data.checked_tar.read_tarball` (gzip CRC and length,
    end-of-archive marker, nothing after it), which also resolves links to files inside it.
    """
    tar = read_tarball(path, _may_hold_images, max_member_bytes=MAX_IMAGE_FILE_BYTES, member_kind="an image file",
                       fix="re-download or re-create it (tar czf data.tar.gz train test)")
    directories = tar.directories | set(tar.folder_links)
    prefix = _split_layout(tar.file_names + [d + "/x" for d in directories])
    listing = _Listing([], {s: set() for s in _SPLITS})
    for rel in [*tar.file_names, *directories]:
        entry = _skipped_entry(rel, prefix)
        if entry is not None:
            listing.skipped.add(entry)
            continue
        parts = rel[len(prefix):].split("/") if rel.startswith(prefix) else []
        if rel in tar.folder_links and parts and parts[0] in _SPLITS and len(parts) <= 2:
            raise DataError(f"{path}: member {rel!r} is a symbolic link to the folder {tar.folder_links[rel]!r}; "
                            "links to folders are not followed inside an archive. Re-create it with tar "
                            "--dereference (-h), which stores the files themselves.")
        if len(parts) >= 2 and parts[0] in _SPLITS and parts[1] and (len(parts) >= 3 or rel in directories):
            listing.class_dirs[parts[0]].add(parts[1])
    for rel in sorted(tar.files):
        parsed = _classify(rel, prefix)
        if parsed is not None:
            listing.files.append(_ImageFile(parsed[0], parsed[1], rel, (lambda data=tar.files[rel]: data)))
    return listing


# ---------------------------------------------------------------------------------------
# Decoding: PNG/JPEG bytes -> (32, 32, 3) uint8
# ---------------------------------------------------------------------------------------


def _decode_image(raw: bytes, where: str) -> np.ndarray:
    """Decode one PNG/JPEG to ``(32, 32, 3)`` uint8, or raise a :class:`DataError`.

    Images that are not 32x32 or not RGB are refused rather than converted: a silent resize
    or grayscale-to-RGB conversion would change the data (and its statistics) behind the
    user's back. The message says how to convert the file. The size is read from the header
    (``Image.open`` reads nothing more) and checked before the pixels are decoded, so an
    image of any other size, a 144-megapixel PNG included, costs only its header. Only
    Pillow's PNG and JPEG readers are tried, whatever the file's suffix.
    """
    from PIL import Image, UnidentifiedImageError

    resize_hint = "Resize it first, e.g. PIL.Image.open(path).convert('RGB').resize((32, 32)).save(path)."
    try:
        with Image.open(io.BytesIO(raw), formats=("PNG", "JPEG")) as image:
            mode, size = image.mode, image.size
            if size != IMAGE_SIZE:
                raise DataError(
                    f"{where}: image is {size[0]}x{size[1]} pixels, expected {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}. "
                    f"{resize_hint}"
                )
            image.load()  # decodes now, so truncated files fail here
            array = np.asarray(image) if mode == "RGB" else None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # see _decode_all
        raise DataError(
            f"{where}: image is far larger than {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} pixels ({describe_exception(exc)}); "
            f"refused before decoding. {resize_hint}"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(
            f"{where}: cannot decode the image ({describe_exception(exc)}); the file is corrupt or truncated. "
            "Replace it with a valid 32x32 RGB PNG or JPEG, or delete it."
        ) from None
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
    file in sorted order, however the threads were scheduled. When anything stops the decode
    -- a bad file, Ctrl-C, SIGTERM -- the chunks not yet started are cancelled, so the error
    (or the interruption) takes effect after the running chunks, not after all of them.
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
    from PIL import Image

    # Pillow warns (DecompressionBombWarning) when it opens an image of more than about 89
    # megapixels; as an error, _decode_image turns it into a DataError instead of a stray
    # warning. The filter is process-wide, so it is set here, around all the threads.
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, 8)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            for future in [pool.submit(decode_chunk, start) for start in range(0, len(files), chunk)]:
                future.result()  # re-raises in chunk order
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return images


def _decode_image_folder(files: list[_ImageFile], class_dirs: dict[str, set[str]], where: Path,
                         source: str, per_class: tuple[int, int] | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """Check the layout, decode every image, return ``(train, test)``.

    ``per_class``: the ``(train, test)`` images per class the archive is known to hold, or None.
    """
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
    if not MIN_CLASSES <= len(classes) <= MAX_CLASSES:
        shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
        raise DataError(
            f"{where}: {len(classes):,} class folder(s) ({shown}); a data set needs {MIN_CLASSES} to {MAX_CLASSES:,} "
            "classes (cifar_alexnet/runtime/limits.py): one class cannot be learned, and a checkpoint of any other "
            "count could not be read back. Add or remove class folders in both train/ and test/."
        )
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
        promised = per_class[_SPLITS.index(split)] if per_class else None
        if promised is not None and set(counts.values()) != {promised}:
            wrong = ", ".join(f"{c}: {n:,}" for c, n in counts.items() if n != promised)
            raise DataError(
                f"{where}: {split}/ should hold {promised:,} images of every class ({source}), but holds {wrong}; "
                "the archive is incomplete or was altered: re-download it."
            )
        images = _decode_all(chosen, where)  # (n, 32, 32, 3)
        labels = np.array([index[f.class_name] for f in chosen], dtype=np.int64)
        splits.append(ArrayDataset(images, labels, classes, source))
    return splits[0], splits[1]


# ---------------------------------------------------------------------------------------
# The whole folder: list, decode, cache
# ---------------------------------------------------------------------------------------


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
        cache_dir: where the decoded ``.npz`` goes (default
            :func:`~cifar_alexnet.data.decode_cache.default_cache_dir`). The cache name carries
            the archive's SHA-256 (for a folder: a hash of every listed image file's name, size
            and modification time), so a changed input is decoded again. It is written
            atomically: an interrupted decode leaves no cache behind. A cache that cannot be
            read, or that was changed since it was written (its checksum, see
            :mod:`~cifar_alexnet.data.decode_cache`), is decoded again and replaced, with a
            ``warning:`` line; one that cannot be written (a read-only file
            system, no permission, a file in the way) costs one ``warning:`` line on stderr,
            and the data is returned uncached. A full disk raises
            :class:`~cifar_alexnet.errors.DiskFullError`, as it does for every file written.
        use_cache: ``False`` decodes every time and writes nothing.

    Returns:
        ``(train, test)``. ``source`` is the archive's known label (e.g. "CIFAR-10 (JPEG q75
        copy)" for the copy in ``shared/data``) or ``"image folder <name>"``.

    Raises:
        DataError: corrupt, truncated or altered archive, corrupt image, image or archive
            member over the limits of :mod:`cifar_alexnet.runtime.limits`, wrong image size or mode,
            empty class folder, train/test classes differ, no images.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found. Pass --data with an existing image folder or .tar.gz.")
    sha, listing = "", None
    if path.is_file():
        sha = key = sha256_file(path)  # a content key: survives moves and copies
    else:
        listing = _listed_folder(path)
        key = folder_fingerprint(path, [path / f.name for f in listing.files])
    cache_path = None
    if use_cache:
        cache_path = cache_file_for(path, key, Path(cache_dir) if cache_dir is not None else default_cache_dir())
        cached = read_cache(cache_path, key) if cache_path.is_file() else None
        if cached is not None:
            return cached
    train, test = _decode_listing(listing if listing is not None else _list_image_tarball(path), path, sha)
    if cache_path is not None:
        _write_cache_or_warn(cache_path, train, test, key)
    return train, test


def _listed_folder(root: Path) -> _Listing:
    """:func:`_list_image_folder`, with a folder that cannot be listed reported as a :class:`DataError`."""
    try:
        return _list_image_folder(root)
    except OSError as exc:
        raise DataError(f"{root}: cannot be listed ({describe_exception(exc)}); check its permissions") from None


def _decode_listing(listing: _Listing, path: Path, sha: str) -> tuple[ArrayDataset, ArrayDataset]:
    """Say what was skipped (once, in one line), then decode what was listed."""
    if listing.skipped:
        n, shown = len(listing.skipped), sorted(listing.skipped)
        print(f"note: {path}: skipped {n} hidden entr{'y' if n == 1 else 'ies'} (names starting with '.', and "
              f"__MACOSX folders, are never images): {', '.join(shown[:3])}{', ...' if n > 3 else ''}",
              file=sys.stderr, flush=True)
    if not listing.files and any(listing.class_dirs.values()):
        raise DataError(f"{path}: no images found under train/<class>/ or test/<class>/. Add 32x32 RGB PNG/JPEG files.")
    source = KNOWN_ARCHIVES.get(sha, f"image folder {path.name}")
    return _decode_image_folder(listing.files, listing.class_dirs, path, source, KNOWN_ARCHIVE_COUNTS.get(sha))


def _write_cache_or_warn(cache_path: Path, train: ArrayDataset, test: ArrayDataset, key: str) -> None:
    """Write the decode cache; a place that cannot be written costs one warning line (a full disk raises)."""
    try:
        write_cache(cache_path, train, test, key)
    except DiskFullError:  # like every other write: one clear error, nothing partial left
        raise
    except OSError as exc:  # read-only, no permission, a file where the folder should be: go on uncached
        why = str(exc) if isinstance(exc, OutputPathError) else describe_exception(exc.__cause__ or exc)
        print(f"warning: cannot write the decode cache {cache_path} ({why}); continuing without it, so the next "
              "run decodes again. Set CIFAR_ALEXNET_CACHE (or --cache-dir) to a writable directory.",
              file=sys.stderr, flush=True)
