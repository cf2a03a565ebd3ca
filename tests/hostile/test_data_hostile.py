"""Hostile data files: each is refused with one DataError, before it costs memory, or read exactly.

One test per kind of hostile input: a corrupted gzip stream that still inflates,
a corrupt member header taken for the end of the archive, data after the end, a member
listed twice, a member or an archive far larger than a data set needs, a 144-megapixel
PNG, and a decode cache that cannot be written.

Where the danger is silent (altered data, exit 0), the test first shows that a plain
``tarfile`` loop, which stops at the end-of-archive marker, gives the altered or shortened
contents without an error: the input is one a less careful reader would accept.

The property tests in ``test_data_integrity.py`` mutate valid archives at random; these are
the named cases, each with the message a user sees.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
import textwrap
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

import cifar_alexnet.data.checked_tar as checked_tar
from cifar_alexnet.errors import DataError
from cifar_alexnet.data.cifar10 import load_cifar10
from cifar_alexnet.data.image_folder import load_image_folder
from cifar_alexnet.data.decode_cache import cache_file_for, read_cache, sha256_file
from data_factories import (
    png_bytes,
    regzip_keeping_trailer,
    tar_header_offsets,
    write_image_folder,
    write_official_archive,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_home_cache(tmp_path, monkeypatch):
    """Never write into the real ~/.cache during tests."""
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "default-cache"))


def _cache_files(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*") if p.is_file()) if cache_dir.exists() else []


def _small_archive(tmp_path: Path, kind: str):
    """A valid ``.tar.gz`` of either layout: ``(written, member to alter)``."""
    if kind == "image folder":
        # JPEG: it has no checksum of its own, so altered bytes decode to altered pixels.
        written = write_image_folder(tmp_path / "data", 2, 2, fmt="jpg", as_tarball=True, classes=("a", "b"))
        return written, "test/b/0001.jpg"
    written = write_official_archive(tmp_path / "data", n_train=20, n_test=10)
    return written, "cifar-10-batches-py/test_batch"


def _naive_read(gz: bytes) -> dict[str, bytes]:
    """Every file member, as a plain tarfile loop reads them (up to the end-of-archive marker)."""
    with tarfile.open(fileobj=io.BytesIO(gz), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}


def _member(tar: bytes, name: str) -> tarfile.TarInfo:
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        return archive.getmember(name)


def _assert_loads_exactly(written, cache_dir: Path) -> None:
    train, test = load_cifar10(written, cache_dir=cache_dir, verify=False)
    np.testing.assert_array_equal(train.images, written.train_images)
    np.testing.assert_array_equal(train.labels, written.train_labels)
    np.testing.assert_array_equal(test.images, written.test_images)
    np.testing.assert_array_equal(test.labels, written.test_labels)


# ---------------------------------------------------------------------------------------
# Integrity: altered, shortened or extended archives
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["image folder", "official"])
def test_altered_deflate_data_is_caught_by_the_gzip_crc(tmp_path, kind):
    written, name = _small_archive(tmp_path, kind)
    gz = written.path.read_bytes()
    tar = bytearray(gzip.decompress(gz))
    member = _member(bytes(tar), name)
    tar[member.offset_data + member.size // 2] ^= 0x10  # one bit of pixel data
    altered = regzip_keeping_trailer(gz, bytes(tar))
    naive = _naive_read(altered)  # the hazard: no error, altered bytes
    assert naive[name] != _naive_read(gz)[name] and set(naive) == set(_naive_read(gz))
    written.path.write_bytes(altered)
    with pytest.raises(DataError, match=r"corrupt or truncated archive \(BadGzipFile: CRC check failed") as info:
        load_cifar10(written, cache_dir=tmp_path / "cache", verify=False)
    assert str(written.path) in str(info.value)
    assert _cache_files(tmp_path / "cache") == []


@pytest.mark.parametrize("kind, damage", [
    ("image folder", "corrupt last header"),
    ("official", "corrupt last header"),
    ("image folder", "plain tar cut before the last member"),
])
def test_a_shortened_member_list_is_refused(tmp_path, kind, damage):
    written, _ = _small_archive(tmp_path, kind)
    tar = bytearray(gzip.decompress(written.path.read_bytes()))
    names = tar_member_names(bytes(tar))
    last = tar_header_offsets(bytes(tar))[-1]
    if damage == "corrupt last header":
        tar[last + 148:last + 156] = b"0000000\0"  # the header checksum field: now wrong
        damaged = written.path
        damaged.write_bytes(gzip.compress(bytes(tar)))  # a valid gzip stream: its CRC matches
    else:
        damaged = written.path.with_name("images.tar")
        damaged.write_bytes(bytes(tar[:last]))
        written.path.unlink()
    with tarfile.open(damaged) as archive:  # the hazard: no error, the last member silently missing
        assert archive.getnames() == names[:-1]
    with pytest.raises(DataError, match=r"member headers stop at byte [\d,]+ .* without the end-of-archive marker"):
        load_cifar10(damaged, cache_dir=tmp_path / "cache", verify=False)


@pytest.mark.parametrize("kind", ["image folder", "official"])
@pytest.mark.parametrize("appended, expected", [
    (b"garbage", r"corrupt or truncated archive \(BadGzipFile: Not a gzipped file"),
    (gzip.compress(b"more data", mtime=0), r"data after the end-of-archive marker \(first non-zero byte at [\d,]+"),
    (bytes(100), None),  # gzip allows zero padding after its trailer: the data is unchanged
], ids=["garbage", "a second gzip stream", "zero padding"])  # fixed ids: pytest-xdist's workers must agree
def test_data_after_the_gzip_stream(tmp_path, kind, appended, expected):
    written, _ = _small_archive(tmp_path, kind)
    gz = written.path.read_bytes()
    assert set(_naive_read(gz + appended)) == set(_naive_read(gz))  # the hazard: tarfile never looks
    written.path.write_bytes(gz + appended)
    if expected is None:
        _assert_loads_exactly(written, tmp_path / "cache")
        return
    with pytest.raises(DataError, match=expected):
        load_cifar10(written, cache_dir=tmp_path / "cache", verify=False)


def test_data_after_the_end_of_archive_marker_inside_the_stream(tmp_path):
    written, _ = _small_archive(tmp_path, "image folder")
    tar = gzip.decompress(written.path.read_bytes())
    written.path.write_bytes(gzip.compress(tar + b"appended after the end"))
    with pytest.raises(DataError, match=r"data after the end-of-archive marker"):
        load_cifar10(written, cache_dir=tmp_path / "cache")


def test_a_member_listed_twice_is_refused(tmp_path):
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    archive_path = tmp_path / "twice.tar.gz"
    with tarfile.open(archive_path, "w:gz") as archive:
        archive.add(written.root / "train", arcname="train")
        archive.add(written.root / "test", arcname="test")
        archive.add(written.root / "test" / "a" / "0000.png", arcname="train/b/0000.png")  # `tar rf` style update
    with pytest.raises(DataError, match=r"member 'train/b/0000\.png' appears twice"):
        load_cifar10(archive_path, cache_dir=tmp_path / "cache")


def test_bzip2_is_refused_with_the_fix(tmp_path):
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    archive_path = tmp_path / "data.tar.gz"
    with tarfile.open(archive_path, "w:bz2") as archive:
        archive.add(written.root / "train", arcname="train")
    with pytest.raises(DataError, match=r"compressed with bzip2; only gzip .* Recompress it with gzip"):
        load_cifar10(archive_path, cache_dir=tmp_path / "cache")


# ---------------------------------------------------------------------------------------
# Size: members and archives larger than a data set needs
# ---------------------------------------------------------------------------------------


def tar_member_names(tar: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        return archive.getnames()


def _tar_end(tar: bytes) -> int:
    """Offset of the end-of-archive marker (the first zero block after the last member)."""
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        archive.getmembers()
        return archive.offset


def _with_extra_member(tar: bytes, name: str, size: int, *, data: bool) -> bytes:
    """``tar`` (uncompressed) plus a member ``name`` of ``size`` zero bytes, gzipped.

    ``data=False`` writes the member's header only, and the archive ends there, as a
    truncated one would: whatever reads past the header fails, so a refusal that names the
    member's size can only have come from its header.
    """
    header = tarfile.TarInfo(name)
    header.size = size
    head = tar[:_tar_end(tar)] + header.tobuf(format=tarfile.GNU_FORMAT)
    if not data:
        return gzip.compress(head, mtime=0)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as compressor:
        compressor.write(head)
        for _ in range(size >> 20):
            compressor.write(bytes(1 << 20))
        compressor.write(bytes(size % (1 << 20) + -size % 512 + 1024))  # the rest, padding, end-of-archive
    return out.getvalue()


@pytest.mark.parametrize("kind, name, expected", [
    ("image folder", "train/a/huge.jpg", r"member 'train/a/huge\.jpg' is 3 GiB uncompressed, more than the 1 MiB "
                                         r"allowed for an image file .*refused before reading it"),
    ("official", "cifar-10-batches-py/data_batch_1", r"member 'cifar-10-batches-py/data_batch_1' is 3 GiB "
                                                     r"uncompressed, more than the 64 MiB allowed for a CIFAR-10 batch"),
])
def test_an_oversized_member_is_refused_by_its_header(tmp_path, kind, name, expected):
    """The header claims 3 GiB and no data follows: refused from the header, before reading a byte of it."""
    written, _ = _small_archive(tmp_path, kind)
    tar = gzip.decompress(written.path.read_bytes())
    if kind == "official":  # keep batches.meta only, so the oversized data_batch_1 is not a second copy
        offsets = dict(zip(tar_member_names(tar), tar_header_offsets(tar)))
        tar = tar[:offsets["cifar-10-batches-py/data_batch_1"]] + bytes(1024)
    written.path.write_bytes(_with_extra_member(tar, name, 3 << 30, data=False))
    with pytest.raises(DataError, match=expected):
        load_cifar10(written, cache_dir=tmp_path / "cache", verify=False)


@pytest.mark.parametrize("kind, name", [("image folder", "train/a/huge.jpg"),
                                        ("official", "cifar-10-batches-py/extra.bin")])
def test_a_large_member_is_never_held_in_memory(tmp_path, kind, name):
    """80 MiB of real member data: refused (or, not being wanted, skipped) with Python's peak allocation far below it."""
    written, _ = _small_archive(tmp_path, kind)
    tar = gzip.decompress(written.path.read_bytes())
    written.path.write_bytes(_with_extra_member(tar, name, 80 << 20, data=True))
    tracemalloc.start()
    try:
        if kind == "image folder":
            with pytest.raises(DataError, match=r"is 80 MiB uncompressed, more than the 1 MiB allowed"):
                load_cifar10(written, cache_dir=tmp_path / "cache")
        else:  # the readme is not read at all: the archive loads, its 80 MiB streamed past
            _assert_loads_exactly(written, tmp_path / "cache")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak Python allocation {peak / 2**20:.0f} MiB while loading an 80 MiB member"


