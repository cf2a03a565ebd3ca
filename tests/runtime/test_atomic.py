"""cifar_alexnet.runtime.atomic: all-or-nothing writes, with the permissions a plain open() would give.

(Full-disk behaviour is tested on a real tmpfs in test_disk_full.py.)
"""

from __future__ import annotations

import os
import stat
import sys

import pytest

from cifar_alexnet.runtime.atomic import atomic_path, atomic_write_bytes, atomic_write_json

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_a_new_file_gets_the_umask_default_like_open_does(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain.txt", "w"):
        pass
    atomic_write_bytes(tmp_path / "atomic.txt", b"x")
    assert _mode(tmp_path / "atomic.txt") == _mode(tmp_path / "plain.txt") == 0o666 & ~mask


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "cache.json"
    target.write_text("{}")
    target.chmod(0o640)
    atomic_write_json(target, {"a": 1})
    assert _mode(target) == 0o640
    assert target.read_text() == '{\n  "a": 1\n}\n'


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]
