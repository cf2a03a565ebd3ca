"""cifar_alexnet: a modified AlexNet for CIFAR-10 -- model, data, trainer and command line.

``import cifar_alexnet`` is cheap: it does not import torch. The names below are loaded on
first use::

    from cifar_alexnet import AlexNet, TrainConfig
    from cifar_alexnet.train import train   # the function; ``cifar_alexnet.train`` is the module
    run_dir = train(TrainConfig.from_recipe("original", epochs=2, limit_train=1000))
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it (imported lazily by __getattr__)
_LAZY = {
    "AlexNet": "cifar_alexnet.model",
    "TrainConfig": "cifar_alexnet.recipes",
    "RECIPES": "cifar_alexnet.recipes",
    "load_checkpoint": "cifar_alexnet.checkpoint",
    "save_checkpoint": "cifar_alexnet.checkpoint",
    "model_from_checkpoint": "cifar_alexnet.checkpoint",
    "load_cifar10": "cifar_alexnet.data",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'cifar_alexnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
