"""Training curves: accuracy and loss per epoch, training set vs test set, from a run's ``history.json``.

The figure has the two panels of the original write-up's plot -- accuracy (left) and loss
(right) -- with one line for the training set and one for the test set. When the history
holds ``eval_train_acc`` / ``eval_train_loss`` (the training set re-evaluated in eval mode
after the epoch, as the original notebook measured it), those are drawn dashed beside the
running training averages.

``--compare-original`` overlays the accuracies the 2020 write-up printed every fifth epoch
(:data:`ORIGINAL_PUBLISHED_ACCURACY`), so a reproduction can be judged by eye.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from cifar_alexnet.errors import DataError, MissingFileError
from cifar_alexnet.runtime.atomic import atomic_path
from cifar_alexnet.runtime.limits import MAX_COUNTER, MAX_HISTORY_BYTES, format_bytes
from cifar_alexnet.runtime.paths import input_file

__all__ = ["ORIGINAL_PUBLISHED_ACCURACY", "ORIGINAL_SOURCE", "load_history", "plot_history"]

ORIGINAL_SOURCE = ("2020 course write-up '[Intro to AI] CIFAR-10 AlexNet 학습', training log, "
                   "official CIFAR-10, Adam 1e-3, batch 512")

#: ``epoch -> (train accuracy %, test accuracy %)`` exactly as the write-up's log printed them.
#: Its "train" accuracy was measured in eval mode over the *augmented* training loader.
ORIGINAL_PUBLISHED_ACCURACY: dict[int, tuple[float, float]] = {
    5: (78.28, 78.76), 10: (80.62, 80.63), 15: (88.65, 86.13), 20: (88.85, 85.92),
    25: (93.24, 88.16), 30: (93.05, 87.51), 35: (95.17, 89.18), 40: (96.55, 89.81),
    45: (96.92, 89.44), 50: (97.17, 89.36), 55: (97.56, 89.59), 60: (98.10, 90.34),
    65: (98.19, 90.27), 70: (98.56, 90.00), 75: (98.47, 90.00), 80: (98.47, 90.27),
    85: (98.63, 89.87), 90: (98.87, 90.27), 95: (98.45, 90.01), 100: (98.44, 89.90),
}

_REQUIRED_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")
_OPTIONAL_KEYS = ("eval_train_loss", "eval_train_acc")
#: Largest magnitude of a loss or accuracy that is plotted (an accuracy must also lie in [0, 100]).
_MAX_VALUE = 1e15


def load_history(run_dir_or_file: str | Path) -> list[dict]:
    """Read ``history.json`` (a list of per-epoch dicts) from a run directory or the file itself.

    Bounded for any file: one larger than :data:`~cifar_alexnet.runtime.limits.MAX_HISTORY_BYTES`
    is refused by its size, and every JSON object is checked as soon as it is parsed (its
    ``epoch`` an integer in ``0..MAX_COUNTER``, its losses and accuracies finite numbers, the
    accuracies in ``[0, 100]``) and kept with those fields only, so a malformed file stops at its
    first bad record and a well-formed one takes a few hundred bytes per epoch.

    Raises:
        MissingFileError: no history there.
        DataError: not a regular file, too large, not UTF-8 JSON (or nested too deep), or not a
            non-empty list of records with ``epoch, train_loss, train_acc, test_loss, test_acc``.
            The message names the file, and the record and field at fault.
    """
    path = Path(run_dir_or_file)
    if path.is_dir():
        path = path / "history.json"
    try:
        input_file(path, "history", DataError)
    except MissingFileError as exc:
        raise MissingFileError(f"{exc}; pass a run directory written by `cifar-alexnet train`") from None
    text = _read_bounded_text(path)
    try:
        history = json.loads(text, object_pairs_hook=lambda pairs: _record(pairs, path))
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be a run's history") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); the run "
                        "may have been interrupted while writing it") from None
    except DataError:
        raise
    except ValueError:  # valid JSON, but an integer longer than Python converts (sys.get_int_max_str_digits)
        raise DataError(f"{path}: holds an integer of more than {sys.get_int_max_str_digits():,} digits, which no "
                        "run writes; it is not a history.json that `cifar-alexnet train` wrote") from None
    if not isinstance(history, list) or not history or not all(isinstance(row, dict) for row in history):
        raise DataError(f"{path}: expected a non-empty JSON list of per-epoch objects")
    return history


def _read_bounded_text(path: Path) -> str:
    """The file's text, refused beyond MAX_HISTORY_BYTES before it is read and if it is not UTF-8."""
    with open(path, "rb") as handle:
        raw = handle.read(MAX_HISTORY_BYTES + 1)
    if len(raw) > MAX_HISTORY_BYTES:
        raise DataError(f"{path}: larger than the {format_bytes(MAX_HISTORY_BYTES)} a run's history may take "
                        "(MAX_HISTORY_BYTES in cifar_alexnet/runtime/limits.py; 100 epochs take about 30 KB); "
                        "refused without reading it whole")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start:,} is {raw[exc.start]:#04x}); it is not a "
                        "history.json that `cifar-alexnet train` wrote") from None


