"""Reading a ``.tar`` or ``.tar.gz`` into memory with its integrity checked end to end and its size bounded.

Why not simply iterate over ``tarfile.open(path)``? Three gaps, each one a way to get altered
data without an error:

* tarfile stops at the end-of-archive marker, so gzip never reaches its trailer and the
  CRC-32 and length of the uncompressed stream are never compared. A corrupted deflate
  stream that still inflates yields altered member bytes, silently.
* tarfile also stops, as if the archive had ended, at the first block after the first member
  that is not a valid header: a corrupt header drops every member after it, silently.
* tarfile reads a member whole, whatever size its header claims.

:func:`read_tarball` closes them:

1. It opens the compression layer itself (gzip, recognised by its magic bytes ``1f 8b``;
   anything else is read as a plain tar) and hands tarfile a view of the uncompressed
   stream that refuses to go past :data:`~cifar_alexnet.runtime.limits.MAX_ARCHIVE_BYTES`.
2. Before a member is read, its header is checked: the path stays inside the archive (no
   absolute path, no ``..``), no path is listed twice, its size is within the caller's bound.
3. After the last member it requires the end-of-archive marker (a block of zeros) exactly
   where the headers end, then reads the stream to its very end: what follows the marker
   must be zeros (tar's padding), and gzip then compares the CRC-32 and length of everything
   inflated with its trailer and refuses anything after the trailer but zero padding.

A plain ``.tar`` has no checksum of its contents (only of each header), so for it step 3
proves only that the archive is complete; a ``.tar.gz`` is verified bit for bit.

Links are resolved inside the archive, never dropped and never followed out of it. A hard
link or a symbolic link to a regular file of the archive reads as that file (through chains
of links; a target that comes later in the archive, or that the caller did not select, is
read in a second pass). A link the caller selects that points outside the archive, to
nothing, in a circle or to a folder is refused, and so is a selected entry that is neither a
file nor a link (a device, a FIFO). Links to folders are reported to the caller
(:attr:`TarContents.folder_links`), which decides whether they matter.
"""

from __future__ import annotations

import gzip
import posixpath
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from cifar_alexnet.errors import DataError
from cifar_alexnet.data.arrays import describe_exception
from cifar_alexnet.runtime.limits import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_MEMBERS, format_bytes

__all__ = ["TarContents", "read_tarball"]

_GZIP_MAGIC = b"\x1f\x8b"
_OTHER_COMPRESSIONS = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_BLOCK = tarfile.BLOCKSIZE  # 512: tar headers and member data come in blocks of this size


