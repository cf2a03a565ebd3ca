"""The ``cifar-alexnet`` command line (also ``python -m cifar_alexnet``).

Each subcommand is a module of :mod:`cifar_alexnet.commands` with ``add_arguments(parser)``
and ``run(args) -> int`` (:data:`COMMANDS`). Only the chosen subcommand's module is imported
(they import torch, which takes a second or two), so ``cifar-alexnet --help`` answers at once.

The error policy, applied here once for every command (:mod:`cifar_alexnet.errors`): an error
of this package -- bad options, data, checkpoint, run directory or output path -- is one
``error:`` line and its exit status (2; 3, 4 and 128 + a signal for a training run's own ends);
Ctrl-C is one line and 130, SIGTERM and SIGHUP one line and 143 or 129 (raised as
:class:`~cifar_alexnet.errors.Terminated` where the command was, so its clean-up runs);
anything else is a bug, shown with its traceback and a line that says so (exit 1). In a
multi-process run only rank 0 prints.
"""

from __future__ import annotations

import argparse
import importlib
import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from typing import Iterator, Sequence

from cifar_alexnet.errors import CifarAlexnetError, Terminated

__all__ = ["COMMANDS", "build_parser", "main"]

#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("cifar_alexnet.commands.train", "train the modified AlexNet (default: the original 2020 recipe)"),
    "evaluate": ("cifar_alexnet.commands.evaluate",
                 "test accuracy, per-class accuracy and confusion matrix of a checkpoint"),
    "predict": ("cifar_alexnet.commands.predict", "top-k classes of image files"),
    "export": ("cifar_alexnet.commands.export", "a checkpoint's model as a small float16 file to share (30 MB)"),
    "plot": ("cifar_alexnet.commands.plot", "accuracy and loss curves of a run directory"),
    "summary": ("cifar_alexnet.commands.summary",
                "layer table (shapes, weights, FLOPs, receptive fields) of the torch model"),
}

#: Exit status after Ctrl-C outside a training loop (128 + SIGINT's number).
EXIT_INTERRUPTED = 130
#: Exit status of an unexpected exception: a bug of this package.
EXIT_BUG = 1
#: Seconds a process other than rank 0 of a multi-process run waits before it exits with an
#: error, so that rank 0's message is printed before torchrun stops the workers still running.
REPORT_GRACE_S = 5.0

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
    try:
        with _termination_raises():
            module = importlib.import_module(COMMANDS[args.command][0])
            return int(module.run(args) or 0)
    except CifarAlexnetError as exc:
        return _report(f"{exc.message_prefix}{exc}", exc.exit_code)
    except KeyboardInterrupt as exc:
        what = f"{exc.signal_name} received" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
        return _report(f"{what}: stopped; nothing half-written was left behind",
                       getattr(exc, "exit_code", EXIT_INTERRUPTED))
    except Exception:
        return _report(f"{traceback.format_exc()}error: this is a bug in cifar-alexnet, not a problem with your "
                       "input: an unexpected exception ended the command (traceback above). Please report it "
                       "with the command line you ran.", EXIT_BUG)


@contextlib.contextmanager
def _termination_raises() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise :class:`Terminated` (as SIGINT raises ``KeyboardInterrupt``).

    Without this, either signal ends the process at once, leaving a temporary file or a run
    directory without a checkpoint behind. A training loop installs its own handlers for its
    epochs (:class:`cifar_alexnet.runtime.signals.StopFlag`) and puts these back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set from there
        yield
        return

    own_pid = os.getpid()

    def terminate(signum, frame):
        if os.getpid() != own_pid:  # a forked child (a DataLoader worker) inherited this: end as by default
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Terminated(signal.Signals(signum).name, signum)

    previous = {signum: signal.signal(signum, terminate) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _report(message: str, status: int) -> int:
    """Print ``message`` to stderr (rank 0 of a multi-process run only) and return ``status``.

    torchrun stops every worker as soon as one exits with an error; rank 0 is the one that
    prints, so the others give it time to (torchrun ends them once it has exited).
    """
    if int(os.environ.get("RANK", "0") or 0) == 0:
        print(message, file=sys.stderr, flush=True)
    elif int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        time.sleep(REPORT_GRACE_S)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
