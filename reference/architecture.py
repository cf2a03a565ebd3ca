"""The modified AlexNet, written down once as data.

Every other part of :mod:`reference` (the NumPy network, the layer table, the receptive
fields) reads the network from :data:`LAYERS`; nothing else spells out a kernel size or a
channel count. The PyTorch model in :mod:`cifar_alexnet.model` is written independently and
the tests prove the two agree, so a typo in either one fails a test instead of hiding.

Each :class:`Layer` names

* ``name``   -- the row label of the original write-up's table (``"Conv1"``, ``"BN1"``, ...);
  ReLU and Dropout, which the table leaves out, get names too (``"ReLU1"``, ``"Drop1"``);
* ``kind``   -- one of ``conv``, ``bn2d``, ``relu``, ``maxpool``, ``flatten``, ``dropout``,
  ``linear``, ``bn1d``;
* ``key``    -- the state_dict prefix of the matching module of the PyTorch model
  (``"features.0"``); ``None`` for the flatten step, which is not a module there;
* the hyperparameters the kind needs (``out_channels``, ``kernel``, ``stride``, ``padding``,
  ``features``, ``p``).

Input: one image of 3 x 32 x 32 (NCHW). Network, in order::

    Conv1 64@3x3 s1 p2 -> BN1 -> ReLU -> MaxPool 2 (s2)
    Conv2 192@3x3 s1 p2 -> BN2 -> ReLU -> MaxPool 2 (s2)
    Conv3 384@3x3 p1 -> BN3 -> ReLU
    Conv4 256@3x3 p1 -> BN4 -> ReLU
    Conv5 256@3x3 p1 -> BN5 -> ReLU -> MaxPool 3 (s2)
    flatten (4096) -> Dropout 0.2 -> FC1 4096->2048 -> BN6 -> ReLU
    -> Dropout 0.2 -> FC2 2048->2048 -> BN7 -> ReLU -> FC3 2048->10 -> BN8
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

#: Input image shape (channels, height, width) the network was designed for.
INPUT_SHAPE = (3, 32, 32)
#: Number of CIFAR-10 classes.
NUM_CLASSES = 10
#: Width of the two hidden fully connected layers.
HIDDEN = 2048
#: Dropout's drop probability (PyTorch convention: p is the probability of zeroing).
DROPOUT_P = 0.2
#: BatchNorm defaults, as in PyTorch.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


@dataclass(frozen=True)
class Layer:
    """One step of the network. Hyperparameters that do not apply to ``kind`` are ``None``."""

    name: str
    kind: str
    key: Optional[str]
    out_channels: Optional[int] = None  # conv
    kernel: Optional[int] = None  # conv, maxpool
    stride: Optional[int] = None  # conv, maxpool
    padding: Optional[int] = None  # conv
    features: Optional[int] = None  # linear (out_features), bn1d (num_features)
    p: Optional[float] = None  # dropout: drop probability


def _conv(name, key, out_channels, padding):
    return Layer(name, "conv", key, out_channels=out_channels, kernel=3, stride=1, padding=padding)


def build_layers(hidden: int = HIDDEN, num_classes: int = NUM_CLASSES, p: float = DROPOUT_P):
    """The layer list for a given classifier width, class count and dropout probability.

    The keys follow :class:`cifar_alexnet.model.AlexNet`: ``features.i`` for the
    convolutional stack (the original's ``features2``) and ``classifier.i`` for the
    classifier (the original's ``classifier2``), with the same indices as the original.
    """
    return (
        _conv("Conv1", "features.0", 64, padding=2),
        Layer("BN1", "bn2d", "features.1"),
        Layer("ReLU1", "relu", "features.2"),
        Layer("Pool1", "maxpool", "features.3", kernel=2, stride=2),
        _conv("Conv2", "features.4", 192, padding=2),
        Layer("BN2", "bn2d", "features.5"),
        Layer("ReLU2", "relu", "features.6"),
        Layer("Pool2", "maxpool", "features.7", kernel=2, stride=2),
        _conv("Conv3", "features.8", 384, padding=1),
        Layer("BN3", "bn2d", "features.9"),
        Layer("ReLU3", "relu", "features.10"),
        _conv("Conv4", "features.11", 256, padding=1),
        Layer("BN4", "bn2d", "features.12"),
        Layer("ReLU4", "relu", "features.13"),
        _conv("Conv5", "features.14", 256, padding=1),
        Layer("BN5", "bn2d", "features.15"),
        Layer("ReLU5", "relu", "features.16"),
        Layer("Pool3", "maxpool", "features.17", kernel=3, stride=2),
        Layer("Flatten", "flatten", None),
        Layer("Drop1", "dropout", "classifier.0", p=p),
        Layer("FC1", "linear", "classifier.1", features=hidden),
        Layer("BN6", "bn1d", "classifier.2", features=hidden),
        Layer("ReLU6", "relu", "classifier.3"),
        Layer("Drop2", "dropout", "classifier.4", p=p),
        Layer("FC2", "linear", "classifier.5", features=hidden),
        Layer("BN7", "bn1d", "classifier.6", features=hidden),
        Layer("ReLU7", "relu", "classifier.7"),
        Layer("FC3", "linear", "classifier.8", features=num_classes),
        Layer("BN8", "bn1d", "classifier.9", features=num_classes),
    )


#: The network as the original write-up built it.
LAYERS = build_layers()

#: The rows of the original write-up's table (b), in its order: ReLU, dropout and
#: flatten are not rows there.
TABLE_ROWS = tuple(layer.name for layer in LAYERS if layer.kind not in ("relu", "dropout", "flatten"))


def layer(name: str) -> Layer:
    """Look a layer of :data:`LAYERS` up by its table name, e.g. ``layer("Conv3")``."""
    for item in LAYERS:
        if item.name == name:
            return item
    raise KeyError(f"no layer named {name!r}; known: {', '.join(x.name for x in LAYERS)}")
