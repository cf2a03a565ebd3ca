"""The modified AlexNet of the 2020 write-up, in PyTorch.

Layer for layer the network of the original notebook (``AlexNet_SukJoon``): five 3x3
convolutions (64, 192, 384, 256, 256 channels), a BatchNorm after every convolution and
every linear layer (including the last one), three max-pools, and a classifier
4096 -> 2048 -> 2048 -> 10 with dropout 0.2 in front of the first two linear layers.
14,869,598 parameters.

Two changes that do not change what is computed:

* the two ``nn.Sequential`` stacks are called ``features`` and ``classifier`` (the
  original's ``features2`` and ``classifier2``); the indices inside them are the original's,
  so :func:`cifar_alexnet.checkpoints.original_pth.load_original_state_dict` only renames;
* the forward pass flattens with :func:`torch.flatten` instead of ``x.view``, which also
  works for ``channels_last`` tensors.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AlexNet"]

class AlexNet(nn.Module):
    """The modified AlexNet for 3x32x32 images.

    Args:
        num_classes: size of the output (and of the final BatchNorm1d). Default 10.
        hidden: width of the two hidden linear layers. Default 2048.
        dropout: drop probability of the two dropout layers (PyTorch's ``p``: the
            probability of *zeroing* an activation). Default 0.2.

    Shapes:
        input ``(N, 3, 32, 32)`` floating point, ``N >= 1`` (``N >= 2`` in training mode, as
        BatchNorm1d needs more than one value per channel); output ``(N, num_classes)``
        logits. ``features`` alone accepts any spatial size of at least 7x7 (used to measure
        receptive fields).
    """

    def __init__(self, num_classes: int = 10, hidden: int = 2048, dropout: float = 0.2):
        super().__init__()
        if num_classes < 1 or hidden < 1:
            raise ValueError(f"AlexNet: num_classes and hidden must be >= 1, got {num_classes}, {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"AlexNet: dropout is a drop probability in [0, 1), got {dropout}")
        self.num_classes, self.hidden, self.dropout = num_classes, hidden, dropout
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2),  # 0  Conv1 -> 64x34x34
            nn.BatchNorm2d(64),  # 1  BN1
            nn.ReLU(inplace=True),  # 2
            nn.MaxPool2d(kernel_size=2),  # 3  Pool1 -> 64x17x17
            nn.Conv2d(64, 192, kernel_size=3, padding=2),  # 4  Conv2 -> 192x19x19
            nn.BatchNorm2d(192),  # 5  BN2
            nn.ReLU(inplace=True),  # 6
            nn.MaxPool2d(kernel_size=2),  # 7  Pool2 -> 192x9x9
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # 8  Conv3 -> 384x9x9
            nn.BatchNorm2d(384),  # 9  BN3
            nn.ReLU(inplace=True),  # 10
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 11 Conv4 -> 256x9x9
            nn.BatchNorm2d(256),  # 12 BN4
            nn.ReLU(inplace=True),  # 13
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # 14 Conv5 -> 256x9x9
            nn.BatchNorm2d(256),  # 15 BN5
            nn.ReLU(inplace=True),  # 16
            nn.MaxPool2d(kernel_size=3, stride=2),  # 17 Pool3 -> 256x4x4
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),  # 0
            nn.Linear(256 * 4 * 4, hidden),  # 1  FC1
            nn.BatchNorm1d(hidden),  # 2  BN6
            nn.ReLU(inplace=True),  # 3
            nn.Dropout(p=dropout),  # 4
            nn.Linear(hidden, hidden),  # 5  FC2
            nn.BatchNorm1d(hidden),  # 6  BN7
            nn.ReLU(inplace=True),  # 7
            nn.Linear(hidden, num_classes),  # 8  FC3
            nn.BatchNorm1d(num_classes),  # 9  BN8 (the original normalises the logits too)
        )

    def arch(self) -> dict:
        """The constructor arguments, as stored in checkpoint metadata."""
        return {"num_classes": self.num_classes, "hidden": self.hidden, "dropout": self.dropout}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, 32, 32) or not x.is_floating_point():
            raise ValueError(
                "AlexNet expects a floating-point batch of shape (N, 3, 32, 32) (NCHW, normalised "
                f"images); got shape {tuple(x.shape)} dtype {x.dtype}. Convert uint8 images with "
                "x.float() / 255 and normalise, and add a batch dimension with x[None] for one image."
            )
        x = self.features(x)  # (N, 256, 4, 4)
        x = torch.flatten(x, 1)  # (N, 4096); works for channels_last memory too
        return self.classifier(x)  # (N, num_classes)
