"""Evaluate a trained model: accuracy, per-class accuracy, loss and the confusion matrix.

Conventions, written once:

* the **confusion matrix** ``C`` has one row per *true* class and one column per *predicted*
  class: ``C[t, p]`` counts the test images of class ``t`` that the model called ``p``. So
  the diagonal holds the correct answers, ``C.sum()`` is the number of images, and row ``t``
  sums to the number of images of class ``t``;
* **accuracy** and **per-class accuracy** are fractions in [0, 1] (printed as percentages);
  per-class accuracy is the diagonal divided by the row sums (the *recall* of each class);
* **loss** is the mean cross-entropy of the logits (no label smoothing), in nats.

Everything is accumulated on the model's device and read back once at the end -- calling
``.item()`` on every batch would make the GPU wait for the CPU after each batch.

The command line: :mod:`cifar_alexnet.commands.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from cifar_alexnet.data.device_loader import normalize
from cifar_alexnet.runtime.device import autocast, sum_dtype

__all__ = ["EvalResult", "confusion_and_loss", "evaluate_model", "normalize_uint8_images"]


@dataclass
class EvalResult:
    """The outcome of :func:`evaluate_model`.

    Attributes:
        confusion: ``(C, C)`` int64, rows = true class, columns = predicted class.
        loss: mean cross-entropy over all images.
        classes: the ``C`` class names.
    """

    confusion: np.ndarray
    loss: float
    classes: tuple[str, ...]

    @property
    def count(self) -> int:
        """Number of images evaluated."""
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def accuracy(self) -> float:
        """Fraction of images classified correctly."""
        return self.correct / self.count if self.count else float("nan")

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """``(C,)``: fraction of each true class classified correctly (NaN for a class with no images)."""
        per_class_total = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion) / per_class_total

    def to_dict(self) -> dict:
        """A JSON-friendly dict (NaN per-class accuracies become ``None``)."""
        return {
            "count": self.count,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "classes": list(self.classes),
            "per_class_accuracy": {c: (None if np.isnan(a) else float(a))
                                   for c, a in zip(self.classes, self.per_class_accuracy)},
            "confusion_matrix": self.confusion.tolist(),
        }


def normalize_uint8_images(images, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 images ``(N, 32, 32, 3)`` (HWC, as stored) -> normalised float32 ``(N, 3, 32, 32)``.

    ``x = (pixel / 255 - mean[c]) / std[c]`` per channel: :func:`cifar_alexnet.data.device_loader.normalize`,
    the same float operations as torchvision's ``ToTensor`` + ``Normalize``.
    """
    if not isinstance(images, torch.Tensor):
        images = np.asarray(images)
        images = torch.from_numpy(images if images.flags.writeable else images.copy())  # torch wants writable memory
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3); got {tuple(images.shape)} {images.dtype}")
    mean_t, std_t = (torch.tensor(v, dtype=torch.float32, device=images.device) for v in (mean, std))
    return normalize(images.permute(0, 3, 1, 2), mean_t, std_t).contiguous()  # (N, 3, H, W)


