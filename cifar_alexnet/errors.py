"""The package's own exceptions: problems with what a user gave it, each explained in one line.

The error policy, stated once: every problem with the user's input -- an option, a data set, a
checkpoint, a run directory, an output path -- is raised as a subclass of
:class:`CifarAlexnetError` whose message names the file or option, what is wrong and the fix.
The command line (:mod:`cifar_alexnet.cli`) prints such an error as one ``error:`` line and
exits with its ``exit_code``: 2, or 4 for a full disk (:class:`DiskFullError`); a training
run's own ends -- a diverged loss (3), a signal (128 + its number) -- are subclasses too. Any
other exception is a bug of this package: the command line shows its traceback and says so.

Ctrl-C (``KeyboardInterrupt``) outside a training loop is one line and exit 130; SIGTERM and
SIGHUP are raised there as :class:`Terminated`, a ``KeyboardInterrupt``, so that the same
clean-up runs (temporary files removed, a run directory without a checkpoint removed) and the
process exits with 128 + the signal's number (143, 129). A training loop handles all three
itself: it saves a resumable checkpoint first (:mod:`cifar_alexnet.runtime.signals`).

The classes also derive from the built-in exception a caller would expect (``ValueError`` for
bad values, ``FileNotFoundError`` for a missing file, ``OSError`` for a full disk), so code
written against those keeps working.
"""

from __future__ import annotations

__all__ = ["CifarAlexnetError", "OptionsError", "DataError", "CheckpointError", "RunDirError", "MissingFileError",
           "OutputPathError", "DiskFullError", "Terminated"]


class CifarAlexnetError(Exception):
    """Base of every error the command line reports as one line; ``exit_code`` is the process's exit status."""

    exit_code = 2
    message_prefix = "error: "


class OptionsError(CifarAlexnetError, ValueError):
    """A command-line option, or a run's ``config.json``, has a value that cannot be used."""


class DataError(CifarAlexnetError, ValueError):
    """A data set is missing, unreadable, corrupt or not in a known layout."""


class CheckpointError(CifarAlexnetError, ValueError):
    """A checkpoint file cannot be read or does not fit the model."""


class RunDirError(CifarAlexnetError, ValueError):
    """A run directory is in use, not empty for a new run, or not a run to resume."""


class MissingFileError(CifarAlexnetError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class OutputPathError(CifarAlexnetError, OSError):
    """An output path cannot be written: its folder is missing or read-only, or something else stands there."""


class DiskFullError(CifarAlexnetError, OSError):
    """The disk filled up while a file was written; the previous version of the file is intact (exit 4)."""

    exit_code = 4


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP outside a training loop, raised where the program was, like Ctrl-C's ``KeyboardInterrupt``.

    ``exit_code`` is 128 + the signal's number (143 for SIGTERM, 129 for SIGHUP).
    """

    def __init__(self, signal_name: str, signal_number: int):
        super().__init__(f"{signal_name} received")
        self.signal_name, self.exit_code = signal_name, 128 + signal_number
