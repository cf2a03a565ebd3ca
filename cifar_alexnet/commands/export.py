"""``cifar-alexnet export``: a checkpoint's model as one small float16 file to share (:mod:`cifar_alexnet.checkpoints.export`).

Command line::

    cifar-alexnet export runs/fast-0001/best.safetensors --out alexnet-cifar10-fp16.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cifar_alexnet.checkpoints.export import describe_weights, export_weights
from cifar_alexnet.errors import OutputPathError
from cifar_alexnet.runtime.paths import output_file

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cifar-alexnet export``."""
    parser.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR",
                        help="a .safetensors checkpoint or a run directory (its best.safetensors)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="the file to write, conventionally *.safetensors (an existing file is refused)")


def run(args: argparse.Namespace) -> int:
    """``cifar-alexnet export``: write the file; returns 0 (errors are raised for :mod:`cifar_alexnet.cli`)."""
    if output_file(args.out, "--out").exists():  # through a symbolic link: the file it points to
        raise OutputPathError(f"--out {args.out} already exists; choose another name or remove it first")
    meta = export_weights(args.checkpoint, args.out)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1e6:.1f} MB, float16 weights){describe_weights(meta.weights)}")
    return 0