def _batches_from_arrays(images, labels, batch_size: int, mean, std) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches from whole-set arrays: uint8 NHWC (normalised here) or float NCHW (as is)."""
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels).long()
    is_uint8 = (images.dtype == torch.uint8) if isinstance(images, torch.Tensor) else (np.asarray(images).dtype == np.uint8)
    if is_uint8 and (mean is None or std is None):
        raise ValueError("evaluate_model: uint8 images need mean= and std= (the normalisation of training, "
                         "stored in the checkpoint metadata)")
    if len(images) != len(labels):
        raise ValueError(f"evaluate_model: {len(images)} images but {len(labels)} labels")
    for start in range(0, len(labels), batch_size):
        chunk = images[start:start + batch_size]
        x = normalize_uint8_images(chunk, mean, std) if is_uint8 else torch.as_tensor(chunk)
        yield x, labels[start:start + batch_size]


@torch.no_grad()
def evaluate_model(model: nn.Module, data, *, classes: Sequence[str] | None = None, batch_size: int = 500,
                   mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                   tta_flip: bool = False, channels_last: bool = False) -> EvalResult:
    """Classify a whole data set and summarise the result.

    Args:
        model: maps ``(N, 3, 32, 32)`` float to ``(N, C)`` logits. Evaluated in ``eval()``
            mode (its previous mode is restored afterwards) on its own device.
        data: either an iterable of ``(x, y)`` batches (a ``DataLoader``, a ``DeviceLoader``:
            ``x`` normalised float ``(B, 3, 32, 32)``, ``y`` int ``(B,)``), or a tuple
            ``(images, labels)`` of whole-set arrays: uint8 ``(N, 32, 32, 3)`` images (then
            ``mean`` and ``std`` are required) or normalised float ``(N, 3, 32, 32)``.
        classes: the class names; default ``("0", "1", ...)``.
        batch_size: for ``(images, labels)`` input.
        mean, std: per-channel normalisation for uint8 input, in [0, 1] units.
        tta_flip: average the logits of each image and its mirror image.
        channels_last: feed the model NHWC-strided tensors.

    Returns:
        :class:`EvalResult`.
    """
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], tuple):
        batches = _batches_from_arrays(data[0], data[1], batch_size, mean, std)
    else:
        batches = data
    confusion, loss_sum = confusion_and_loss(model, batches, tta_flip=tta_flip, channels_last=channels_last)
    if confusion is None:
        raise ValueError("evaluate_model: the data is empty")
    matrix = confusion.cpu().numpy()  # (true, predicted)
    num_classes = matrix.shape[0]
    names = tuple(classes) if classes is not None else tuple(str(i) for i in range(num_classes))
    if len(names) != num_classes:
        raise ValueError(f"evaluate_model: {len(names)} class names for a model with {num_classes} outputs")
    return EvalResult(confusion=matrix, loss=float(loss_sum.item()) / int(matrix.sum()), classes=names)


@torch.no_grad()
def confusion_and_loss(model: nn.Module, batches: Iterable, *, num_classes: int | None = None,
                       tta_flip: bool = False, amp: str = "off",
                       channels_last: bool = False) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The evaluation loop (of ``evaluate`` and of the trainer): model in eval mode over ``batches``.

    Args:
        model: ``(B, 3, 32, 32)`` -> ``(B, C)`` logits; its previous mode is restored afterwards.
        batches: ``(x, y)`` pairs; ``x`` is moved to the model's device and dtype.
        num_classes: ``C``, for a zero matrix when ``batches`` is empty (None: no matrix then).
        tta_flip: average the logits of each image and of its mirror image.
        amp: autocast precision (``"off"``, ``"bf16"``, ``"fp16"``); the logits are compared in float32 or more.
        channels_last: feed the model NHWC-strided tensors.

    Returns:
        ``(confusion, loss_sum)`` on the model's device: ``confusion[t, p]`` int64 ``(C, C)``
        counts the images of true class ``t`` predicted as ``p`` (``None`` when nothing was seen
        and ``num_classes`` is None); ``loss_sum`` the summed cross-entropy (float64; float32 on MPS).
    """
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    loss_sum = torch.zeros((), dtype=sum_dtype(device), device=device)
    codes: list[torch.Tensor] = []  # true * C + predicted per batch; counted once at the end
    was_training = model.training
    model.eval()
    try:
        for x, y in batches:
            if y.shape[0] == 0:  # a process's share of a small last batch can be empty
                continue
            x = x.to(device, dtype, non_blocking=True)
            y = y.to(device, non_blocking=True).long()
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp):
                logits = model(x).to(dtype)  # (B, C); autocast may give bf16/fp16
                if tta_flip:
                    logits = (logits + model(x.flip(3)).to(dtype)) / 2  # flip the width axis
            num_classes = logits.shape[1]
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").to(loss_sum.dtype)
            codes.append(y * num_classes + logits.argmax(dim=1))
    finally:
        model.train(was_training)
    if num_classes is None:
        return None, loss_sum
    # One bincount for the whole set: on a GPU each bincount reads its input's min and max back
    # to the host, so counting per batch would stall the device twice per batch.
    codes_all = torch.cat(codes) if codes else torch.zeros(0, dtype=torch.int64, device=device)
    confusion = torch.bincount(codes_all, minlength=num_classes * num_classes)
    return confusion.view(num_classes, num_classes), loss_sum
