"""Property tests: a damaged data file either loads exactly as the original or raises DataError.

Hypothesis damages the bytes of small, valid archives built by ``data_factories`` -- an
image-folder ``.tar.gz`` of JPEGs (JPEG has no checksum of its own, so nothing but the
archive can notice altered pixels) and an official-format ``cifar-10-python.tar.gz`` -- and
drives the real loader, :func:`cifar_alexnet.data.cifar10.load_cifar10`, and a few times the real
command line, ``cifar-alexnet train``. The damage is what storage and transfers do:

* a bit flipped anywhere, with extra weight on the gzip header (first 20 bytes) and trailer
  (last 8 bytes), where a flip has the most varied effects;
* the file cut short;
* bytes appended after it;
* a field of a tar member header rewritten (its checksum fixed or not) in the inflated tar,
  deflated again with the original gzip trailer: every layer above gzip is well formed,
  and only gzip's CRC-32 and length say the bytes are not the original.

The property: every call returns arrays equal to those of the undamaged archive (some
damage is harmless: a flip in the gzip header's time stamp, zeros appended) or raises
:class:`~cifar_alexnet.errors.DataError` -- never another exception, never other
data. Through the CLI: exit 0 only when the damaged file loads exactly, otherwise exit 2 and
one ``error:`` line naming the file, never a traceback.

The decode cache gets the same treatment: a damaged ``.npz`` is never read as data, and is
decoded again and replaced.

Examples per run, as multiples of the hypothesis profile's ``max_examples`` (25 in ``ci``;
see ``conftest.py``): archives 8x per layout, the cache 4x, the CLI 1/2 per layout; the
exact count is in :data:`EXAMPLES`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cifar_alexnet.cli import main
from cifar_alexnet.errors import DataError
from cifar_alexnet.data.cifar10 import load_cifar10
from cifar_alexnet.data.decode_cache import read_cache
from data_factories import (
    SyntheticData,
    regzip_keeping_trailer,
    tar_header_offsets,
    write_image_folder,
    write_official_archive,
)

_BASE = settings().max_examples  # of the loaded profile
EXAMPLES = {"archive": 8 * _BASE, "cache": 4 * _BASE, "cli": max(2, _BASE // 2)}

#: The fields of a ustar header: name -> (offset, length).
TAR_FIELDS = {
    "name": (0, 100), "mode": (100, 8), "uid": (108, 8), "gid": (116, 8), "size": (124, 12), "mtime": (136, 12),
    "chksum": (148, 8), "typeflag": (156, 1), "linkname": (157, 100), "magic": (257, 6), "version": (263, 2),
    "uname": (265, 32), "gname": (297, 32), "devmajor": (329, 8), "devminor": (337, 8), "prefix": (345, 155),
}


class Original:
    """A valid archive, its bytes (compressed and inflated) and what loading it gives.

    A plain class with a short ``repr``: hypothesis prints the test's arguments with a
    failing example, and a dataclass would be printed field by field, bytes and all.
    """

    def __init__(self, written: SyntheticData):
        self.written = written
        self.gz = written.path.read_bytes()
        self.tar = gzip.decompress(self.gz)
        self.headers = tuple(tar_header_offsets(self.tar))

    def __repr__(self) -> str:
        return f"Original({self.written.path.name}, {len(self.gz)} bytes)"


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Original]:
    """The two archives: ten classes each (the CLI's ``--limit-*`` need one image per class)."""
    root = tmp_path_factory.mktemp("originals")
    return {
        "image folder": Original(write_image_folder(root / "folder", 1, 1, fmt="jpg", as_tarball=True)),
        "official": Original(write_official_archive(root / "official", n_train=20, n_test=10)),
    }


@pytest.fixture(scope="module", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """The CLI's decode cache goes to a temporary folder, never ~/.cache (module-scoped: hypothesis)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path_factory.mktemp("cli-cache")))
        yield


def _damage(data: st.DataObject, original: Original) -> tuple[str, bytes]:
    """One damaged copy of ``original.gz`` and a description of the damage."""
    gz, n = original.gz, len(original.gz)
    kind = data.draw(st.sampled_from(["flip", "truncate", "append", "header"]), label="damage")
    if kind == "flip":
        position = data.draw(st.one_of(st.integers(0, 19), st.integers(n - 8, n - 1), st.integers(0, n - 1)),
                             label="position")
        bit = data.draw(st.integers(0, 7), label="bit")
        damaged = bytearray(gz)
        damaged[position] ^= 1 << bit
        return f"bit {bit} of byte {position} flipped", bytes(damaged)
    if kind == "truncate":
        length = data.draw(st.integers(0, n - 1), label="length")
        return f"cut to {length} bytes", gz[:length]
    if kind == "append":
        extra = data.draw(st.binary(min_size=1, max_size=64), label="extra")
        return f"{extra!r} appended", gz + extra
    header = data.draw(st.sampled_from(original.headers), label="header offset")
    field = data.draw(st.sampled_from(sorted(TAR_FIELDS)), label="field")
    start, length = TAR_FIELDS[field]
    value = data.draw(st.binary(min_size=1, max_size=length), label="value")
    fix_checksum = data.draw(st.booleans(), label="fix checksum")
    tar = bytearray(original.tar)
    tar[header + start:header + start + len(value)] = value
    if fix_checksum:
        block = tar[header:header + 512]
        block[148:156] = b" " * 8
        tar[header + 148:header + 156] = b"%06o\0 " % sum(block)
    return f"{field} of the header at {header} set to {value!r}", regzip_keeping_trailer(gz, bytes(tar))


def _assert_same_data(loaded, written: SyntheticData, damage: str) -> None:
    train, test = loaded
    for got, expected in ((train.images, written.train_images), (train.labels, written.train_labels),
                          (test.images, written.test_images), (test.labels, written.test_labels)):
        assert np.array_equal(got, expected), f"damage ({damage}) loaded without an error but with other data"
    assert train.classes == test.classes == written.classes


def _load_damaged(written: SyntheticData, damaged: bytes, folder: Path):
    path = folder / written.path.name
    path.write_bytes(damaged)
    return load_cifar10(path, cache_dir=folder / "cache", verify=False)


@pytest.mark.parametrize("kind", ["image folder", "official"])
@settings(max_examples=EXAMPLES["archive"])
@given(data=st.data())
def test_damaged_archive_loads_exactly_or_raises_data_error(originals, kind, data):
    original = originals[kind]
    damage, damaged = _damage(data, original)
    with tempfile.TemporaryDirectory() as folder:
        try:
            loaded = _load_damaged(original.written, damaged, Path(folder))
        except DataError as exc:
            assert original.written.path.name in str(exc), f"damage ({damage}): the message does not name the file"
            event(f"{damage.split()[-1] if 'appended' in damage else damage.split()[0]}: refused ({_reason(exc)})")
            return
    _assert_same_data(loaded, original.written, damage)
    event(f"{damage.split()[-1] if 'appended' in damage else damage.split()[0]}: loaded exactly")


def _reason(exc: DataError) -> str:
    """The kind of refusal, for hypothesis's statistics (``pytest --hypothesis-show-statistics``)."""
    text = str(exc)
    for reason in ("CRC check failed", "Not a gzipped file", "end-of-archive marker", "Compressed file ended",
                   "Incorrect length", "points outside", "appears twice", "inflates to more", "allowed for",
                   "cannot decode", "cannot be read as a CIFAR-10 batch", "missing", "no train/"):
        if reason in text:
            return reason
    return text.split(": ", 1)[1][:60]


@settings(max_examples=EXAMPLES["cache"])
@given(data=st.data())
def test_damaged_cache_is_never_read_as_data(originals, data):
    """A bit flipped or the file cut: the load still returns the original, and the cache is good again."""
    written = originals["image folder"].written
    with tempfile.TemporaryDirectory() as folder:
        cache_dir = Path(folder) / "cache"
        load_cifar10(written, cache_dir=cache_dir)
        (cache_path,) = cache_dir.glob("*.npz")  # the one cache file the load wrote
        cached = bytearray(cache_path.read_bytes())
        if data.draw(st.booleans(), label="cut"):
            cached = cached[:data.draw(st.integers(0, len(cached) - 1), label="length")]
        else:
            position = data.draw(st.integers(0, len(cached) - 1), label="position")
            cached[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        cache_path.write_bytes(bytes(cached))
        _assert_same_data(load_cifar10(written, cache_dir=cache_dir), written, "damaged cache")
        _assert_same_data(read_cache(cache_path), written, "the cache written after a damaged one")


def _train(data_arg: Path, out: Path, extra: list[str]) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "--data", str(data_arg), "--out", str(out), "--epochs", "1", "--batch-size", "4",
                     "--hidden", "16", "--eval-batch-size", "64", "--device", "cpu", "--quiet", *extra])
    return code, stderr.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["image folder", "official"])
