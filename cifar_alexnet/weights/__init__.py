"""Trained weights that install with the package: a trained AlexNet in one line, as torchvision's ``weights=`` works.

::

    from cifar_alexnet.weights import AlexNetWeights, alexnet

    weights = AlexNetWeights.DEFAULT
    model = alexnet(weights=weights)           # trained, in eval mode, on the CPU
    preprocess = weights.transforms()          # uint8 RGB images (N, 32, 32, 3) or PIL images -> (N, 3, 32, 32)
    probabilities = model(preprocess(images)).softmax(dim=1)
    weights.meta["categories"][int(probabilities[0].argmax())]

Each member of :class:`AlexNetWeights` is one float16 safetensors file in this folder: package
data, so it installs with the wheel. ``scripts/ship_weights.py`` writes it from a run recorded
under ``docs/runs/`` (``cifar-alexnet export`` of the run's last epoch), then measures the file
itself on the test set and stores that accuracy in it; :attr:`AlexNetWeights.meta` shows what
the file records. ``cifar-alexnet predict`` and ``cifar-alexnet evaluate`` use
:attr:`AlexNetWeights.DEFAULT` when no checkpoint is given.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from cifar_alexnet.checkpoints.format import model_from_checkpoint, read_meta
from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.errors import DataError, MissingFileError, OptionsError
from cifar_alexnet.inference.evaluate import normalize_uint8_images
from cifar_alexnet.model import AlexNet

__all__ = ["AlexNetWeights", "Preprocess", "alexnet", "shipped_checkpoint"]


@dataclass(frozen=True)
class _Shipped:
    """Where a member's file lies (in this folder) and the recorded run it comes from."""

    file: str
    run: str  # the folder under docs/runs/ that records the training run


class AlexNetWeights(enum.Enum):
    """The trained weights that ship with the package; ``DEFAULT`` names the recommended ones."""

    #: The original 2020 recipe (Adam 1e-3, batch 512, constant rate), trained by this package on
    #: the JPEG copy of CIFAR-10 under bfloat16 autocast; the weights of the run's last epoch.
    ORIGINAL_RECIPE_JPEG = _Shipped(file="alexnet-cifar10-original-fp16.safetensors", run="original-bf16")
    DEFAULT = ORIGINAL_RECIPE_JPEG

    @property
    def path(self) -> Path:
        """The weights file inside the installed package."""
        return Path(__file__).resolve().parent / self.value.file

    @property
    def checkpoint_meta(self) -> CheckpointMeta:
        """Everything the file records (read from its header; no tensor is read)."""
        return _read_meta(self.path)

    @property
    def meta(self) -> dict[str, Any]:
        """What the weights are, in the names torchvision uses where it has one.

        ``categories`` (the class names, in output order), ``mean`` and ``std`` (the
        normalisation), ``recipe``, ``data`` (the data variant trained and measured on),
        ``epoch`` and ``epochs_of_run`` (the weights are those of epoch ``epoch``),
        ``test_acc`` (percent, measured on that test set with this file) and ``run`` (the
        record under ``docs/runs/``).
        """
        meta = self.checkpoint_meta
        record = meta.weights or {}
        return {"categories": list(meta.classes), "mean": list(meta.mean), "std": list(meta.std),
                "recipe": (meta.config or {}).get("recipe"), "data": meta.data_source,
                "epoch": record.get("epoch"), "epochs_of_run": record.get("epochs_of_run"),
                "test_acc": (record.get("measured") or {}).get("test_acc", record.get("test_acc")),
                "run": f"docs/runs/{self.value.run}", "file": self.path.name}

    def transforms(self) -> "Preprocess":
        """The preprocessing these weights expect: 32x32 RGB -> normalised with the training statistics."""
        meta = self.checkpoint_meta
        return Preprocess(meta.mean, meta.std)

    @classmethod
    def resolve(cls, weights: "AlexNetWeights | str") -> "AlexNetWeights":
        """A member, or its name (``"DEFAULT"``, ``"ORIGINAL_RECIPE_JPEG"``)."""
        if isinstance(weights, cls):
            return weights
        try:
            return cls[str(weights)]
        except KeyError:
            raise OptionsError(f"unknown weights {weights!r}; choose one of {', '.join(cls.__members__)}") from None


@functools.cache
def _read_meta(path: Path) -> CheckpointMeta:
    if not path.is_file():
        raise MissingFileError(f"{path}: the shipped weights are missing from this installation; reinstall "
                               "cifar-alexnet (pip install -e .), or pass a checkpoint of your own")
    return read_meta(path)


class Preprocess:
    """uint8 RGB images -> the normalised float32 batch ``(N, 3, 32, 32)`` the network takes.

    Accepts one image or a batch: a NumPy array or tensor of shape ``(32, 32, 3)`` or
    ``(N, 32, 32, 3)`` (uint8, HWC, as CIFAR-10 stores them), a PIL image, or a list of PIL
    images (converted to RGB). Each channel becomes ``(pixel / 255 - mean) / std``.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, images) -> torch.Tensor:
        if not isinstance(images, (np.ndarray, torch.Tensor)):  # PIL images
            images = np.stack([np.array(image.convert("RGB"), dtype=np.uint8)
                               for image in (images if isinstance(images, (list, tuple)) else [images])])
        if images.ndim == 3:
            images = images[None]
        if tuple(images.shape[1:]) != (32, 32, 3):
            raise DataError(f"expected 32x32 RGB images, shape (N, 32, 32, 3) or (32, 32, 3); got {tuple(images.shape)}."
                            " Resize photos first (cifar-alexnet predict --resize centre-crops and resizes)")
        return normalize_uint8_images(images, self.mean, self.std)  # (N, 3, 32, 32)

    def __repr__(self) -> str:
        return (f"Preprocess(uint8 RGB (N, 32, 32, 3) -> float32 (N, 3, 32, 32), "
                f"mean={[round(m, 4) for m in self.mean]}, std={[round(s, 4) for s in self.std]})")


def alexnet(*, weights: AlexNetWeights | str | None = None, device: str | torch.device = "cpu") -> AlexNet:
    """The modified AlexNet: with ``weights``, trained and in eval mode; without, freshly initialised.

    Args:
        weights: an :class:`AlexNetWeights` member or its name (``"DEFAULT"``); ``None`` for an
            untrained network (in train mode, as ``AlexNet()`` is).
        device: where the model goes.

    Raises:
        OptionsError: an unknown name. MissingFileError / CheckpointError: the file is missing or damaged.
    """
    if weights is None:
        return AlexNet().to(device)
    model, _ = model_from_checkpoint(AlexNetWeights.resolve(weights).path, map_location=device)
    return model


def shipped_checkpoint() -> tuple[Path, str]:
    """The file of :attr:`AlexNetWeights.DEFAULT` and the line a command prints when it uses them."""
    weights = AlexNetWeights.DEFAULT
    meta = weights.meta
    return weights.path, (f"no checkpoint given: using the shipped weights {weights.name} (the {meta['recipe']} "
                          f"recipe, epoch {meta['epoch']} of {meta['epochs_of_run']}, {meta['test_acc']:.2f} % "
                          f"on the {meta['data']} test set)")
