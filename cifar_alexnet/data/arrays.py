"""The in-memory image set that every loader returns, and the conventions it carries.

Whatever the data looked like on disk (the official pickled archive, a folder of PNGs, a
tarball of JPEGs), :func:`cifar_alexnet.data.cifar10.load_cifar10` hands back two
:class:`ArrayDataset` objects, train and test. This module defines that common form.

Conventions (written once, used everywhere in the package):

* an image set is a ``uint8`` array of shape ``(N, 32, 32, 3)``: N images, height, width,
  channels R, G, B ("HWC", the layout of ``torchvision.datasets.CIFAR10.data``);
* labels are ``int64`` of shape ``(N,)``, an index into ``classes``;
* per-channel statistics are in ``[0, 1]`` units (a pixel value divided by 255).

Any problem with data on disk raises :class:`DataError` (a ``ValueError``) whose message
names the file and says how to fix it; :func:`describe_exception` is the one way the
readers quote the low-level error that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


__all__ = ["CIFAR10_CLASSES", "IMAGE_SHAPE", "ArrayDataset", "describe_exception"]

#: The ten classes in the official label order (label ``i`` is ``CIFAR10_CLASSES[i]``). It is
#: also the alphabetical order, so an image folder with these names gets the official labels.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
#: Shape of one image, height x width x channels.
IMAGE_SHAPE = (32, 32, 3)


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"`` on one line, at most 120 characters (messages can quote binary garbage).

    Used inside :class:`DataError` messages to say what the underlying reader (``pickle``,
    ``tarfile``, PIL, a download) complained about.
    """
    text = str(exc)
    text = text if text.isprintable() and len(text) <= 100 else repr(text[:100])
    return f"{type(exc).__name__}: {text}"


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
