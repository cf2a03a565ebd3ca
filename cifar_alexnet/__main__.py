"""``python -m cifar_alexnet ...`` is ``cifar-alexnet ...`` (and what ``torchrun -m cifar_alexnet`` starts)."""

import sys

from cifar_alexnet.cli import main

sys.exit(main())
