"""Train the modified AlexNet with the ``fast`` recipe (SGD + one-cycle, bf16, channels-last, TTA).

Not measured on a GPU in this project yet (see the Training page of the documentation); this
script is how to measure it. Everything else is as in ``train_original.py``.

Usage::

    python examples/train_fast.py --download                     # GPU, official CIFAR-10
    python examples/train_fast.py --data ../shared/data/cifar10-jpeg.tar.gz
    python examples/train_fast.py --smoke                        # seconds on a CPU (float32 there)
"""

from __future__ import annotations

import sys

from train_original import main

if __name__ == "__main__":
    sys.exit(main(recipe="fast"))
