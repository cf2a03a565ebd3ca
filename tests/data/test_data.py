"""Loading CIFAR-10 from disk: the official format, image folders, the cache, and every refusal.

The archives are tiny ones written by :mod:`data_factories` in the exact official layout,
read through the same code as the real ``cifar-10-python.tar.gz`` (with ``verify=False``,
since their MD5s are not the official ones; the MD5 check itself is tested separately).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from PIL import Image

import cifar_alexnet.data.cifar10 as data_module
import cifar_alexnet.data.official_archive as official_archive_module
from cifar_alexnet.data.arrays import CIFAR10_CLASSES, ArrayDataset
from cifar_alexnet.errors import DataError
from cifar_alexnet.data.cifar10 import channel_stats, class_balanced_subset, load_cifar10
from cifar_alexnet.data.decode_cache import cache_checksum
from cifar_alexnet.data.image_folder import load_image_folder
from cifar_alexnet.data.torchvision_pipeline import original_train_transform, test_transform, TorchvisionDataset
from data_factories import (
    hwc_to_official_rows,
    python2_pickle,
    write_image_folder,
    write_official_archive,
    write_official_batches,
)

from tolerances import CHANNEL_STATS_F64, README_STATS_ABS


@pytest.fixture(autouse=True)
def _no_home_cache(tmp_path, monkeypatch):
    """Never write into the real ~/.cache during tests."""
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "default-cache"))


def _cache_files(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*") if p.is_file()) if cache_dir.exists() else []


# ---------------------------------------------------------------------------------------
# The official format
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_tarball", [True, False], ids=["tar.gz", "extracted"])
def test_official_format_round_trip(tmp_path, as_tarball):
    written = write_official_archive(tmp_path / "data", n_train=37, n_test=11, seed=3, as_tarball=as_tarball)
    train, test = load_cifar10(tmp_path / "data", verify=False)
    np.testing.assert_array_equal(train.images, written.train_images)
    np.testing.assert_array_equal(train.labels, written.train_labels)
    np.testing.assert_array_equal(test.images, written.test_images)
    np.testing.assert_array_equal(test.labels, written.test_labels)
    assert train.classes == CIFAR10_CLASSES and train.labels.dtype == np.int64
    assert train.images.dtype == np.uint8 and train.images.flags.c_contiguous
    assert "MD5 not checked" in train.source
    # The file or folder itself works as well as its parent directory.
    again, _ = load_cifar10(written.path, verify=False)
    np.testing.assert_array_equal(again.images, written.train_images)


def test_official_rows_are_rgb_planes_row_major(tmp_path):
    """A batch row is 1024 R values, then 1024 G, then 1024 B, each plane row by row."""
    pixel = np.arange(1024)  # pixel index h * 32 + w
    row = np.concatenate([pixel % 251, (pixel * 7) % 253, (pixel // 32) + 100]).astype(np.uint8)  # (3072,)
    rows = np.stack([row] * 5)
    write_official_batches(tmp_path, rows, [0, 1, 2, 3, 4], rows[:1], [9], as_tarball=False)
    train, test = load_cifar10(tmp_path, verify=False)
    image = train.images[0]
    for h, w in [(0, 0), (0, 31), (5, 17), (31, 0), (31, 31)]:
        k = h * 32 + w
        assert tuple(image[h, w]) == (k % 251, (k * 7) % 253, h + 100)
    assert train.labels.tolist() == [0, 1, 2, 3, 4] and test.labels.tolist() == [9]


def test_factory_pickles_look_like_python2_cpickle(tmp_path):
    written = write_official_archive(tmp_path, n_train=5, n_test=1, as_tarball=False)
    raw = (written.path / "data_batch_1").read_bytes()
    assert raw.startswith(b"\x80\x02}")  # protocol 2, a dict
    assert b"U\x04data" in raw and b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    assert b"_codecs" not in raw  # Python 3's way of pickling bytes at protocol 2


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_batches_pickled_by_python3_are_read_too(tmp_path, protocol):
    """A batch written with pickle.dump in Python 3 (str keys, modern protocols) is read the same way."""
    written = write_official_archive(tmp_path, n_train=10, n_test=3, as_tarball=False)  # 2 images per batch
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    batch = {"data": hwc_to_official_rows(images), "labels": [4, 6], "batch_label": "x", "filenames": ["a", "b"]}
    (written.path / "data_batch_3").write_bytes(pickle.dumps(batch, protocol=protocol))
    train, _ = load_cifar10(tmp_path, verify=False)
    np.testing.assert_array_equal(train.images[4:6], images)  # batches are concatenated in order 1..5
    np.testing.assert_array_equal(train.images[:4], written.train_images[:4])
    assert train.labels[4:6].tolist() == [4, 6]


def test_md5_verification_refuses_a_test_archive_and_says_how_to_proceed(tmp_path):
    write_official_archive(tmp_path / "tgz", n_train=10, n_test=2)
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz: MD5 [0-9a-f]{32} differs .*verify=False"):
        load_cifar10(tmp_path / "tgz")
    write_official_archive(tmp_path / "dir", n_train=10, n_test=2, as_tarball=False)
    with pytest.raises(DataError, match=r"cifar-10-batches-py/\S+: MD5 .* differs from the official"):
        load_cifar10(tmp_path / "dir")


@pytest.mark.parametrize("as_tarball", [True, False], ids=["tar.gz", "extracted"])
def test_md5_verification_accepts_files_with_the_expected_digests(tmp_path, monkeypatch, as_tarball):
    """Replace the table of expected digests (data, not code) by the test archive's digests."""
    written = write_official_archive(tmp_path, n_train=10, n_test=2, as_tarball=as_tarball)
    if as_tarball:
        digests = {"cifar-10-python.tar.gz": hashlib.md5(written.path.read_bytes()).hexdigest()}
    else:
        digests = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in written.path.iterdir()}
    monkeypatch.setattr(official_archive_module, "_official_md5s", lambda: dict(digests))
    train, _ = load_cifar10(tmp_path)  # verify=True is the default
    assert train.source == "CIFAR-10 (official archive)"
    np.testing.assert_array_equal(train.images, written.train_images)
    if not as_tarball:  # one changed byte in one batch is caught
        path = written.path / "data_batch_4"
        raw = bytearray(path.read_bytes())
        raw[-50] ^= 1
        path.write_bytes(bytes(raw))
        with pytest.raises(DataError, match="data_batch_4: MD5"):
            load_cifar10(tmp_path)