def _record(pairs: list[tuple[str, Any]], path: Path) -> dict[str, Any]:
    """One JSON object of the history, checked as it is parsed; only the plotted fields are kept."""
    fields = dict(pairs)
    missing = [key for key in _REQUIRED_KEYS if key not in fields]
    if missing:
        raise DataError(f"{path}: an epoch record lacks {missing} (each needs {list(_REQUIRED_KEYS)})")
    epoch = fields["epoch"]
    if type(epoch) is not int or not 0 <= epoch <= MAX_COUNTER:
        raise DataError(f"{path}: epoch {str(epoch)[:40]!r} is not an integer in 0..{MAX_COUNTER:,}")
    record = {"epoch": epoch}
    for key in (*_REQUIRED_KEYS[1:], *_OPTIONAL_KEYS):
        value = fields.get(key)
        if value is None and key in _OPTIONAL_KEYS:
            continue
        if type(value) not in (int, float) or not _plottable(value, accuracy=key.endswith("_acc")):
            raise DataError(f"{path}: epoch {epoch}: {key} {str(value)[:40]!r} is not a finite number"
                            + (" in [0, 100]" if key.endswith("_acc") else f" of magnitude at most {_MAX_VALUE:g}"))
        record[key] = float(value)
    if len([key for key in _OPTIONAL_KEYS if key in record]) == 1:  # the two are drawn together
        raise DataError(f"{path}: epoch {epoch}: has one of {list(_OPTIONAL_KEYS)} without the other")
    return record


def _plottable(value: float, accuracy: bool) -> bool:
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float's range
        return False
    return math.isfinite(number) and (0.0 <= number <= 100.0 if accuracy else abs(number) <= _MAX_VALUE)


def _as_percent(values: Sequence[float]) -> list[float]:
    """Accuracies are stored as fractions in [0, 1]; plot them as percentages.

    A history that already holds percentages (any value > 1) is left as it is.
    """
    values = [float(v) for v in values]
    return values if any(v > 1.0 for v in values) else [100.0 * v for v in values]


def plot_history(history: Sequence[Mapping], path: str | Path, *, compare_original: bool = False,
                 title: str = "") -> Path:
    """Draw accuracy and loss curves (train vs test) and write them as a PNG, atomically.

    Args:
        history: per-epoch dicts with ``epoch, train_loss, train_acc, test_loss, test_acc``
            (accuracies as fractions or percentages) and optionally ``eval_train_loss``,
            ``eval_train_acc``.
        path: the PNG to write.
        compare_original: overlay :data:`ORIGINAL_PUBLISHED_ACCURACY` as markers.
        title: figure title.
    """
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_acc, ax_loss = fig.subplots(1, 2)

    ax_acc.plot(epochs, _as_percent([r["train_acc"] for r in history]), label="train (running, augmented)")
    ax_acc.plot(epochs, _as_percent([r["test_acc"] for r in history]), label="test")
    ax_loss.plot(epochs, [r["train_loss"] for r in history], label="train (running, augmented)")
    ax_loss.plot(epochs, [r["test_loss"] for r in history], label="test")
    with_eval = [r for r in history if r.get("eval_train_acc") is not None]
    if with_eval:
        ax_acc.plot([r["epoch"] for r in with_eval], _as_percent([r["eval_train_acc"] for r in with_eval]),
                    "--", label="train (eval mode)")
        ax_loss.plot([r["epoch"] for r in with_eval], [r["eval_train_loss"] for r in with_eval],
                     "--", label="train (eval mode)")
    if compare_original:
        pub_epochs = sorted(ORIGINAL_PUBLISHED_ACCURACY)
        ax_acc.plot(pub_epochs, [ORIGINAL_PUBLISHED_ACCURACY[e][0] for e in pub_epochs], "o", mfc="none",
                    color="gray", label="2020 write-up: train (published, every 5th epoch)")
        ax_acc.plot(pub_epochs, [ORIGINAL_PUBLISHED_ACCURACY[e][1] for e in pub_epochs], "s", mfc="none",
                    color="black", label="2020 write-up: test (published, every 5th epoch)")

    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.set_title("loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path
