"""The ``cifar-alexnet`` command line (also ``python -m cifar_alexnet``).

Each subcommand is a module with ``add_arguments(parser)`` and ``run(args) -> int``
(:data:`COMMANDS`). Only the chosen subcommand's module is imported (they import torch,
which takes a second or two), so ``cifar-alexnet --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

__all__ = ["COMMANDS", "build_parser", "main"]

#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("cifar_alexnet.train", "train the modified AlexNet (default: the original 2020 recipe)"),
    "evaluate": ("cifar_alexnet.evaluate", "test accuracy, per-class accuracy and confusion matrix of a checkpoint"),
    "predict": ("cifar_alexnet.predict", "top-k classes of image files"),
    "export": ("cifar_alexnet.export", "a checkpoint's model as a small float16 file to share (30 MB)"),
    "plot": ("cifar_alexnet.plots", "accuracy and loss curves of a run directory"),
    "summary": ("cifar_alexnet.summary", "layer table (shapes, weights, FLOPs, receptive fields) of the torch model"),
}

EPILOG = """examples:
  cifar-alexnet train --download                    # the original recipe (Adam 1e-3, batch 512, 100 epochs)
  cifar-alexnet train --data data/cifar10-jpeg.tar.gz --recipe fast
  cifar-alexnet evaluate runs/<run>/best.safetensors --data data/cifar10-jpeg.tar.gz
  cifar-alexnet predict runs/<run> cat.png dog.jpg
  cifar-alexnet export runs/<run> --out alexnet-fp16.safetensors
  cifar-alexnet plot runs/<run>
  cifar-alexnet summary

`cifar-alexnet COMMAND --help` lists every option of a command with its default.
"""


def _version() -> str:
    from cifar_alexnet import __version__

    return __version__


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported to add its options (None: none)."""
    parser = argparse.ArgumentParser(
        prog="cifar-alexnet", description="Train, evaluate and inspect the modified AlexNet on CIFAR-10.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text,
                                    formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if name == command:
            importlib.import_module(module_name).add_arguments(sub_parser)
    return parser


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The first argument that names a command (options before it belong to the top level)."""
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (also used as the console script)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _chosen_command(argv)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