def test_the_official_digests_come_from_torchvision():
    from torchvision.datasets import CIFAR10

    digests = official_archive_module._official_md5s()
    assert digests["cifar-10-python.tar.gz"] == "c58f30108f718f92721af3b95e74349a" == CIFAR10.tgz_md5
    assert set(digests) == {"cifar-10-python.tar.gz", "batches.meta", "test_batch"} | {
        f"data_batch_{i}" for i in range(1, 6)}


def test_truncated_tarball(tmp_path):
    written = write_official_archive(tmp_path, n_train=200, n_test=20)
    raw = written.path.read_bytes()
    written.path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path, verify=False)
    message = str(info.value)
    assert str(written.path) in message and "corrupt or truncated" in message and "--download" in message


def test_missing_batch_file(tmp_path):
    written = write_official_archive(tmp_path, n_train=10, n_test=2, as_tarball=False)
    (written.path / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"missing data_batch_3 .*--data DIR"):
        load_cifar10(tmp_path, verify=False)


def test_garbage_in_a_batch_file(tmp_path):
    written = write_official_archive(tmp_path, n_train=10, n_test=2, as_tarball=False)
    (written.path / "test_batch").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(DataError, match=r"test_batch: .*(corrupt|not a safe)"):
        load_cifar10(tmp_path, verify=False)


def test_truncated_batch_file(tmp_path):
    written = write_official_archive(tmp_path, n_train=10, n_test=2, as_tarball=False)
    path = written.path / "data_batch_2"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"data_batch_2: cannot be read .*corrupt or truncated"):
        load_cifar10(tmp_path, verify=False)


