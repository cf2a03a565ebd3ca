"""What an image folder holds besides images, as a folder and as a tarball: hidden folders, links, one class or too many.

* Hidden entries (Jupyter's ``.ipynb_checkpoints``, macOS's ``.DS_Store`` and ``__MACOSX``)
  crashed the loader with ``KeyError``; they are skipped now, and counted in one line.
* One class, or 1,001, trained and wrote checkpoints nothing could read back; the class count
  is checked before anything is decoded, with the bounds the checkpoint reader uses.
* Hard and symbolic links in a tarball were dropped without a word (30 images in a folder,
  20 in its tarball); they read as the files they lead to, or are refused.
* A symbolic link to a class folder "held no images"; it is followed now.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile

import numpy as np
import pytest

import cifar_alexnet.data.image_folder as image_folder
from cifar_alexnet.checkpoints.format import save_checkpoint
from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.cli import main
from cifar_alexnet.data.cifar10 import load_cifar10
from cifar_alexnet.errors import CheckpointError, DataError
from cifar_alexnet.model import AlexNet
from data_factories import png_bytes, write_image_folder


def _load(path, tmp_path):
    return load_cifar10(path, cache_dir=tmp_path / "cache")


def _same(loaded, expected) -> None:
    for got, (images, labels) in zip(loaded, expected):
        np.testing.assert_array_equal(got.images, images)
        np.testing.assert_array_equal(got.labels, labels)


def _arrays(written):
    return [(written.train_images, written.train_labels), (written.test_images, written.test_labels)]


def _tar(folder, tarball, extra=()):
    """Pack ``folder``'s train/ and test/ as a tarball, then add the ``extra`` TarInfo entries."""
    with tarfile.open(tarball, "w:gz") as archive:
        for split in ("train", "test"):
            archive.add(folder / split, arcname=split)
        for info, data in extra:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return tarball


def _entry(name, kind=tarfile.REGTYPE, linkname="", data=None):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(data) if data is not None else 0
    return info, data


# ---------------------------------------------------------------------------------------- hidden entries


def _add_hidden_entries(folder):
    """What Jupyter and macOS leave behind: a hidden class folder, a hidden file, a __MACOSX tree."""
    (folder / "train" / ".ipynb_checkpoints").mkdir()
    shutil.copy(next((folder / "train" / "a").iterdir()), folder / "train" / ".ipynb_checkpoints" / "x.png")
    (folder / "train" / "a" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1 not an image")
    (folder / "__MACOSX" / "train" / "a").mkdir(parents=True)
    (folder / "__MACOSX" / "train" / "a" / "._0000.png").write_bytes(b"\0\5\26\7 AppleDouble")


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "tarball"])
def test_hidden_entries_are_skipped_and_counted_once(tmp_path, capsys, packed):
    written = write_image_folder(tmp_path / "data", 2, 1, classes=("a", "b"))
    _add_hidden_entries(written.root)
    path = written.root
    if packed:
        path = tmp_path / "data.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            for name in ("train", "test", "__MACOSX"):
                archive.add(written.root / name, arcname=name)
    _same(_load(path, tmp_path), _arrays(written))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"note: {path}: skipped 3 hidden entries"), lines
    assert "__MACOSX, train/.ipynb_checkpoints, train/a/.DS_Store" in lines[0]
    _same(_load(path, tmp_path), _arrays(written))  # from the cache: said once, not again
    assert capsys.readouterr().err == ""


def test_evaluate_on_a_folder_with_jupyter_checkpoints_runs(tmp_path, capsys):
    """The attack's case: train/.ipynb_checkpoints/x.jpg gave KeyError: '.ipynb_checkpoints' (a traceback)."""
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    _add_hidden_entries(written.root)
    checkpoint = save_checkpoint(tmp_path / "c.safetensors", AlexNet(num_classes=2, hidden=16),
                                 meta=CheckpointMeta(classes=written.classes, mean=(0.5,) * 3, std=(0.25,) * 3))
    assert main(["evaluate", str(checkpoint), "--data", str(written.root), "--cache-dir", str(tmp_path / "cache"),
                 "--device", "cpu", "--json"]) == 0
    assert "Traceback" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- class counts


