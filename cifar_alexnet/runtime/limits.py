"""How large the files the data readers accept may be: each bound with the size it guards against.

A data file's size is checked before the reader holds it in memory: an image file's or a
batch file's byte count from the tar header or from ``stat``, an image's width and height
from its header (Pillow's ``Image.open`` reads only the header; the pixels are decoded by
``load()``), an archive's uncompressed length while it is being decompressed. So a small
``.tar.gz`` that inflates to gigabytes, or a PNG of 144 megapixels, is refused after reading
a few hundred bytes of it, with a :class:`~cifar_alexnet.errors.DataError` that names
the file, the member and the limit.

The bounds leave a wide margin over real CIFAR-10 (numbers from the JPEG copy of
CIFAR-10 and from the official archive's file list):

=============================  ==========  ================================================
limit                          value       CIFAR-10 itself
=============================  ==========  ================================================
``MAX_IMAGE_FILE_BYTES``       1 MiB       one JPEG q75 image: at most 1,124 bytes
``IMAGE_SIZE``                 32 x 32     every image (the readers accept nothing else)
``MAX_BATCH_FILE_BYTES``       64 MiB      one official batch: 31,035,704 bytes
``MAX_PICKLE_OPCODES``         1,000,000   one official batch: about 40,000 instructions
``MAX_ARCHIVE_BYTES``          1 GiB       the JPEG copy's tar: 92,692,480 bytes;
                                           the official tar: about 186 MB
``MAX_ARCHIVE_MEMBERS``        1,000,000   60,000 images and 22 folders
``MAX_PREDICT_PIXELS``         64 million  (``predict --resize`` takes photos of any size)
``MAX_HISTORY_BYTES``          8 MiB       a 100-epoch ``history.json``: about 30 KB
``MIN_CLASSES``, ``MAX_CLASSES``  2, 1,000  10 classes
``MAX_HIDDEN``                 16,384      the network's hidden width: 2,048
``MAX_COUNTER``                10^9        100 epochs of 98 steps
``MAX_WORKERS``                256         the original's 4 loader workers
=============================  ==========  ================================================

The last four bound what a checkpoint's metadata or a run's ``config.json`` may ask for, so
that a hand-edited or damaged file cannot make the trainer allocate a 100-GB layer, loop for
ever, or start a million processes.

A data set that is genuinely larger (a bigger image-folder data set, say) needs these raised
here; nothing else in the package assumes their values.
"""

from __future__ import annotations

__all__ = ["MAX_IMAGE_FILE_BYTES", "IMAGE_SIZE", "MAX_BATCH_FILE_BYTES", "MAX_PICKLE_OPCODES", "MAX_ARCHIVE_BYTES",
           "MAX_ARCHIVE_MEMBERS", "MAX_PREDICT_PIXELS", "MAX_HISTORY_BYTES", "MIN_CLASSES", "MAX_CLASSES", "MAX_HIDDEN",
           "MAX_COUNTER", "MAX_WORKERS", "count_problem", "subset_size_problem", "format_bytes"]

#: Largest image file (PNG/JPEG) an image folder may hold, in bytes. A 32x32 RGB image is
#: 3,072 bytes of pixels; PNG stores it in about 3 KB, JPEG q75 in about 1 KB.
MAX_IMAGE_FILE_BYTES = 1 << 20

#: Width and height, in pixels, every image must have; read from the header before decoding,
#: so an image of any other size costs only its header.
IMAGE_SIZE = (32, 32)

#: Largest file of the official format (``data_batch_*``, ``test_batch``, ``batches.meta``),
#: in bytes: twice an official batch (10,000 images of 3,072 bytes, plus labels and file names).
MAX_BATCH_FILE_BYTES = 64 << 20

#: Most instructions the unpickler runs for one batch file (:mod:`cifar_alexnet.data.safe_pickle`).
#: Each adds at most one object or reference, so this bounds the memory and time of a pickle
#: built to explode (nested shared references), whatever its size on disk.
MAX_PICKLE_OPCODES = 1_000_000

#: Largest uncompressed length of a ``.tar``/``.tar.gz``, in bytes, counted while it is
#: decompressed (headers, members, padding and whatever follows the end-of-archive marker).
MAX_ARCHIVE_BYTES = 1 << 30

#: Most entries (files, folders, links) a tarball may list; Python's tarfile keeps one
#: ``TarInfo`` per entry in memory.
MAX_ARCHIVE_MEMBERS = 1_000_000


#: Most pixels an image given to ``cifar-alexnet predict --resize`` may have (a 64-megapixel
#: photo; decoded, 192 MB of RGB). Read from the header, checked before the pixels are decoded.
MAX_PREDICT_PIXELS = 64_000_000

#: Largest ``history.json`` that ``plot`` reads, in bytes (a run's epoch row takes about 300 bytes,
#: so 25,000 epochs fit); read whole only below this size.
MAX_HISTORY_BYTES = 8 << 20

#: Fewest and most classes a data set, a training run or a checkpoint may have. One class
#: cannot be learned (the answer is always right) and BatchNorm1d over one logit normalises it
#: to zero; a thousand is ImageNet's count, far beyond CIFAR's ten.
MIN_CLASSES, MAX_CLASSES = 2, 1000

#: Widest hidden layer accepted: 8 times the original's 2048 (FC2 alone is then 1 GiB of float32).
MAX_HIDDEN = 16384

#: Largest epoch or step counter accepted (and largest ``--epochs``).
MAX_COUNTER = 10**9

#: Most DataLoader worker processes (``--workers``) a run may start.
MAX_WORKERS = 256


def count_problem(option: str, value: int, low: int, high: int = MAX_COUNTER, why: str = "") -> str | None:
    """Why ``option value`` is outside ``low..high``, as a message part; None when it is inside.

    Every command checks its count options (``--limit-test``, ``--batch-size``, ``--epochs`` ...)
    with this one rule, so the same value is refused the same way everywhere.
    """
    if low <= value <= high:
        return None
    return f"{option} {value}: must be in {low:,}..{high:,}" + (f" ({why})" if why else "")


def subset_size_problem(option: str, value: int | None) -> str | None:
    """:func:`count_problem` for ``--limit-train`` and ``--limit-test``: at least one image per class."""
    return None if value is None else count_problem(option, value, 10, why="at least one image per class")


def format_bytes(n: int) -> str:
    """``1048576`` -> ``"1 MiB"``; ``3221225472`` -> ``"3 GiB"``; small counts in bytes."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"
