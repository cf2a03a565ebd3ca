"""One process per run directory: an exclusive ``flock`` on ``RUN_DIR/.lock``.

The lock belongs to an open file, so the kernel drops it when the process ends, however it
ends: a lock file left behind by a killed trainer is *stale* -- nobody holds it -- and the
next trainer simply takes it. The file holds the owner's PID and host, for the message the
second trainer prints.

A clean release deletes the file while still holding the lock. A process that opened the old
file just before could then lock a file that no longer has a name, so :meth:`DirLock.acquire`
checks, once it holds the lock, that the open file is still the one at ``.lock`` (same inode)
and tries again if not.

``fcntl.flock`` exists on Linux and macOS; elsewhere the lock is a no-op. Network file systems
may not honour it.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from cifar_alexnet.errors import RunDirError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["DirLock", "DirLockedError", "LOCK_NAME"]

LOCK_NAME = ".lock"


class DirLockedError(RunDirError, FileExistsError):
    """Another live process holds the directory's lock."""


class DirLock:
    """An acquired lock on a directory; :meth:`release` (or process exit) gives it up."""

    def __init__(self, directory: Path, fd: int | None):
        self.directory, self._fd = directory, fd

    @classmethod
    def acquire(cls, directory: str | os.PathLike, *, purpose: str) -> "DirLock":
        """Lock ``directory`` (which must exist) or raise :class:`DirLockedError` at once.

        ``purpose`` completes the message: "another process is {purpose} {directory} ...".
        """
        directory = Path(directory)
        if fcntl is None:  # pragma: no cover
            return cls(directory, None)
        path = directory / LOCK_NAME
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                owner = _read_owner(fd)
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise DirLockedError(
                    f"{directory} is in use: another process ({owner}) is {purpose} it. Wait for it to "
                    "finish or stop it (Ctrl-C saves a resumable checkpoint), or choose another directory."
                ) from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:  # released and deleted between our open and our lock
                same_file = False
            if same_file:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        return cls(directory, fd)

    def release(self) -> None:
        """Delete the lock file and drop the lock (idempotent; the directory may be gone)."""
        if self._fd is None:
            return
        try:
            (self.directory / LOCK_NAME).unlink(missing_ok=True)
        except OSError:  # a read-only or vanished directory: the lock still goes with the close
            pass
        os.close(self._fd)
        self._fd = None


def _read_owner(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "owner unknown"
