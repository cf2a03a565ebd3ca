"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

The recipe is the usual one: write to a temporary file in the same directory, flush and
``fsync`` it, ``os.replace`` it over the destination (atomic on POSIX and Windows), then
``fsync`` the directory so the rename itself survives a power cut. If anything fails on the
way -- a full disk, an exception while producing the bytes, ``KeyboardInterrupt`` -- the
temporary file is removed and the destination is untouched. Only ``kill -9`` (or a power cut)
can leave one behind: :func:`remove_leftover_temp_files` clears them, for a directory whose
writers are known to be gone.

What may be replaced: :func:`cifar_alexnet.runtime.paths.output_file` decides, for every
write -- a regular file or nothing; a symbolic link is followed and the file it points to is
replaced (the temporary file is written next to that file, so the rename stays atomic);
a folder, a device, a FIFO or a socket is refused. The check is made again just before the
rename.

Permissions: ``tempfile.mkstemp`` creates its file readable by the owner only (mode 0600).
The finished file gets the permissions a plain ``open(path, "w")`` would have given it: the
mode of the file it replaces, or ``0o666`` minus the process umask for a new file, so that
a shared decode cache or a run directory stays readable by whoever could read it before.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from cifar_alexnet.errors import CifarAlexnetError, DiskFullError, OutputPathError
from cifar_alexnet.runtime.deferred_signals import deferred_signals
from cifar_alexnet.runtime.paths import file_kind, output_file

__all__ = ["write_error", "atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
           "remove_leftover_temp_files"]

#: Temporary files are named ``.<destination name>.<random>.tmp``.
TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"
#: The name safetensors' own writer gives the file it writes before renaming it to the path it
#: was given (the Rust ``tempfile`` crate's default: ``.tmp`` and six letters or digits).
SAFETENSORS_TEMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _permissions_for(path: Path) -> int:
    """The mode ``path`` should end with: that of the file it replaces, else 0o666 minus the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0o022)  # the only portable way to read the umask is to set it ...
        os.umask(umask)  # ... and put it back at once
        return 0o666 & ~umask


def write_error(path: Path, exc: OSError) -> DiskFullError | OutputPathError:
    """The package's error for an ``OSError`` met while writing ``path``: a full disk, or a path that cannot be written."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        error: DiskFullError | OutputPathError = DiskFullError(
            f"no space left while writing {path}; the previous version of the file (if any) is intact. Free some "
            "disk space or choose another --out directory, then run again.")
    else:
        error = OutputPathError(f"cannot write {path} ({exc.strerror or exc}); the previous version of the file (if "
                                "any) is intact. Choose another path, or make its folder writable.")
    error.errno = exc.errno  # for callers that test it; the message stays one plain line
    return error


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    Use it for writers that want a file name (``safetensors.torch.save_file``,
    ``matplotlib``'s ``savefig``)::

        with atomic_path(run_dir / "best.safetensors") as tmp:
            save_file(tensors, tmp)
    """
    path = output_file(path)  # a regular file or nothing; a symbolic link's target
    tmp: Path | None = None
    try:
        with deferred_signals():  # a signal just after mkstemp is raised once tmp is set, so it is removed
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX,
                                            dir=path.parent)
            tmp = Path(tmp_name)
            os.close(fd)
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _permissions_for(path))
        _check_still_replaceable(path)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except CifarAlexnetError:
        _remove(tmp)
        raise
    except OSError as exc:
        _remove(tmp)
        raise write_error(path, exc) from exc
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path | None) -> None:
    if tmp is not None:
        tmp.unlink(missing_ok=True)


def _check_still_replaceable(path: Path) -> None:
    """Refuse the rename if, since :func:`output_file` looked, something other than a regular file appeared at ``path``."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise OutputPathError(f"{path}: not a regular file any more but {file_kind(mode)} -- something replaced it "
                              "while it was being written -- so it is not replaced; choose another path")


def atomic_write_bytes(path: str | os.PathLike, data: bytes | Callable[[], bytes]) -> None:
    """Write ``data`` (or the bytes a callable returns) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        payload = data() if callable(data) else data
        with open(tmp, "wb") as handle:
            handle.write(payload)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON (with a trailing newline) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def remove_leftover_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writers left in ``directory``; return what was removed.

    Those are :func:`atomic_path`'s files and the ones ``safetensors.torch.save_file`` writes
    before renaming them to the path :func:`atomic_path` gave it (:data:`SAFETENSORS_TEMP`).

    Call it only while no other process can be writing there (e.g. holding the directory's lock).
    """
    removed = []
    for path in Path(directory).iterdir():
        ours = path.name.startswith(TEMP_PREFIX) and path.name.endswith(TEMP_SUFFIX)
        if (ours or SAFETENSORS_TEMP.fullmatch(path.name)) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
