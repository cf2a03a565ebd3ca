"""cifar_alexnet: a modified AlexNet for CIFAR-10 -- the network, its data, training, and the command line.

The package in reading order; each name has one home, imported from there::

    cifar_alexnet/
      model.py         the network: AlexNet (imports nothing else of the package)
      errors.py        the exceptions every part raises for bad input, and the error policy
      runtime/         machinery a reader can skip: atomic writes, devices, signals, locks,
                       random states, multi-process helpers, the size limits of every input
      data/            CIFAR-10 on disk -> uint8 arrays -> normalised, augmented batches
      checkpoints/     weights on disk: the safetensors format, its metadata, safe loading,
                       the original notebook's .pth, float16 export
      inference/       a trained model at work: evaluation (confusion matrix) and prediction
      weights/         the trained weights that ship with the package: alexnet(weights="DEFAULT")
      training/        the configuration and recipes, optimizer and schedule, the loop, the run directory
      commands/        one module per subcommand of the command line
      cli.py           the command line: dispatches to commands/ and applies the error policy

Lower layers never import higher ones: model, errors, runtime -> data, checkpoints ->
inference -> weights, training -> commands -> cli (``tests/architecture/test_imports.py`` checks it).
``docs/codebase.md`` walks through the same map with the questions a newcomer asks.

``import cifar_alexnet`` is cheap: it does not import torch. Typical use::

    from cifar_alexnet.weights import alexnet
    model = alexnet(weights="DEFAULT")          # trained, in eval mode

    from cifar_alexnet.model import AlexNet
    from cifar_alexnet.training.recipes import config_from_recipe
    from cifar_alexnet.training.loop import train
    run_dir = train(config_from_recipe("original", epochs=2, limit_train=1000))
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