@settings(max_examples=EXAMPLES["cli"])
@given(data=st.data())
def test_damaged_archive_through_the_cli(originals, kind, data):
    """``cifar-alexnet train`` on a damaged archive: exit 0 on the original data only, else exit 2 and one line."""
    original = originals[kind]
    damage, damaged = _damage(data, original)
    limits = ["--limit-train", "10", "--limit-test", "10", "--no-verify"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data" / original.written.path.name
        path.parent.mkdir()
        path.write_bytes(damaged)
        code, stderr = _train(path if kind == "image folder" else path.parent, Path(folder) / "run", limits)
        if code == 0:
            _assert_same_data(load_cifar10(path, cache_dir=Path(folder) / "cache", verify=False), original.written,
                              damage)
            return
    lines = stderr.strip().splitlines()
    assert code == 2, f"damage ({damage}): exit {code}\n{stderr}"
    assert len(lines) == 1 and lines[0].startswith("error: ") and original.written.path.name in lines[0], stderr


def test_the_undamaged_archives_load_and_train(originals, tmp_path):
    """The control: the originals themselves load exactly and train with exit 0 through the CLI."""
    for kind, original in originals.items():
        _assert_same_data(load_cifar10(original.written.path, cache_dir=tmp_path / "cache", verify=False),
                          original.written, "none")
    code, stderr = _train(originals["official"].written.root, tmp_path / "run",
                          ["--limit-train", "10", "--limit-test", "10", "--no-verify"])
    assert code == 0, stderr
    assert os.path.isfile(tmp_path / "run" / "last.safetensors")