@dataclass
class TarContents:
    """What :func:`read_tarball` found.

    Attributes:
        files: the bytes of every regular file the caller chose to keep, by normalised path
            (a link to a file: the bytes of the file).
        file_names: the normalised path of every regular file, kept or not, and of every
            link that leads to one.
        directories: the normalised path of every directory entry.
        folder_links: links that lead to a folder of the archive: link path -> folder path.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    file_names: list[str] = field(default_factory=list)
    directories: set[str] = field(default_factory=set)
    folder_links: dict[str, str] = field(default_factory=dict)


#: Most links followed from one link to its final target (Linux's limit for symbolic links).
MAX_LINK_HOPS = 40


def _safe_relative(name: str, where: Path) -> str:
    """Normalise a tar member name; refuse absolute paths and ``..`` (path traversal)."""
    norm = posixpath.normpath(name.replace("\\", "/"))  # "a/./b/../c" -> "a/c"; a leading ".." stays
    if norm.startswith("/") or norm == ".." or norm.startswith("../"):
        raise DataError(
            f"{where}: member {name!r} points outside the archive (absolute path or '..'); refusing to read an "
            "archive built to escape its folder. Rebuild it with relative paths train/<class>/<file>."
        )
    return "" if norm == "." else norm


class _TooLarge(Exception):
    """The uncompressed stream goes past MAX_ARCHIVE_BYTES (raised from inside tarfile's reads)."""


class _BoundedStream:
    """The uncompressed tar stream as tarfile sees it: at most ``limit`` bytes, position counted.

    tarfile reads a header with one ``read(512)`` call; :attr:`last_read` keeps the offset and
    bytes of the latest read, which is how :func:`read_tarball` finds the block on which
    tarfile decided the archive had ended.
    """

    def __init__(self, stream: BinaryIO, limit: int):
        self._stream, self._limit, self._pos = stream, limit, 0
        self.last_read: tuple[int, bytes] = (-1, b"")

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise ValueError("the tar stream supports absolute seeks only")
        if offset > self._limit:
            raise _TooLarge(offset)
        self._pos = self._stream.seek(offset)
        return self._pos

    def read(self, size: int) -> bytes:
        if self._pos + size > self._limit:
            raise _TooLarge(self._pos + size)
        data = self._stream.read(size)
        self.last_read = (self._pos, data)
        self._pos += len(data)
        return data

    def read_to_end(self, chunk: int = 1 << 20) -> int:
        """Read what is left (within the limit); the offset of its first non-zero byte, or -1 if all are zero."""
        while True:
            room = self._limit - self._pos
            data = self._stream.read(min(chunk, room) if room > 0 else 1)
            if not data:
                return -1
            if room <= 0:
                raise _TooLarge(self._pos + 1)
            if data.count(0) != len(data):
                return self._pos + len(data) - len(data.lstrip(b"\0"))
            self._pos += len(data)


def _open_uncompressed(raw: BinaryIO, path: Path) -> BinaryIO:
    """The uncompressed stream: a ``GzipFile`` over ``raw`` for gzip, ``raw`` itself for a plain tar."""
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    for prefix, name in _OTHER_COMPRESSIONS.items():
        if magic.startswith(prefix):
            raise DataError(
                f"{path}: compressed with {name}; only gzip (.tar.gz, .tgz) and uncompressed .tar archives are "
                "read, so that the whole stream can be checked. Recompress it with gzip (tar czf ...)."
            )
    return raw


def read_tarball(path: Path, keep: Callable[[str], bool], *, max_member_bytes: int, member_kind: str,
                 fix: str) -> TarContents:
    """Read the regular files ``keep`` selects from a ``.tar``/``.tar.gz``, checking the whole archive.

    Args:
        path: the tarball.
        keep: called with each regular file's normalised path; True to read its bytes.
        max_member_bytes: the largest file that is read; a larger one (by its header) is
            refused before any of it is read.
        member_kind: what a kept file is, for messages (``"an image file"``).
        fix: how to repair the archive, appended to every message.

    Raises:
        DataError: a corrupt, truncated or altered archive (gzip CRC or length mismatch,
            invalid header, missing end-of-archive marker, data after it), a member outside
            the archive or listed twice, a kept member over ``max_member_bytes``, more than
            ``MAX_ARCHIVE_BYTES`` uncompressed or ``MAX_ARCHIVE_MEMBERS`` entries, a kept
            link that does not lead to a file of the archive, a kept device or FIFO entry.
    """
    def read(select: Callable[[str], bool]) -> tuple[TarContents, dict[str, tuple[str | None, str]]]:
        return _read_archive(path, select, max_member_bytes, member_kind, fix)

    contents, links = read(keep)
    _resolve_links(contents, links, keep, path, fix, read)
    return contents


def _read_archive(path: Path, keep: Callable[[str], bool], max_member_bytes: int, member_kind: str,
                  fix: str) -> tuple[TarContents, dict[str, tuple[str | None, str]]]:
    """One pass over the archive: its contents, and its links (link path -> (target path or None if outside, name))."""
    try:
        with open(path, "rb") as raw, _open_uncompressed(raw, path) as uncompressed:
            stream = _BoundedStream(uncompressed, MAX_ARCHIVE_BYTES)
            with tarfile.open(fileobj=stream, mode="r:") as archive:
                contents, links = _read_members(archive, path, keep, max_member_bytes, member_kind, fix)
                end = archive.offset  # where tarfile found no further header
            _check_archive_end(stream, end, path, fix)
        return contents, links
    except _TooLarge as exc:
        raise DataError(
            f"{path}: inflates to more than {format_bytes(MAX_ARCHIVE_BYTES)} (a member or header reaches byte "
            f"{exc.args[0]:,}; MAX_ARCHIVE_BYTES in cifar_alexnet/runtime/limits.py); refused before reading further. A "
            f"CIFAR-10 archive inflates to under 200 MB: this one is corrupt or a decompression bomb; {fix}"
        ) from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated archive ({describe_exception(exc)}); {fix}") from None


def _read_members(archive: tarfile.TarFile, path: Path, keep: Callable[[str], bool], max_member_bytes: int,
                  member_kind: str, fix: str) -> tuple[TarContents, dict[str, tuple[str | None, str]]]:
    """Walk the archive's headers once: folders, file names, links, and the bytes of the files ``keep`` selects."""
    contents, links = TarContents(), {}
    seen: set[str] = set()
    count = 0
    while (member := archive.next()) is not None:
        archive.members.clear()  # tarfile keeps every header it read; this loop needs none of them
        count += 1
        if count > MAX_ARCHIVE_MEMBERS:
            raise DataError(f"{path}: more than {MAX_ARCHIVE_MEMBERS:,} entries (MAX_ARCHIVE_MEMBERS in "
                            f"cifar_alexnet/runtime/limits.py); refused before listing more; {fix}")
        rel = _safe_relative(member.name, path)
        if member.isdir():
            contents.directories.add(rel)
            continue
        if rel in seen:
            raise DataError(f"{path}: member {rel!r} appears twice (an archive appended to, or a corrupt one), so "
                            f"which copy is meant is unclear; rebuild it with each file once; {fix}")
        seen.add(rel)
        if member.issym() or member.islnk():
            links[rel] = (_link_target(member, rel), member.linkname)
            continue
        if not member.isfile():
            if keep(rel):
                raise DataError(f"{path}: member {rel!r} is {_entry_kind(member)}, not a file; an archive of data "
                                f"holds files only; remove it, or {fix}")
            continue
        contents.file_names.append(rel)
        if not keep(rel):
            continue
        if member.size > max_member_bytes:
            raise DataError(f"{path}: member {rel!r} is {format_bytes(member.size)} uncompressed, more than the "
                            f"{format_bytes(max_member_bytes)} allowed for {member_kind} "
                            f"(cifar_alexnet/runtime/limits.py); refused before reading it; remove it, or {fix}")
        contents.files[rel] = archive.extractfile(member).read()
    return contents, links


def _entry_kind(member: tarfile.TarInfo) -> str:
    """What a tar entry that is neither a file, a folder nor a link is, for messages."""
    if member.ischr():
        return "a character device entry"
    if member.isblk():
        return "a block device entry"
    if member.isfifo():
        return "a FIFO (named pipe) entry"
    return f"an entry of tar type {member.type!r}"


def _link_target(member: tarfile.TarInfo, rel: str) -> str | None:
    """The archive path a link names, normalised; None if it leads out of the archive (absolute, or ``..``).

    A symbolic link's target is relative to the link's folder; a hard link names an archive path.
    """
    name = member.linkname.replace("\\", "/")
    if name.startswith("/"):
        return None
    joined = posixpath.join(posixpath.dirname(rel), name) if member.issym() else name
    norm = posixpath.normpath(joined)
    return None if norm == ".." or norm.startswith("../") else ("" if norm == "." else norm)


def _resolve_links(contents: TarContents, links: dict[str, tuple[str | None, str]], keep: Callable[[str], bool],
                   path: Path,
                   fix: str, read: Callable[[Callable[[str], bool]], tuple[TarContents, dict]]) -> None:
    """Make every link to a file read as that file; refuse a kept link that leads anywhere else.

    The bytes of a target the first pass did not keep (it came later, or the caller did not
    select it) are read in a second pass over the archive.
    """
    regular = set(contents.file_names)
    missing: dict[str, list[str]] = {}  # target not yet read -> the kept links that lead to it
    for rel in links:
        final, why = _follow(rel, links, regular, contents.directories)
        if final in contents.directories:
            contents.folder_links[rel] = final
        if why is not None:
            if keep(rel):
                raise DataError(f"{path}: member {rel!r} is a link to {links[rel][1]!r}, which {why}; links are "
                                f"resolved inside the archive only; {fix} (tar --dereference --hard-dereference "
                                "stores the files themselves)")
            continue
        contents.file_names.append(rel)
        if keep(rel):
            if final in contents.files:
                contents.files[rel] = contents.files[final]
            else:
                missing.setdefault(final, []).append(rel)
    if missing:
        again, _ = read(missing.__contains__)
        for final, kept_links in missing.items():
            for rel in kept_links:
                contents.files[rel] = again.files[final]


def _follow(rel: str, links: dict[str, tuple[str | None, str]], regular: set[str],
            directories: set[str]) -> tuple[str | None, str | None]:
    """The path a chain of links from ``rel`` ends at, and why it is not a file of the archive (None if it is)."""
    seen, current = {rel}, links[rel][0]
    for _ in range(MAX_LINK_HOPS):
        if current is None:
            return None, "is outside the archive"
        if current in regular:
            return current, None
        if current in directories:
            return current, "is a folder"
        if current not in links:
            return current, "the archive does not hold"
        if current in seen:
            return current, "leads round in a circle of links"
        seen.add(current)
        current = links[current][0]
    return current, f"takes more than {MAX_LINK_HOPS} links to reach"


def _check_archive_end(stream: _BoundedStream, end: int, path: Path, fix: str) -> None:
    """The headers must end with the end-of-archive marker, and nothing but zeros may follow it.

    Reading to the end also makes ``GzipFile`` check the CRC-32, the length and the trailer.
    """
    at, block = stream.last_read
    if at != end or block != bytes(_BLOCK):
        raise DataError(f"{path}: the member headers stop at byte {end:,} of the uncompressed archive without the "
                        "end-of-archive marker (a corrupt member header, or a truncated archive); members after it "
                        f"would be lost; {fix}")
    garbage_at = stream.read_to_end()
    if garbage_at >= 0:
        raise DataError(f"{path}: data after the end-of-archive marker (first non-zero byte at {garbage_at:,} of the "
                        f"uncompressed archive): the archive is corrupt or was altered; {fix}")
