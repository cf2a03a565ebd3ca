"""The paths a command reads and writes: a regular file (or, for a write, nothing yet), nothing else.

Every file the package writes -- a run directory's files, a decode cache, the ``--out`` of
``evaluate``, ``export`` and ``plot`` -- goes through :func:`output_file`, called by
:func:`cifar_alexnet.runtime.atomic.atomic_path` and, before any work starts, by each command
for its ``--out``. An atomic write renames a new file over the path, and a rename replaces
whatever the path names: run as root, ``--out /dev/full`` would replace the machine's
``/dev/full`` with a PNG. So a path is written only where a regular file or nothing stands;
a folder, a device, a FIFO (named pipe) or a socket is refused with one line that says which.

Symbolic links are **followed**, as ``open(path, "w")`` follows them: the file the link points
to is replaced (by a temporary file written next to it, then renamed), and the link itself
stays as it was. The file it points to must itself be a regular file or not exist yet; a
link that points to itself, or in a circle, is refused.

Files the package reads by name -- a checkpoint, an image given to ``predict``, a run's
``history.json`` -- go through :func:`input_file`: a missing path "does not exist", and a
path that exists but is not a regular file is refused as "not a regular file" (reading a
FIFO would wait for a writer for ever; a folder or a device is not a file to read).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from cifar_alexnet.errors import CifarAlexnetError, MissingFileError, OutputPathError

__all__ = ["file_kind", "input_file", "output_file"]

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def file_kind(mode: int) -> str:
    """What ``st_mode`` describes, for messages: ``"a regular file"``, ``"a folder"``, ``"a FIFO (named pipe)"`` ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((kind for test, kind in _KINDS if test(mode)), "not a file of a known kind")


def output_file(path: str | os.PathLike, what: str = "") -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or the file a symbolic link there points to.

    Args:
        path: where the caller wants to write.
        what: how the user named the path, for messages (``"--out"``); empty for the
            package's own files.

    Returns:
        The path to replace: a regular file, or a name where nothing exists yet, in a folder
        that exists and can be written, or can be made in the nearest one that exists.

    Raises:
        OutputPathError: something other than a regular file stands there (a folder, a device,
            a FIFO, a socket), a symbolic link there goes round in a circle, a file stands where
            one of its folders should be, or that folder cannot be written.
    """
    path = Path(path)
    named = f"{what} {path}" if what else str(path)
    try:
        mode = os.stat(path).st_mode  # follows symbolic links, as open(path, "w") would
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputPathError(f"{named}: a symbolic link that points round in a circle; choose another "
                                  "path") from None
        if exc.errno == errno.ENOTDIR:
            raise OutputPathError(f"{named}: {_blocking_file(path)} is a file, not a folder; choose another "
                                  "path") from None
        raise OutputPathError(f"{named}: cannot be looked at ({exc.strerror or exc}); choose another path") from None
    if mode is not None and not stat.S_ISREG(mode):
        fix = "give a file name inside it" if stat.S_ISDIR(mode) else "choose a regular file's name"
        raise OutputPathError(f"{named}: not a regular file but {file_kind(mode)}, so it is not replaced; {fix}")
    target = Path(os.path.realpath(path))  # the link's target, or the path itself
    blocking = _blocking_file(target)
    if blocking is not None:
        raise OutputPathError(f"{named}: {blocking} is a file, not a folder; choose another path")
    folder = next(parent for parent in target.parents if parent.exists())
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{named}: cannot write in {folder} (read-only, or no permission); choose another "
                              "path, or make the folder writable")
    return target


def _blocking_file(path: Path) -> Path | None:
    """The first of ``path``'s folders that exists but is not a folder, or None."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def input_file(path: str | os.PathLike, what: str, error: type[CifarAlexnetError]) -> Path:
    """``path`` if it names a regular file (through symbolic links); else a one-line error that says what is there.

    Args:
        path: the file to read.
        what: what the file is, for messages (``"image"``, ``"checkpoint"``).
        error: the class to raise when something other than a regular file is there
            (``DataError`` for data, ``CheckpointError`` for a checkpoint ...).

    Raises:
        MissingFileError: nothing exists at ``path`` (or a symbolic link there points to nothing).
        error: a folder, a device, a FIFO or a socket is there.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        dangling = " (a symbolic link to a missing file)" if path.is_symlink() else ""
        raise MissingFileError(f"{what} {path} does not exist{dangling}") from None
    except OSError as exc:
        raise error(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        article = "an" if what.startswith(tuple("aeiou")) else "a"
        raise error(f"{what} {path}: not a regular file but {file_kind(mode)}; give the path of {article} {what} file")
    return path
