"""The original notebook's weights: a ``.pth`` pickle of a ``DataParallel``-wrapped ``AlexNet_SukJoon``.

The notebook saved ``net.state_dict()``, so its keys read ``module.features2.0.weight`` and so
on; this package's :class:`~cifar_alexnet.model.AlexNet` names the same layers
``features.0.weight``. :func:`load_original_state_dict` renames the keys, checks them against
the model and loads them. The file holds weights only: :data:`ORIGINAL_NOTEBOOK_META` supplies
the normalisation and class names the notebook used.
"""

from __future__ import annotations

from collections import OrderedDict
from os import PathLike
from typing import Mapping

import torch

from cifar_alexnet.checkpoints.meta import Arch, CheckpointMeta
from cifar_alexnet.checkpoints.safe_load import check_state_dict_matches, load_torch_file_safely
from cifar_alexnet.data.arrays import CIFAR10_CLASSES
from cifar_alexnet.errors import CheckpointError
from cifar_alexnet.model import AlexNet

__all__ = ["ORIGINAL_KEY_PREFIXES", "ORIGINAL_NOTEBOOK_META", "convert_original_state_dict",
           "load_original_state_dict"]

#: How the original notebook's module names map to ours. Its checkpoints were saved through
#: ``nn.DataParallel``, which adds ``module.`` in front of every key.
ORIGINAL_KEY_PREFIXES = {"features2.": "features.", "classifier2.": "classifier."}

#: Metadata for a ``.pth`` file of the original notebook, which stores weights only. The
#: mean/std are the values the notebook printed for the official CIFAR-10 training set.
ORIGINAL_NOTEBOOK_META = CheckpointMeta(
    classes=CIFAR10_CLASSES,
    mean=(0.49139967861519607, 0.48215840839460783, 0.44653091444546567),
    std=(0.2470322324632819, 0.24348512800005573, 0.26158784172796434),
    arch=Arch(num_classes=10, hidden=2048, dropout=0.2),
    data_source="official CIFAR-10 (weights of the original notebook, alexnet_sukjoon.pth layout)",
)


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Rename the keys of a state_dict saved by the original notebook to this model's keys.

    Accepts keys with or without the ``module.`` prefix that ``nn.DataParallel`` adds, and
    keys that already use this package's names (then nothing changes).
    """
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in state_dict.items():
        new = key[len("module.") :] if key.startswith("module.") else key
        for old_prefix, new_prefix in ORIGINAL_KEY_PREFIXES.items():
            if new.startswith(old_prefix):
                new = new_prefix + new[len(old_prefix) :]
        out[new] = value
    return out


def load_original_state_dict(path: str | PathLike, num_classes: int = 10, hidden: int = 2048,
                             dropout: float = 0.2, map_location: str | torch.device = "cpu") -> AlexNet:
    """Build an :class:`AlexNet` from a ``.pth`` file saved by the original notebook.

    The notebook saved ``net.state_dict()`` of a ``DataParallel``-wrapped ``AlexNet_SukJoon``,
    so its keys read ``module.features2.0.weight`` and so on. The file is read with
    ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
    containers: a file that would run code when unpickled raises instead.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointError: (a ValueError) the file is not a state_dict of this architecture (the message lists the
            missing, unexpected and mis-shaped keys) or it is not a safe-to-load file.
    """
    state = load_torch_file_safely(path, map_location=map_location)
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(key, str) for key in state):
        raise CheckpointError(f"{path}: expected a state_dict (a mapping of names to tensors), got "
                              f"{type(state).__name__}; save the model's state_dict() with torch.save")
    model = AlexNet(num_classes=num_classes, hidden=hidden, dropout=dropout)
    converted = convert_original_state_dict(state)
    check_state_dict_matches(model, converted, source=str(path))
    model.load_state_dict(converted)
    return model
