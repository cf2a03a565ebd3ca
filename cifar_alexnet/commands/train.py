"""``cifar-alexnet train``: the command line of :func:`cifar_alexnet.training.loop.train`.

The options are generated from :class:`~cifar_alexnet.training.config.TrainConfig`
(:mod:`cifar_alexnet.training.options`). Errors, interruptions and their exit statuses are
handled once, for every command, by :func:`cifar_alexnet.cli.main`.
"""

from __future__ import annotations

import argparse

from cifar_alexnet.training.loop import train
from cifar_alexnet.training.options import add_arguments as add_config_arguments
from cifar_alexnet.training.options import config_from_args

__all__ = ["EPILOG", "add_arguments", "run"]

EPILOG = """examples:
  cifar-alexnet train --download                      # the original recipe: Adam 1e-3, batch 512, 100 epochs
  cifar-alexnet train --data data/cifar10-jpeg.tar.gz --recipe fast
  cifar-alexnet train --limit-train 1000 --limit-test 1000 --epochs 2 --batch-size 64 --device cpu
  cifar-alexnet train --resume runs/20260101-120000-original      # continue a stopped run
  torchrun --nproc_per_node=4 -m cifar_alexnet train --recipe fast --sync-bn

Ctrl-C (SIGINT), SIGTERM or SIGHUP finish the current step, save a resumable checkpoint, print the resume
command and exit with 130 / 143 / 129. A NaN/Inf loss stops the run (exit 3) and keeps the last good
checkpoint. Bad options or data exit with 2 before anything is written; a full disk exits with 4,
leaving the previous version of every file intact. One trainer at a time may use a run directory
(RUN_DIR/.lock); --resume refuses options that differ from the stored run. Multi-process runs (torchrun): --batch-size is the
GLOBAL batch and must be divisible by the number of processes; the learning rate is NOT scaled with the
number of processes.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` options and the examples."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """The ``train`` subcommand: train, then return 0."""
    train(config_from_args(args))
    return 0