def test_an_archive_that_inflates_past_the_limit_is_refused_before_it_is_read(tmp_path):
    """A member that is not read (a top-level file) but would take the stream past MAX_ARCHIVE_BYTES."""
    written, _ = _small_archive(tmp_path, "image folder")
    tar = gzip.decompress(written.path.read_bytes())
    written.path.write_bytes(_with_extra_member(tar, "padding.bin", 2 << 30, data=False))
    with pytest.raises(DataError, match=r"inflates to more than 1 GiB .*MAX_ARCHIVE_BYTES .*decompression bomb"):
        load_cifar10(written, cache_dir=tmp_path / "cache")


def test_the_uncompressed_total_is_counted_while_streaming(tmp_path, monkeypatch):
    """Many members, each within its bound, add up past the (here lowered) archive bound."""
    written = write_image_folder(tmp_path / "data", 10, 5, as_tarball=True, classes=("a", "b"))
    size = len(gzip.decompress(written.path.read_bytes()))
    monkeypatch.setattr(checked_tar, "MAX_ARCHIVE_BYTES", size // 2)
    with pytest.raises(DataError, match=r"inflates to more than"):
        load_cifar10(written, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(checked_tar, "MAX_ARCHIVE_BYTES", size)  # exactly enough
    _assert_loads_exactly(written, tmp_path / "cache")


def test_too_many_entries(tmp_path, monkeypatch):
    written = write_image_folder(tmp_path / "data", 3, 1, as_tarball=True, classes=("a", "b"))
    monkeypatch.setattr(checked_tar, "MAX_ARCHIVE_MEMBERS", 5)
    with pytest.raises(DataError, match=r"more than 5 entries \(MAX_ARCHIVE_MEMBERS"):
        load_cifar10(written, cache_dir=tmp_path / "cache")


# ---------------------------------------------------------------------------------------
# Images larger than 32x32: refused from the header
# ---------------------------------------------------------------------------------------


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` x ``height`` and whose pixel data is missing."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """A valid 12000 x 12000 RGB PNG: 144 megapixels, 432 MB decoded, about 420 KB on disk."""
    return png_bytes(12000, 12000)


@pytest.mark.parametrize("as_tarball", [False, True], ids=["dir", "tar.gz"])
def test_a_144_megapixel_png_is_refused_before_decoding(tmp_path, huge_png, as_tarball):
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    (written.root / "train" / "a" / "0000.png").write_bytes(huge_png)
    source = written.root
    if as_tarball:
        source = tmp_path / "data.tar.gz"
        with tarfile.open(source, "w:gz") as archive:
            archive.add(written.root, arcname=".")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match=r"0000\.png: image is far larger than 32x32 pixels .*144000000 pixels.*"
                                            r"refused before decoding\. Resize it"):
            load_cifar10(source, cache_dir=tmp_path / "cache")
    assert [str(w.message) for w in caught] == []  # Pillow's DecompressionBombWarning became the DataError


@pytest.mark.parametrize("width, height, expected", [
    (20000, 10000, r"image is far larger than 32x32 pixels \(DecompressionBombError"),  # Pillow refuses it at open
    (9000, 9000, r"image is 9000x9000 pixels, expected 32x32\. Resize"),  # under Pillow's bound: ours
    (32, 33, r"image is 32x33 pixels, expected 32x32"),
])
def test_image_size_comes_from_the_header(tmp_path, width, height, expected):
    """The pixel data is missing: only a check of the header, before decoding, can give the size message."""
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    (written.root / "test" / "b" / "0000.png").write_bytes(_png_header_only(width, height))
    with pytest.raises(DataError, match=expected):
        load_image_folder(written.root, use_cache=False)


def test_an_image_file_over_the_byte_limit_is_not_read_whole(tmp_path):
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    path = written.root / "train" / "b" / "0000.png"
    path.write_bytes(path.read_bytes() + bytes(2 << 20))  # a valid PNG followed by 2 MiB
    with pytest.raises(DataError, match=r"0000\.png: larger than the 1 MiB allowed for an image file"):
        load_image_folder(written.root, use_cache=False)


def test_a_batch_file_over_the_byte_limit_is_not_read_whole(tmp_path):
    written = write_official_archive(tmp_path / "data", n_train=10, n_test=10, as_tarball=False)
    with open(written.path / "data_batch_2", "r+b") as handle:
        handle.truncate(65 << 20)  # sparse: 65 MiB on paper
    with pytest.raises(DataError, match=r"data_batch_2: larger than the 64 MiB allowed for a CIFAR-10 batch file"):
        load_cifar10(written.root, verify=False)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmHWM from Linux's /proc")
def test_peak_memory_of_the_huge_png_stays_far_below_its_pixels(tmp_path, huge_png):
    """In a fresh process: decoding would need 432 MB for the pixels alone.

    The peak is the process's own high-water mark, ``VmHWM`` (``ru_maxrss`` of a child can
    carry over the parent's, the size of this pytest process).
    """
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    (written.root / "train" / "a" / "0000.png").write_bytes(huge_png)
    script = textwrap.dedent(f"""
        from cifar_alexnet.data.image_folder import load_image_folder
        from cifar_alexnet.errors import DataError
        try:
            load_image_folder({str(written.root)!r}, use_cache=False)
        except DataError as exc:
            print("refused:", exc)
        status = open("/proc/self/status").read()
        print("peak MiB", int(status.split("VmHWM:")[1].split()[0]) // 1024)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout and "refused before decoding" in result.stdout
    peak = int(result.stdout.split("peak MiB")[1])
    assert peak < 250, f"peak RSS {peak} MiB: the image seems to have been decoded"


# ---------------------------------------------------------------------------------------
# The decode cache: unwritable means uncached, never impossible
# ---------------------------------------------------------------------------------------


def test_a_cache_folder_under_a_file_costs_one_warning_line(tmp_path, capsys):
    """The cache cannot be created (ENOTDIR: root ignores permission bits, not this)."""
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    (tmp_path / "a-file").write_text("not a folder")
    _assert_loads_exactly(written, tmp_path / "a-file" / "cache")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: cannot write the decode cache ") and "is a file, not a folder" in lines[0]
    assert "continuing without it" in lines[0] and "CIFAR_ALEXNET_CACHE" in lines[0]


def test_a_cache_file_that_cannot_be_replaced_costs_one_warning_line(tmp_path, capsys):
    """A folder sits where the cache file goes (EISDIR when the finished file is moved into place)."""
    written = write_image_folder(tmp_path / "data", 1, 1, as_tarball=True, classes=("a", "b"))
    cache_dir = tmp_path / "cache"
    cache_path = cache_file_for(written.path, sha256_file(written.path), cache_dir)
    cache_path.mkdir(parents=True)
    _assert_loads_exactly(written, cache_dir)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: cannot write the decode cache"), lines
    assert sorted(p.name for p in cache_dir.iterdir()) == [cache_path.name]  # no temporary file left behind


def test_a_corrupt_cache_is_decoded_again_and_replaced(tmp_path):
    written = write_image_folder(tmp_path / "data", 1, 1, as_tarball=True, classes=("a", "b"))
    cache_dir = tmp_path / "cache"
    cache_path = cache_file_for(written.path, sha256_file(written.path), cache_dir)
    cache_path.parent.mkdir()
    cache_path.write_bytes(b"PK\x03\x04 not a zip")
    _assert_loads_exactly(written, cache_dir)
    train, _ = read_cache(cache_path)
    np.testing.assert_array_equal(train.images, written.train_images)


@pytest.mark.slow
def test_training_with_an_unwritable_cache_succeeds_through_the_cli(tmp_path):
    """The reported failure: a decode cache that cannot be written made training impossible."""
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    (tmp_path / "a-file").write_text("not a folder")
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "CIFAR_ALEXNET_CACHE": str(tmp_path / "a-file" / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "cifar_alexnet", "train", "--data", str(written.root), "--out", str(tmp_path / "run"),
         "--epochs", "1", "--batch-size", "2", "--hidden", "16", "--device", "cpu", "--quiet"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings_printed = [line for line in result.stderr.splitlines() if line.startswith("warning: cannot write")]
    assert len(warnings_printed) == 1 and "Traceback" not in result.stderr
    assert (tmp_path / "run" / "last.safetensors").is_file()


@pytest.mark.slow
def test_a_crc_damaged_archive_through_the_command(tmp_path):
    """The reported failure end to end: ``cifar-alexnet train`` on a .tar.gz whose CRC no longer matches."""
    written, name = _small_archive(tmp_path, "image folder")
    gz = written.path.read_bytes()
    tar = bytearray(gzip.decompress(gz))
    member = _member(bytes(tar), name)
    tar[member.offset_data + member.size // 2] ^= 0x10
    written.path.write_bytes(regzip_keeping_trailer(gz, bytes(tar)))
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "CIFAR_ALEXNET_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "cifar_alexnet", "train", "--data", str(written.path), "--out", str(tmp_path / "run"),
         "--epochs", "1", "--device", "cpu", "--quiet"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert str(written.path) in result.stderr and "CRC check failed" in result.stderr
    assert not (tmp_path / "run" / "last.safetensors").exists()


def test_a_known_archive_must_hold_the_images_per_class_it_promises(tmp_path, monkeypatch):
    """Checked from the listing, before decoding; here a small archive plays a known one."""
    import cifar_alexnet.data.image_folder as image_folder
    from cifar_alexnet.data.decode_cache import sha256_file

    written = write_image_folder(tmp_path / "data", 2, 1, as_tarball=True, classes=("a", "b"))
    sha = sha256_file(written.path)
    monkeypatch.setitem(image_folder.KNOWN_ARCHIVES, sha, "a known test archive")
    monkeypatch.setitem(image_folder.KNOWN_ARCHIVE_COUNTS, sha, (3, 1))
    with pytest.raises(DataError, match=r"train/ should hold 3 images of every class \(a known test archive\), but "
                                        r"holds a: 2, b: 2; the archive is incomplete"):
        load_cifar10(written, cache_dir=tmp_path / "cache")
    monkeypatch.setitem(image_folder.KNOWN_ARCHIVE_COUNTS, sha, (2, 1))
    train, test = load_cifar10(written, cache_dir=tmp_path / "cache")
    assert train.source == "a known test archive" and len(train) == 4 and len(test) == 2