def test_missing_directory_names_path_and_fix(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_cifar10(missing)
    assert str(missing) in str(info.value) and "--download" in str(info.value) and "--data" in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no CIFAR-10 data found"):
        load_cifar10(empty)


def test_download_failure_is_a_data_error(tmp_path, monkeypatch):
    from torchvision.datasets import utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(utils, "download_url", offline)
    with pytest.raises(DataError, match=r"could not download .*network is unreachable.*--data DIR"):
        load_cifar10(tmp_path / "data", download=True)


def test_download_is_skipped_when_the_data_is_there(tmp_path, monkeypatch):
    from torchvision.datasets import utils

    def must_not_download(*args, **kwargs):
        raise AssertionError("downloaded although the archive was present")

    monkeypatch.setattr(utils, "download_url", must_not_download)
    written = write_official_archive(tmp_path, n_train=10, n_test=2)
    train, _ = load_cifar10(tmp_path, download=True, verify=False)
    np.testing.assert_array_equal(train.images, written.train_images)


def test_unsupported_file_is_refused(tmp_path):
    path = tmp_path / "cifar.zip"
    path.write_bytes(b"PK")
    with pytest.raises(DataError, match=r"cifar\.zip: not a data set \(expected cifar-10-python\.tar\.gz"):
        load_cifar10(path)


def test_label_out_of_range(tmp_path):
    rows = np.zeros((10, 3072), np.uint8)  # two images per training batch
    write_official_batches(tmp_path, rows, [0, 1, 2, 3, 4, 5, 6, 7, 8, 10], rows[:1], [0], as_tarball=False)
    with pytest.raises(DataError, match=r"data_batch_5: label 10 at position 1 is out of range \[0, 10\)"):
        load_cifar10(tmp_path, verify=False)
    write_official_batches(tmp_path, rows, [0] * 10, rows[:1], [-1], as_tarball=False)
    with pytest.raises(DataError, match="test_batch: label -1"):
        load_cifar10(tmp_path, verify=False)


def test_wrong_shapes_and_meta(tmp_path):
    written = write_official_archive(tmp_path, n_train=10, n_test=2, as_tarball=False)
    batch = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (written.path / "data_batch_1").write_bytes(python2_pickle(batch))
    with pytest.raises(DataError, match=r"data_batch_1: 'data' must be a uint8 array of shape \(n, 3072\)"):
        load_cifar10(tmp_path, verify=False)
    write_official_batches(tmp_path, np.zeros((5, 3072), np.uint8), [0] * 5, np.zeros((1, 3072), np.uint8), [0],
                           as_tarball=False, label_names=["a", "b"])
    with pytest.raises(DataError, match="batches.meta: label_names"):
        load_cifar10(tmp_path, verify=False)


class _RunsCode:
    """Unpickling this calls os.mkdir(marker): proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("as_tarball", [True, False], ids=["tar.gz", "extracted"])
def test_malicious_pickle_is_refused_without_running_code(tmp_path, as_tarball):
    written = write_official_archive(tmp_path / "data", n_train=10, n_test=2, as_tarball=False)
    marker = tmp_path / "code-ran"
    payload = pickle.dumps({"data": _RunsCode(marker), "labels": [0]}, protocol=4)
    (written.path / "data_batch_1").write_bytes(payload)
    assert not marker.exists() and pickle.loads(payload) and marker.exists()  # the payload does run code...
    marker.rmdir()
    target = tmp_path / "data"
    if as_tarball:
        target = tmp_path / "tgz" / "cifar-10-python.tar.gz"
        target.parent.mkdir()
        with tarfile.open(target, "w:gz") as archive:
            archive.add(written.path, arcname="cifar-10-batches-py")
    with pytest.raises(DataError) as info:
        load_cifar10(target, verify=False)
    message = str(info.value)
    assert "data_batch_1" in message and "refusing to load global" in message and "mkdir" in message
    assert not marker.exists()  # ...but not when the loader reads it


# ---------------------------------------------------------------------------------------
# Image folders
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpg"])
@pytest.mark.parametrize("as_tarball", [False, True], ids=["dir", "tar.gz"])
def test_image_folder_round_trip(tmp_path, fmt, as_tarball):
    written = write_image_folder(tmp_path / "data", 3, 2, fmt=fmt, as_tarball=as_tarball, seed=1)
    train, test = load_cifar10(written, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(train.images, written.train_images)
    np.testing.assert_array_equal(train.labels, written.train_labels)
    np.testing.assert_array_equal(test.images, written.test_images)
    np.testing.assert_array_equal(test.labels, written.test_labels)
    assert train.classes == CIFAR10_CLASSES  # the official label order
    assert train.class_counts().tolist() == [3] * 10 and test.class_counts().tolist() == [2] * 10
    if not as_tarball:  # "cat" is label 3 in the official order, and its images come from train/cat/
        with Image.open(written.path / "train" / "cat" / f"0000.{fmt}") as image:
            np.testing.assert_array_equal(train.images[train.labels == 3][0], np.asarray(image))


def test_image_folder_under_one_top_level_folder_and_custom_classes(tmp_path):
    written = write_image_folder(tmp_path / "data" / "mydata", 2, 1, classes=("zebra", "ant", "moth"))
    train, test = load_image_folder(tmp_path / "data", cache_dir=tmp_path / "cache")
    assert train.classes == ("ant", "moth", "zebra")
    np.testing.assert_array_equal(train.images, written.train_images)
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_cache_is_written_once_and_reused(tmp_path):
    written = write_image_folder(tmp_path / "data", 2, 1, as_tarball=True)
    cache = tmp_path / "cache"
    train, _ = load_cifar10(written, cache_dir=cache)
    (cache_file,) = _cache_files(cache)
    assert cache_file.suffix == ".npz"
    mtime = cache_file.stat().st_mtime_ns
    # Overwrite the cached pixels, with a checksum that matches them: if the second load reads
    # the cache, it sees the change. (A change without a new checksum is refused: test_data_layout.py.)
    with np.load(cache_file) as npz:
        arrays = dict(npz)
    arrays["train_images"][0] = 255 - arrays["train_images"][0]
    contents = {k: v for k, v in arrays.items() if k not in ("source_key", "checksum", "format_version")}
    arrays["checksum"] = np.array(cache_checksum(str(arrays["source_key"]), contents))
    with open(cache_file, "wb") as handle:
        np.savez(handle, **arrays)
    mtime = cache_file.stat().st_mtime_ns
    again, _ = load_cifar10(written, cache_dir=cache)
    np.testing.assert_array_equal(again.images[0], 255 - train.images[0])
    np.testing.assert_array_equal(again.images[1:], train.images[1:])
    assert _cache_files(cache) == [cache_file] and cache_file.stat().st_mtime_ns == mtime


def test_changed_folder_is_decoded_again(tmp_path):
    written = write_image_folder(tmp_path / "data", 2, 1, classes=("a", "b"))
    cache = tmp_path / "cache"
    first, _ = load_cifar10(written, cache_dir=cache)
    Image.fromarray(np.full((32, 32, 3), 7, np.uint8)).save(written.path / "train" / "b" / "0002.png")
    second, _ = load_cifar10(written, cache_dir=cache)
    assert len(first) == 4 and len(second) == 5 and (second.images[-1] == 7).all()
    assert len(_cache_files(cache)) == 2


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "env-cache"))
    load_cifar10(written)
    assert len(_cache_files(tmp_path / "env-cache")) == 1


def test_unreadable_cache_is_rebuilt(tmp_path):
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))
    cache = tmp_path / "cache"
    load_cifar10(written, cache_dir=cache)
    (cache_file,) = _cache_files(cache)
    cache_file.write_bytes(cache_file.read_bytes()[:100])
    train, _ = load_cifar10(written, cache_dir=cache)
    np.testing.assert_array_equal(train.images, written.train_images)
    assert _cache_files(cache) == [cache_file] and cache_file.stat().st_size > 1000


def test_interrupted_cache_write_leaves_no_file(tmp_path, monkeypatch):
    written = write_image_folder(tmp_path / "data", 1, 1, classes=("a", "b"))

    def savez_then_interrupt(handle, **arrays):
        handle.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(data_module.np, "savez", savez_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_cifar10(written, cache_dir=tmp_path / "cache")
    assert _cache_files(tmp_path / "cache") == []


def _broken_folder(tmp_path: Path, name: str) -> Path:
    """A valid two-class PNG folder with one thing broken; returns the offending file or folder."""
    root = tmp_path / "data"
    write_image_folder(root, 2, 1, classes=("a", "b"))
    target = root / "train" / "b" / "0001.png"
    if name == "size":
        Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(target)
    elif name == "mode-L":
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(target)
    elif name == "mode-RGBA":
        Image.fromarray(np.zeros((32, 32, 4), np.uint8)).save(target)
    elif name == "truncated":
        target.write_bytes(target.read_bytes()[:60])
    elif name == "truncated-jpeg":
        target = target.with_suffix(".jpg")
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)).save(buffer, "JPEG")
        target.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    elif name == "not-an-image":
        target.write_bytes(b"hello")
    elif name == "empty-class":
        for f in (root / "test" / "b").iterdir():
            f.unlink()
        target = root / "test" / "b"
    elif name == "class-mismatch":
        (root / "test" / "c").mkdir()
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "test" / "c" / "0.png")
        target = root / "test"
    elif name == "other-file":
        target = root / "train" / "a" / "notes.txt"
        target.write_text("x")
    return target


@pytest.mark.parametrize("as_tarball", [False, True], ids=["dir", "tar.gz"])
@pytest.mark.parametrize("case, expected", [
    ("size", r"0001\.png: image is 24x16 pixels, expected 32x32\. Resize"),
    ("mode-L", r"0001\.png: image mode is 'L', expected 'RGB' .*convert\('RGB'\)"),
    ("mode-RGBA", r"0001\.png: image mode is 'RGBA', expected 'RGB'"),
    ("truncated", r"0001\.png: cannot decode the image .*corrupt or truncated"),
    ("truncated-jpeg", r"0001\.jpg: cannot decode the image .*corrupt or truncated"),
    ("not-an-image", r"0001\.png: cannot decode the image"),
    ("empty-class", r"test/b/ hold no images"),
    ("class-mismatch", r"different class folders \(only in train: \[\]; only in test: \['c'\]\)"),
    ("other-file", r"notes\.txt: not a \.png/\.jpg/\.jpeg file; remove it"),
])
def test_broken_image_folder_gives_one_clear_error_and_no_cache(tmp_path, case, expected, as_tarball):
    _broken_folder(tmp_path, case)
    source = tmp_path / "data"
    if as_tarball:
        source = tmp_path / "data.tar.gz"
        with tarfile.open(source, "w:gz") as archive:
            archive.add(tmp_path / "data", arcname=".")
    with pytest.raises(DataError, match=expected) as info:
        load_cifar10(source, cache_dir=tmp_path / "cache")
    assert str(source) in str(info.value)
    assert _cache_files(tmp_path / "cache") == []


def test_no_images_at_all(tmp_path):
    for split in ("train", "test"):
        (tmp_path / "data" / split / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        load_cifar10(tmp_path / "data", cache_dir=tmp_path / "cache")
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "train").mkdir()
    with pytest.raises(DataError, match=r"no train/<class>/ folders found"):
        load_image_folder(tmp_path / "only", cache_dir=tmp_path / "cache")


def test_tarball_with_path_traversal_is_refused(tmp_path):
    write_image_folder(tmp_path / "data", 1, 1, classes=("a",))
    archive_path = tmp_path / "evil.tar.gz"
    with tarfile.open(archive_path, "w:gz") as archive:
        archive.add(tmp_path / "data" / "train", arcname="train")
        archive.add(tmp_path / "data" / "test", arcname="test")
        archive.add(tmp_path / "data" / "train" / "a" / "0000.png", arcname="../outside.png")
    with pytest.raises(DataError, match=r"member '\.\./outside\.png' points outside the archive"):
        load_cifar10(archive_path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "outside.png").exists()


def test_corrupt_image_tarball(tmp_path):
    written = write_image_folder(tmp_path / "data", 3, 1, as_tarball=True)
    written.path.write_bytes(written.path.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"images\.tar\.gz: corrupt or truncated archive"):
        load_cifar10(written, cache_dir=tmp_path / "cache")
    assert _cache_files(tmp_path / "cache") == []


# ---------------------------------------------------------------------------------------
# ArrayDataset, statistics, subsets
# ---------------------------------------------------------------------------------------


def test_array_dataset_validates():
    images = np.zeros((3, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8 array of shape"):
        ArrayDataset(images.astype(np.float32), np.zeros(3, np.int64), ("a",), "x")
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        ArrayDataset(images, np.zeros(2, np.int64), ("a",), "x")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        ArrayDataset(images, np.array([0, 1, 2]), ("a", "b"), "x")
    ds = ArrayDataset(images, np.array([0, 1, 1], np.int32), ["a", "b"], "x")
    assert ds.labels.dtype == np.int64 and ds.classes == ("a", "b") and len(ds) == 3


@given(n=st.integers(1, 6), h=st.integers(1, 9), w=st.integers(1, 9), seed=st.integers(0, 2**32 - 1),
       high=st.integers(1, 256))
def test_channel_stats_equals_the_original_numpy_computation(n, h, w, seed, high):
    images = np.random.default_rng(seed).integers(0, high, (n, h, w, 3), dtype=np.uint8)
    mean, std = channel_stats(images)
    expected_mean = [np.mean(images[:, :, :, c]) / 255 for c in range(3)]
    expected_std = [np.std(images[:, :, :, c]) / 255 for c in range(3)]
    assert mean.dtype == np.float64 and std.dtype == np.float64
    np.testing.assert_allclose(mean, expected_mean, rtol=CHANNEL_STATS_F64, atol=0)
    np.testing.assert_allclose(std, expected_std, rtol=CHANNEL_STATS_F64, atol=1e-300)


def test_channel_stats_exact_cases():
    images = np.zeros((2, 4, 4, 3), np.uint8)
    images[0, ..., 0] = 255  # R: half 0, half 255 -> mean 0.5, std 0.5
    images[..., 1] = 51  # G: constant -> mean 0.2, std 0
    mean, std = channel_stats(ArrayDataset(images, np.zeros(2, np.int64), ("a",), "x"))
    assert mean.tolist() == [0.5, 0.2, 0.0] and std.tolist() == [0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="uint8 images of shape"):
        channel_stats(images.astype(np.float32))


def _labelled(counts: list[int]) -> ArrayDataset:
    labels = np.repeat(np.arange(len(counts)), counts)
    labels = np.random.default_rng(0).permutation(labels)
    images = np.arange(len(labels), dtype=np.uint32).reshape(-1, 1, 1, 1).repeat(32, 1).repeat(32, 2).repeat(3, 3)
    return ArrayDataset((images % 256).astype(np.uint8), labels, tuple(f"c{i}" for i in range(len(counts))), "toy")


@given(per_class=st.integers(1, 7), k=st.integers(1, 10), extra=st.integers(0, 5), seed=st.integers(0, 10**6))
def test_class_balanced_subset_counts(per_class, k, extra, seed):
    ds = _labelled([per_class + extra + c % 3 for c in range(k)])
    subset = class_balanced_subset(ds, per_class * k, seed=seed)
    assert subset.class_counts().tolist() == [per_class] * k
    # every chosen image is one of the originals, with its own label, no repeats, original order
    index = subset.images[:, 0, 0, 0].astype(int)  # images encode their position (mod 256; sizes < 256 here)
    assert len(set(index.tolist())) == len(index) and (np.diff(index) > 0).all()
    np.testing.assert_array_equal(ds.labels[index], subset.labels)
    again = class_balanced_subset(ds, per_class * k, seed=seed)
    np.testing.assert_array_equal(again.images, subset.images)
    assert subset.classes == ds.classes and "class-balanced subset" in subset.source


def test_class_balanced_subset_errors():
    ds = _labelled([5, 3, 5])
    with pytest.raises(ValueError, match=r"multiple of the number of classes \(3\) so every class gets the same count; try n 6"):
        class_balanced_subset(ds, 7)
    with pytest.raises(ValueError, match=r"n 12: needs 4 images per class but 'c1' has 3; the largest that can be met is n 9"):
        class_balanced_subset(ds, 12)
    different = {tuple(class_balanced_subset(ds, 6, seed=s).images[:, 0, 0, 0]) for s in range(10)}
    assert len(different) > 1  # the seed matters


# ---------------------------------------------------------------------------------------
# The original torchvision pipeline
# ---------------------------------------------------------------------------------------


def test_original_train_transform_is_the_notebooks():
    from torchvision import transforms

    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    steps = original_train_transform(mean, std).transforms
    assert [type(s) for s in steps] == [transforms.RandomCrop, transforms.RandomHorizontalFlip,
                                        transforms.ColorJitter, transforms.RandomGrayscale,
                                        transforms.ToTensor, transforms.Normalize]
    assert steps[0].size == (32, 32) and steps[0].padding == 4 and steps[0].fill == 0
    assert steps[1].p == 0.5 and steps[3].p == 0.3
    assert (steps[2].brightness, steps[2].contrast, steps[2].saturation, steps[2].hue) == (None,) * 4
    assert tuple(steps[5].mean) == mean and tuple(steps[5].std) == std
    assert len(original_train_transform(mean, std, color_jitter=False, grayscale=False).transforms) == 4


def test_color_jitter_without_arguments_changes_nothing():
    from torchvision import transforms

    jitter = transforms.ColorJitter()
    rng = np.random.default_rng(0)
    for _ in range(20):
        image = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        np.testing.assert_array_equal(np.asarray(jitter(image)), np.asarray(image))


def test_test_transform_and_torchvision_dataset():
    rng = np.random.default_rng(0)
    ds = ArrayDataset(rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), np.array([3, 1, 4, 1]),
                      CIFAR10_CLASSES, "toy")
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    torch_ds = TorchvisionDataset(ds, test_transform(mean, std))
    assert len(torch_ds) == 4
    x, y = torch_ds[2]
    assert y == 4 and isinstance(y, int) and x.shape == (3, 32, 32) and x.dtype == torch.float32
    expected = (ds.images[2].transpose(2, 0, 1) / 255 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(x.numpy(), expected, rtol=0, atol=1e-5)  # float32 vs float64: a few ulps of ~4
    x_train, _ = TorchvisionDataset(ds, original_train_transform(mean, std))[0]
    assert x_train.shape == (3, 32, 32)


# ---------------------------------------------------------------------------------------
# Real data: the JPEG copy in shared/data
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jpeg_cifar(jpeg_archive, tmp_path_factory):
    """The JPEG copy decoded once per test session (about 10 s on two cores)."""
    cache = tmp_path_factory.mktemp("jpeg-cache")
    started = time.perf_counter()
    train, test = load_cifar10(jpeg_archive, cache_dir=cache)
    return train, test, cache, time.perf_counter() - started


@pytest.mark.slow
@pytest.mark.realdata
def test_real_jpeg_copy(jpeg_archive, jpeg_cifar):
    train, test, cache, decode_seconds = jpeg_cifar
    print(f"decoded {len(train) + len(test)} JPEGs in {decode_seconds:.1f} s")
    assert (len(train), len(test)) == (50_000, 10_000)
    assert train.class_counts().tolist() == [5_000] * 10 and test.class_counts().tolist() == [1_000] * 10
    assert train.classes == CIFAR10_CLASSES and train.source == "CIFAR-10 (JPEG q75 copy)"
    mean, std = channel_stats(train)
    np.testing.assert_allclose(mean, [0.4913, 0.4821, 0.4465], rtol=0, atol=README_STATS_ABS)
    np.testing.assert_allclose(std, [0.2452, 0.2428, 0.2606], rtol=0, atol=README_STATS_ABS)
    assert len(_cache_files(cache)) == 1  # decoded once into one cache file (reuse: test_cache_is_written_once...)
