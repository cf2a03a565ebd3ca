"""``cifar-alexnet plot``: a run's accuracy and loss curves (:mod:`cifar_alexnet.training.curves`).

Command line::

    cifar-alexnet plot runs/<run> --compare-original
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cifar_alexnet.runtime.paths import output_file
from cifar_alexnet.training.curves import load_history, plot_history

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cifar-alexnet plot``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run directory (or its history.json)")
    parser.add_argument("--out", type=Path, default=None, metavar="PNG",
                        help="output file; None: RUN_DIR/curves.png")
    parser.add_argument("--compare-original", action="store_true",
                        help="overlay the 2020 write-up's published accuracies (every 5th epoch)")


def run(args: argparse.Namespace) -> int:
    """``cifar-alexnet plot``: write the figure; returns 0 (errors are raised for :mod:`cifar_alexnet.cli`)."""
    history = load_history(args.run_dir)
    run_dir = args.run_dir if args.run_dir.is_dir() else args.run_dir.parent
    out = args.out if args.out is not None else run_dir / "curves.png"
    output_file(out, "--out" if args.out is not None else "")  # refused before the figure is drawn
    plot_history(history, out, compare_original=args.compare_original, title=run_dir.name)
    print(f"wrote {out}")
    return 0