@pytest.mark.parametrize("count", [1, 1001])
def test_a_class_count_a_checkpoint_cannot_hold_is_refused_before_decoding(tmp_path, monkeypatch, count):
    png = png_bytes(32, 32)
    for split in ("train", "test"):
        for i in range(count):
            (tmp_path / "data" / split / f"c{i:04d}").mkdir(parents=True)
            (tmp_path / "data" / split / f"c{i:04d}" / "0.png").write_bytes(png)

    def no_decoding(raw, where):
        raise AssertionError("an image was decoded before the class count was checked")

    monkeypatch.setattr(image_folder, "_decode_image", no_decoding)
    with pytest.raises(DataError, match=rf"{count:,} class folder\(s\).*needs 2 to 1,000 classes"):
        _load(tmp_path / "data", tmp_path)


def test_training_on_one_class_is_one_line_and_leaves_no_run(tmp_path, capsys):
    written = write_image_folder(tmp_path / "data", 2, 1, classes=("only",))
    assert main(["train", "--data", str(written.root), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--batch-size", "2", "--hidden", "16", "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "1 class folder(s)" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("num_classes", [1, 1001])
def test_the_writer_refuses_what_the_reader_would(tmp_path, num_classes):
    meta = CheckpointMeta(classes=tuple(f"c{i}" for i in range(num_classes)), mean=(0.5,) * 3, std=(0.25,) * 3)
    with pytest.raises(CheckpointError, match="could not be read back"):
        save_checkpoint(tmp_path / "c.safetensors", AlexNet(num_classes=num_classes, hidden=4), meta=meta)
    assert not (tmp_path / "c.safetensors").exists()


# ---------------------------------------------------------------------------------------- links


def test_a_symlinked_class_folder_is_followed(tmp_path):
    written = write_image_folder(tmp_path / "data", 2, 1, classes=("a", "b"))
    elsewhere = tmp_path / "elsewhere"
    shutil.move(written.root / "train" / "b", elsewhere)
    (written.root / "train" / "b").symlink_to(elsewhere)
    _same(_load(written.root, tmp_path), _arrays(written))


def test_a_fifo_in_a_class_folder_is_named_not_read(tmp_path):
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    os.mkfifo(written.root / "train" / "a" / "9999.png")
    with pytest.raises(DataError, match=r"9999\.png: not a regular file but a FIFO"):
        _load(written.root, tmp_path)


def test_a_fifo_given_as_the_data_set_is_named_not_searched(tmp_path):
    os.mkfifo(tmp_path / "cifar10.tar.gz")
    with pytest.raises(DataError, match=r"cifar10\.tar\.gz: not a regular file or a folder but a FIFO"):
        load_cifar10(tmp_path / "cifar10.tar.gz", cache_dir=tmp_path / "cache")


def test_links_in_a_tarball_read_as_the_files_they_lead_to(tmp_path):
    """A folder with copies and a tarball with links instead hold the same images (the attack: 30 vs 20)."""
    written = write_image_folder(tmp_path / "data", 3, 3, classes=("a", "b"))
    test_a = written.root / "test" / "a"
    pool_png = (written.root / "train" / "b" / "0000.png").read_bytes()
    links = [_entry("test/a/0003.png", tarfile.LNKTYPE, "test/a/0000.png"),  # hard link to an earlier file
             _entry("test/a/0004.png", tarfile.SYMTYPE, "0001.png"),  # symbolic link, relative to its folder
             _entry("test/a/0005.png", tarfile.SYMTYPE, "0004.png"),  # a chain: link -> link -> file
             _entry("test/a/0006.png", tarfile.SYMTYPE, "../../pool/x.png"),  # to a file outside the layout
             _entry("test/a/0007.png", tarfile.SYMTYPE, "../../late/x.png"),  # to a file later in the archive
             _entry("pool/x.png", data=pool_png), _entry("late/x.png", data=pool_png)]
    tarball = _tar(written.root, tmp_path / "links.tar.gz", links)
    for name, source in [("0003", "0000"), ("0004", "0001"), ("0005", "0001")]:
        shutil.copy(test_a / f"{source}.png", test_a / f"{name}.png")
    for name in ("0006", "0007"):
        (test_a / f"{name}.png").write_bytes(pool_png)
    expected = _load(written.root, tmp_path)  # the folder with copies
    assert len(expected[1].labels) == 3 + 3 + 5
    got = _load(tarball, tmp_path)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.parametrize("entry, words", [
    (("test/a/9.png", tarfile.SYMTYPE, "../../../etc/passwd"), "which is outside the archive"),
    (("test/a/9.png", tarfile.SYMTYPE, "/etc/passwd"), "which is outside the archive"),
    (("test/a/9.png", tarfile.SYMTYPE, "missing.png"), "which the archive does not hold"),
    (("test/a/9.png", tarfile.LNKTYPE, "test/a/9.png"), "round in a circle"),
    (("test/a/9.png", tarfile.SYMTYPE, "../b"), "which is a folder"),
    (("test/a/9.png", tarfile.FIFOTYPE, ""), "a FIFO (named pipe) entry, not a file"),
    (("test/a/9.png", tarfile.CHRTYPE, ""), "a character device entry, not a file"),
    (("train/c", tarfile.SYMTYPE, "a"), "symbolic link to the folder 'train/a'"),
])
def test_a_link_that_cannot_be_resolved_inside_the_archive_is_refused(tmp_path, entry, words):
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    tarball = _tar(written.root, tmp_path / "bad.tar.gz", [_entry(*entry)])
    with pytest.raises(DataError, match="member") as info:
        _load(tarball, tmp_path)
    assert words in str(info.value) and "Traceback" not in str(info.value)


def test_a_link_outside_the_layout_that_leads_nowhere_is_harmless(tmp_path):
    """Only links that would be images are resolved; a dangling README link does not fail the load."""
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    tarball = _tar(written.root, tmp_path / "ok.tar.gz", [_entry("docs/latest", tarfile.SYMTYPE, "nowhere")])
    _same(_load(tarball, tmp_path), _arrays(written))


def test_a_huge_link_target_is_refused_by_its_header(tmp_path):
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    big = png_bytes(32, 32) + bytes(2 << 20)
    tarball = _tar(written.root, tmp_path / "big.tar.gz",
                   [_entry("pool/big.png", data=big), _entry("test/a/9.png", tarfile.SYMTYPE, "../../pool/big.png")])
    with pytest.raises(DataError, match="more than the 1 MiB allowed"):
        _load(tarball, tmp_path)


# ---------------------------------------------------------------------------------------- the decode cache


def test_a_relabelled_cache_is_not_trusted(tmp_path, capsys):
    """The attack: the cache rewritten with its labels shifted dropped accuracy to 0 without a word."""
    written = write_image_folder(tmp_path / "data", 2, 2, as_tarball=True, classes=("a", "b", "c"))
    _same(_load(written.path, tmp_path), _arrays(written))
    (cache_file,) = (tmp_path / "cache").glob("*.npz")
    with np.load(cache_file) as npz:
        arrays = dict(npz)
    arrays["test_labels"] = (arrays["test_labels"] + 1) % 3  # every test image now carries a wrong label
    with open(cache_file, "wb") as handle:
        np.savez(handle, **arrays)  # valid zip, valid CRCs, the old checksum
    capsys.readouterr()
    _same(_load(written.path, tmp_path), _arrays(written))  # decoded again: the true labels
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "do not match their checksum" in err and str(cache_file) in err
    _same(_load(written.path, tmp_path), _arrays(written))  # and the replaced cache is used silently
    assert capsys.readouterr().err == ""


def test_a_cache_copied_over_another_inputs_cache_is_not_used(tmp_path, capsys):
    one = write_image_folder(tmp_path / "one", 1, 1, as_tarball=True, classes=("a", "b"), seed=1)
    two = write_image_folder(tmp_path / "two", 1, 1, as_tarball=True, classes=("a", "b"), seed=2)
    _load(one.path, tmp_path)
    (first,) = (tmp_path / "cache").glob("*.npz")
    _load(two.path, tmp_path)
    (second,) = set((tmp_path / "cache").glob("*.npz")) - {first}
    second.write_bytes(first.read_bytes())  # one's arrays under two's name, checksum intact
    capsys.readouterr()
    _same(_load(two.path, tmp_path), _arrays(two))
    assert "made from other data" in capsys.readouterr().err
