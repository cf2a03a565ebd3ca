"""``plot`` and ``summary`` on damaged run directories: one line, never a traceback, in bounded memory.

The attack found tracebacks from ``plot`` on deeply nested, non-numeric, incomplete and
huge-integer histories, 1.15 GB of memory for a 167 MB ``history.json``, a history decode
error that did not name its file, and tracebacks from ``summary --checkpoint`` on a missing or
junk file. The fixed cases come first; then hypothesis mutates a real run directory's
``history.json`` (its JSON, its bytes, or what stands at its path) and its checkpoints, and
runs the real entry point on the result. The rule for every outcome: exit 0 with the output
written, or exit 2 with one ``error:`` line that names the file at fault.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cifar_alexnet.checkpoints.format import save_checkpoint
from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.cli import main
from cifar_alexnet.data.arrays import CIFAR10_CLASSES
from cifar_alexnet.model import AlexNet
from cifar_alexnet.runtime.limits import MAX_HISTORY_BYTES
from cifar_alexnet.training.run_dir import write_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _history(epochs: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 40.0 + e, "test_loss": 2.2 / e, "test_acc": 38.0 + e,
             "lr": 1e-3, "epoch_time_s": 1.5, "images_per_s": 900.0, "eval_train_loss": 1.9 / e,
             "eval_train_acc": 41.0 + e} for e in range(1, epochs + 1)]


@pytest.fixture(scope="module")
def pristine_run(tmp_path_factory) -> Path:
    """A run directory as the trainer leaves it: history files and both checkpoints (a narrow model)."""
    run = tmp_path_factory.mktemp("run") / "run"
    run.mkdir()
    write_history(run, _history(3))
    meta = CheckpointMeta(classes=CIFAR10_CLASSES, mean=(0.5,) * 3, std=(0.25,) * 3)
    for name in ("best.safetensors", "last.safetensors"):
        save_checkpoint(run / name, AlexNet(hidden=16), meta=meta)
    return run


@contextlib.contextmanager
def _copy_of(run: Path):
    with tempfile.TemporaryDirectory() as folder:
        yield Path(shutil.copytree(run, Path(folder) / "run", symlinks=True))


@contextlib.contextmanager
def _deadline(seconds: int):
    """Turn a hang (a FIFO opened for reading waits for a writer for ever) into a test failure."""
    def expire(signum, frame):
        raise AssertionError(f"still running after {seconds} s: something blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _run(argv: list[str]) -> tuple[int, str]:
    """The exit status of ``cifar-alexnet ARGV`` run in this process, and what it printed on stderr."""
    err = io.StringIO()
    with _deadline(60), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, err.getvalue()


def _assert_clean_outcome(status: int, err: str, names: str) -> None:
    """Exit 0, or exit 2 with one error line naming ``names`` -- never a traceback (exit 1)."""
    assert "Traceback" not in err and "this is a bug" not in err, err
    assert status in (0, 2), (status, err)
    if status == 2:
        lines = err.strip().splitlines()
        assert lines[-1].startswith("error: ") and names in lines[-1], err


# ---------------------------------------------------------------------------------------- the attack's cases


HISTORIES = {
    "deeply nested": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "non-numeric": (json.dumps([{**_history(1)[0], "train_loss": "x"}]), "train_loss 'x' is not a finite number"),
    "incomplete": (json.dumps([*_history(2), {"epoch": 3}]), "lacks ['train_loss'"),
    "huge integer": ('[{"epoch": 1, "train_loss": ' + "9" * 400 + ', "train_acc": 1, "test_loss": 1, '
                     '"test_acc": 1}]', "is not a finite number"),
    "infinite": (json.dumps([{**_history(1)[0], "test_loss": float("inf")}]), "test_loss 'inf'"),
    "accuracy beyond 100 %": (json.dumps([{**_history(1)[0], "test_acc": 1e9}]), "in [0, 100]"),
    "epoch not an integer": (json.dumps([{**_history(1)[0], "epoch": [1]}]), "epoch '[1]' is not an integer"),
    "not UTF-8": ("\udcff\udcfe", "not UTF-8 text"),
    "empty list": ("[]", "non-empty JSON list"),
    "truncated": (json.dumps(_history(3))[:-7], "not valid JSON (Expecting"),
    "integer beyond Python's digit limit": ('[{"epoch": 1' + "0" * 5000 + "}]", "integer of more than 4,300 digits"),
}


@pytest.mark.parametrize("case", list(HISTORIES))
def test_plot_on_a_broken_history_is_one_line_naming_the_file(case, tmp_path, capsys):
    text, words = HISTORIES[case]
    (tmp_path / "history.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    status, err = _run(["plot", str(tmp_path)])
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {tmp_path / 'history.json'}") and words in err, err
    assert not (tmp_path / "curves.png").exists()


def test_a_huge_history_is_refused_by_its_size_without_reading_it(tmp_path, capsys):
    with open(tmp_path / "history.json", "wb") as handle:
        handle.truncate(20 * MAX_HISTORY_BYTES)  # sparse: 160 MiB on paper, nothing on disk
    tracemalloc.start()
    try:
        status, err = _run(["plot", str(tmp_path)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 2 and "larger than the 8 MiB" in err
    assert peak < 2 * MAX_HISTORY_BYTES + (16 << 20)


def test_a_history_of_many_tiny_objects_stops_at_the_first_bad_one(tmp_path, capsys):
    """`[{}, {}, ...]` in 8 MiB would be millions of dicts; the first empty record ends the parse."""
    (tmp_path / "history.json").write_text("[" + "{}," * (MAX_HISTORY_BYTES // 3 - 2) + "{}]")
    tracemalloc.start()
    try:
        status, err = _run(["plot", str(tmp_path)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 2 and "lacks" in err
    assert peak < 4 * MAX_HISTORY_BYTES


@pytest.mark.parametrize("what", ["fifo", "folder", "dangling link"])
def test_plot_and_predict_name_what_stands_where_a_file_should(what, tmp_path, capsys, pristine_run):
    for path in (tmp_path / "history.json", tmp_path / "image.png"):
        if what == "fifo":
            os.mkfifo(path)
        elif what == "folder":
            path.mkdir()
        else:
            path.symlink_to(tmp_path / "gone")
    words = {"fifo": "not a regular file but a FIFO", "folder": "not a regular file but a folder",
             "dangling link": "symbolic link to a missing file"}[what]
    status, err = _run(["plot", str(tmp_path)])  # the run directory: its history.json is the odd one
    assert status == 2 and words in err, err
    status, err = _run(["predict", str(pristine_run), str(tmp_path / "image.png"), "--device", "cpu"])
    assert status == 2 and words in err, err
    assert what == "dangling link" or "give the path of an image file" in err
    assert what == "dangling link" or "does not exist" not in err  # the attack: a FIFO or a folder "did not exist"


@pytest.mark.parametrize("junk", [None, b"", b"\x80\x02 not a pickle", os.urandom(3000), b"PK\x03\x04 zip?"])
def test_summary_on_a_missing_or_junk_checkpoint_is_one_line(junk, tmp_path, capsys):
    path = tmp_path / "c.safetensors"
    if junk is not None:
        path.write_bytes(junk)
    status, err = _run(["summary", "--checkpoint", str(path)])
    assert status == 2 and err.count("\n") == 1 and err.startswith("error: ") and str(path) in err, err


# ---------------------------------------------------------------------------------------- hypothesis


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
KEYS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "eval_train_acc", "eval_train_loss", "lr"]


@st.composite
def history_mutations(draw):
    """A function that damages a history.json in place: its JSON, its bytes, or what stands at its path."""
    kind = draw(st.sampled_from(["set value", "drop key", "replace row", "replace all", "truncate", "flip byte",
                                 "nest", "replace path"]))
    row, key = draw(st.integers(0, 2)), draw(st.sampled_from(KEYS))
    value = draw(JSON_VALUES)
    position, bit = draw(st.integers(0, 10**6)), draw(st.integers(0, 7))
    depth = draw(st.integers(1, 50_000))
    stand_in = draw(st.sampled_from(["fifo", "folder", "dangling link", "link loop", "missing", "empty"]))

    def mutate(path: Path) -> None:
        history = json.loads(path.read_text())
        raw = path.read_bytes()
        if kind == "set value":
            history[row][key] = value
        elif kind == "drop key":
            history[row].pop(key, None)
        elif kind == "replace row":
            history[row] = value
        elif kind == "replace all":
            history = value
        elif kind in ("truncate", "flip byte"):
            at = position % len(raw)
            raw = raw[:at] if kind == "truncate" else raw[:at] + bytes([raw[at] ^ (1 << bit)]) + raw[at + 1:]
            path.write_bytes(raw)
            return
        elif kind == "nest":
            path.write_text(json.dumps(history).replace("[", "[" * depth, 1) + "]" * (depth - 1))
            return
        else:
            _replace_path(path, stand_in)
            return
        path.write_text(json.dumps(history))

    return kind, mutate


def _replace_path(path: Path, stand_in: str) -> None:
    path.unlink()
    if stand_in == "fifo":
        os.mkfifo(path)
    elif stand_in == "folder":
        path.mkdir()
    elif stand_in == "dangling link":
        path.symlink_to(path.parent / "gone")
    elif stand_in == "link loop":
        path.symlink_to(path)
    elif stand_in == "empty":
        path.write_bytes(b"")


@settings(max_examples=40)
@given(mutation=history_mutations())
def test_plot_on_a_mutated_history_never_shows_a_traceback(pristine_run, mutation):
    kind, mutate = mutation
    with _copy_of(pristine_run) as run:
        mutate(run / "history.json")
        status, err = _run(["plot", str(run)])
        _assert_clean_outcome(status, err, "history.json")
        if status == 0:
            assert (run / "curves.png").read_bytes().startswith(PNG_SIGNATURE)


@st.composite
def run_dir_mutations(draw):
    """A function that damages a run directory's checkpoints: bytes cut, flipped or added, or the file replaced."""
    names = draw(st.lists(st.sampled_from(["best.safetensors", "last.safetensors"]), min_size=1, max_size=2,
                          unique=True))
    kind = draw(st.sampled_from(["truncate", "flip byte", "flip header byte", "append", "replace path"]))
    position, bit = draw(st.integers(0, 10**7)), draw(st.integers(0, 7))
    stand_in = draw(st.sampled_from(["fifo", "folder", "dangling link", "link loop", "missing", "empty"]))

    def mutate(run: Path) -> None:
        for name in names:
            path = run / name
            raw = path.read_bytes()
            header = 8 + int.from_bytes(raw[:8], "little")
            at = position % (header if kind == "flip header byte" else len(raw))
            if kind == "truncate":
                path.write_bytes(raw[:at])
            elif kind in ("flip byte", "flip header byte"):
                path.write_bytes(raw[:at] + bytes([raw[at] ^ (1 << bit)]) + raw[at + 1:])
            elif kind == "append":
                path.write_bytes(raw + bytes([bit]) * (position % 5000 + 1))
            else:
                _replace_path(path, stand_in)

    return mutate


@settings(max_examples=40)
@given(mutate=run_dir_mutations())
def test_summary_on_a_mutated_run_directory_never_shows_a_traceback(pristine_run, mutate):
    with _copy_of(pristine_run) as run:
        mutate(run)
        status, err = _run(["summary", "--checkpoint", str(run), "--format", "json"])
        _assert_clean_outcome(status, err, str(run))
