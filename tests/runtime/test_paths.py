"""cifar_alexnet.runtime.paths: what a write may replace and what a read may open.

Only files made here stand in for the dangerous cases: a FIFO (``os.mkfifo``), a UNIX socket,
a folder and symbolic links in ``tmp_path``. A device node takes the same path through the
code (anything that is not a regular file) and is never touched.
"""

from __future__ import annotations

import os
import socket
import stat
import sys

import pytest

from cifar_alexnet.errors import DataError, MissingFileError, OutputPathError
from cifar_alexnet.runtime.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from cifar_alexnet.runtime.paths import input_file, output_file

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, sockets and symbolic links")


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path):
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    yield path
    server.close()


def _kind(path) -> str:
    mode = os.lstat(path).st_mode
    return ("fifo" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "dir" if stat.S_ISDIR(mode)
            else "link" if stat.S_ISLNK(mode) else "file")


@pytest.mark.parametrize("make, words", [("fifo", "a FIFO (named pipe)"), ("unix_socket", "a socket")])
def test_a_fifo_or_a_socket_is_never_replaced(request, make, words, tmp_path):
    path = request.getfixturevalue(make)
    kind = _kind(path)
    with pytest.raises(OutputPathError, match="not a regular file") as info:
        atomic_write_bytes(path, b"PNG")
    assert words in str(info.value) and str(path) in str(info.value)
    assert _kind(path) == kind  # still the FIFO / socket it was
    assert os.listdir(tmp_path) == [path.name]  # and no temporary file beside it


def test_a_folder_is_refused_with_a_fix(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputPathError, match=r"not a regular file but a folder.*file name inside it"):
        output_file(tmp_path / "d", "--out")
    assert (tmp_path / "d").is_dir()


def test_a_symbolic_link_is_followed_and_stays_a_link(tmp_path):
    """The documented choice: like open(path, "w"), the write goes to the file the link points to."""
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "curves.png"
    target.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    assert output_file(link) == target.resolve()
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path / "real")) == ["curves.png"]  # the temporary file went next to the target


def test_a_dangling_link_creates_its_target(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "made.txt")
    atomic_write_text(link, "hello")
    assert link.is_symlink() and (tmp_path / "made.txt").read_text() == "hello"


def test_a_link_to_a_fifo_is_refused_like_the_fifo(fifo, tmp_path):
    link = tmp_path / "out.png"
    link.symlink_to(fifo)
    with pytest.raises(OutputPathError, match="not a regular file"):
        atomic_write_bytes(link, b"x")
    assert _kind(fifo) == "fifo" and _kind(link) == "link"


def test_a_link_loop_is_refused(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OutputPathError, match="circle"):
        atomic_write_bytes(tmp_path / "a", b"x")


def test_a_file_where_a_folder_should_be_is_named(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        output_file(tmp_path / "f" / "sub" / "x.png", "--out")


def test_something_that_appears_during_the_write_is_not_replaced(tmp_path):
    """The check is made again just before the rename."""
    path = tmp_path / "out.bin"
    with pytest.raises(OutputPathError, match="any more"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"x")
            os.mkfifo(path)  # appears while the file is being written
    assert _kind(path) == "fifo" and os.listdir(tmp_path) == ["out.bin"]


def test_input_file_says_what_stands_there(fifo, tmp_path):
    with pytest.raises(DataError, match=r"image .*pipe: not a regular file but a FIFO"):
        input_file(fifo, "image", DataError)
    with pytest.raises(DataError, match=r"not a regular file but a folder"):
        input_file(tmp_path, "image", DataError)
    with pytest.raises(MissingFileError, match="does not exist"):
        input_file(tmp_path / "nothing.png", "image", DataError)
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    with pytest.raises(MissingFileError, match="symbolic link to a missing file"):
        input_file(tmp_path / "dangling", "image", DataError)
