"""Batch pickles built to cost memory or time, read with ``--no-verify``: refused before they cost either.

The attack: a 62 KB official-format batch of nested shared references took 2.8 GB and 14 s,
and a deeper one ended in a MemoryError traceback. A pickle can describe a structure of 2^60
elements in a few hundred bytes (each level refers twice to the level below); it costs nothing
until something walks it -- NumPy converting it, ``repr`` quoting it, a dict hashing it. Each
case below must end in one DataError naming the file, quickly and in little memory: the peak
is measured with tracemalloc (NumPy reports its arrays to it), not the time, which depends on
the machine.

Also: a batch pickled by Python 3 at protocol 2 (``bytes`` written through ``_codecs.encode``)
was refused as "tampered"; it is read now.
"""

from __future__ import annotations

import pickle
import struct
import tracemalloc

import numpy as np
import pytest

from cifar_alexnet.cli import main
from cifar_alexnet.data.cifar10 import load_cifar10
from cifar_alexnet.errors import DataError
from cifar_alexnet.runtime.limits import MAX_PICKLE_OPCODES
from data_factories import hwc_to_official_rows, python2_pickle, write_official_archive

#: Peak memory a refused batch may cost (the valid files of the tiny archive are a few KB).
PEAK_BYTES = 64 << 20


def _shared_nest(levels: int, leaf=0) -> list:
    """``[x, x]`` nested ``levels`` deep around ``leaf``: 2**levels leaves, a few bytes per level when pickled."""
    x = [leaf]
    for _ in range(levels):
        x = [x, x]
    return x


def _opcodes(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


def _binput(i: int) -> bytes:
    return b"r" + struct.pack("<I", i)  # LONG_BINPUT


def _binget(i: int) -> bytes:
    return b"j" + struct.pack("<I", i)  # LONG_BINGET


def _tuple_key_bomb(levels: int) -> bytes:
    """A dict whose key is a tuple of tuples, ``levels`` deep, each level twice the one below (hashing walks 2**levels)."""
    parts = [b"}", _binput(0), b")", _binput(1), b"0"]  # the dict; () memoised and popped
    for i in range(1, levels + 1):
        parts += [_binget(i), _binget(i), b"\x86", _binput(i + 1), b"0"]  # TUPLE2 of the level below, twice
    return _opcodes(*parts, _binget(levels + 1), b"K\x01", b"s")  # the top tuple as key, BININT1 1, SETITEM


def _opcode_flood(count: int) -> bytes:
    return _opcodes(b"]", b"(", b"K\x00" * count, b"e")  # EMPTY_LIST, MARK, BININT1 0 ..., APPENDS


class _ArrayState:
    """Pickles as NumPy's ``_reconstruct`` followed by BUILD with a state we choose."""

    def __init__(self, state, shape=(0,)):
        self.state, self.shape = state, shape

    def __reduce__(self):
        reconstruct = np.empty(0, np.uint8).__reduce__()[0]
        return reconstruct, (np.ndarray, self.shape, b"b"), self.state


def _object_array(item) -> np.ndarray:
    array = np.empty(1, dtype=object)  # np.array([item]) would walk the nest
    array[0] = item
    return array


def _batch(**entries) -> bytes:
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    batch.update({k.encode(): v for k, v in entries.items()})
    return pickle.dumps(batch, protocol=2)


CASES = {
    "labels: 2**60 shared leaves": (_batch(labels=_shared_nest(60)), "'labels' must be a list of integers"),
    "data: 2**60 shared leaves": (_batch(data=_shared_nest(60)), "'data' must be a uint8 array"),
    "tuple key hashed 2**60 times": (_tuple_key_bomb(60), "dictionary key of type tuple"),
    "an empty array 10**12 long": (pickle.dumps({b"data": _ArrayState(None, shape=(10**12,))}, protocol=2),
                                   "_reconstruct"),
    "a 10**12-byte array from 10 bytes": (
        pickle.dumps({b"data": _ArrayState((1, (10**6, 10**6), np.dtype("u1"), False, b"\0" * 10))}, protocol=2),
        "an array of shape"),
    "an object array": (pickle.dumps({b"data": _object_array(_shared_nest(60))}, protocol=2), "integer arrays only"),
    "a set of shared lists": (pickle.dumps({b"data": frozenset([(1,)])}, protocol=4), "FROZENSET"),
    "a million and one instructions": (_opcode_flood(MAX_PICKLE_OPCODES + 1), "pickle instructions"),
}


@pytest.fixture
def official(tmp_path):
    written = write_official_archive(tmp_path / "data", n_train=10, n_test=2, as_tarball=False)
    return written


@pytest.mark.parametrize("name", list(CASES))
def test_a_pickle_built_to_explode_is_one_error_in_bounded_memory(official, name):
    raw, words = CASES[name]
    assert len(raw) < 2_500_000  # small on disk: the danger is in what it describes
    (official.path / "data_batch_2").write_bytes(raw)
    import torchvision.datasets  # noqa: F401 -- imported before the measurement: its import is not the reader's cost
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            load_cifar10(official.root, verify=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "data_batch_2" in message and words in message, message
    assert len(message) < 1000 and "\n" not in message  # the structure is quoted short, never whole
    assert peak < PEAK_BYTES, f"{name}: {peak / 2**20:.0f} MiB"


def test_label_names_built_to_explode_are_quoted_short(official):
    meta = {b"label_names": _shared_nest(60, leaf=b"cat"), b"num_vis": 3072}
    (official.path / "batches.meta").write_bytes(python2_pickle(meta))
    with pytest.raises(DataError, match=r"batches\.meta: label_names \[\[\[") as info:
        load_cifar10(official.root, verify=False)
    assert len(str(info.value)) < 1000


def test_the_cli_says_it_in_one_line(official, capsys):
    (official.path / "data_batch_1").write_bytes(_batch(labels=_shared_nest(62)))
    assert main(["evaluate", "unused.safetensors", "--data", str(official.root), "--no-verify"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_a_batch_pickled_by_python3_at_an_old_protocol_is_read(official, protocol):
    """Python 3 writes bytes at protocols 0-2 through _codecs.encode: that is not tampering."""
    images = np.random.default_rng(protocol).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    batch = {b"data": hwc_to_official_rows(images), b"labels": [4, 6], b"batch_label": b"x",
             b"filenames": [b"a.png", b""]}
    (official.path / "data_batch_3").write_bytes(pickle.dumps(batch, protocol=protocol))
    train, _ = load_cifar10(official.root, verify=False)
    np.testing.assert_array_equal(train.images[4:6], images)
    assert train.labels[4:6].tolist() == [4, 6]


def test_a_refused_name_is_described_without_calling_it_tampered(official):
    (official.path / "data_batch_1").write_bytes(pickle.dumps({"data": print}, protocol=2))
    with pytest.raises(DataError, match=r"refusing to load global (__builtin__|builtins)\.print") as info:
        load_cifar10(official.root, verify=False)
    assert "tamper" not in str(info.value)
