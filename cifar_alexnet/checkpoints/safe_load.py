"""Reading weights without running code, and a readable check that weights fit a model.

A ``.pth`` file is a pickle, and unpickling can run arbitrary code: :func:`load_torch_file_safely`
reads one with ``torch.load(weights_only=True)``, which accepts only tensors and plain
containers. :func:`check_state_dict_matches` explains, key by key, why weights do not fit a
model. Both raise :class:`CheckpointError`, a ``ValueError`` whose message names the file
and the fix.

``torch.load`` builds every tensor of a file before anything can be checked, so the file's
size is checked first, from ``stat``: at most :func:`max_torch_file_bytes`, the weights of the
largest model a checkpoint may describe (:mod:`cifar_alexnet.checkpoints.meta`) in float64,
plus room for the pickle and the zip records. A file in torch's zip format (every
``torch.save`` since torch 1.6) is memory-mapped, so its tensors are read from the file as
they are used instead of being copied into memory first.
"""

from __future__ import annotations

import functools
import math
import pickle
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from cifar_alexnet.checkpoints import schema
from cifar_alexnet.checkpoints.meta import Arch
from cifar_alexnet.errors import CheckpointError, MissingFileError
from cifar_alexnet.runtime.limits import MAX_CLASSES, MAX_HIDDEN, format_bytes

__all__ = ["MIN_SAFE_TORCH", "check_state_dict_matches", "load_torch_file_safely",
           "max_torch_file_bytes", "torch_version_tuple"]


#: The first torch release whose ``torch.load(weights_only=True)`` has no published bypass;
#: older ones had CVE-2025-32434 and CVE-2026-24747. ``pyproject.toml`` requires it too.
MIN_SAFE_TORCH = (2, 10)


def torch_version_tuple(version: str | None = None) -> tuple[int, int]:
    """``(major, minor)`` of a torch version string such as ``"2.14.1+cu130"`` (default: the running torch)."""
    major, minor = (version or torch.__version__).split("+")[0].split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


@functools.cache
def max_torch_file_bytes() -> int:
    """The largest ``.pth`` file :func:`load_torch_file_safely` reads, in bytes.

    The bounds of a safetensors checkpoint (:mod:`cifar_alexnet.checkpoints.meta`), applied
    to a pickle: the weights of the largest model a checkpoint may describe -- AlexNet with
    ``num_classes=MAX_CLASSES`` and ``hidden=MAX_HIDDEN``, 354 million numbers -- in the widest
    dtype a checkpoint may hold (float64, 8 bytes), plus ``MAX_HEADER_BYTES`` for everything
    that is not tensor data (the pickled keys, the zip records): 2.7 GiB. The original
    notebook's weights (``hidden=2048``, float32) take 57 MiB.
    """
    shapes = schema.expected_model_shapes(Arch(num_classes=MAX_CLASSES, hidden=MAX_HIDDEN, dropout=0.0))
    numbers = sum(math.prod(shape) for shape, _ in shapes.values())
    return numbers * max(schema.DTYPE_SIZES.values()) + schema.MAX_HEADER_BYTES


#: The first bytes of a zip archive: how every ``torch.save`` since torch 1.6 begins.
ZIP_MAGIC = b"PK\x03\x04"


def load_torch_file_safely(path: str | PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with errors that explain themselves.

    ``weights_only=True`` restricts unpickling to tensors and plain containers, so a file
    crafted to run code when loaded is refused before anything runs. A file larger than
    :func:`max_torch_file_bytes` is refused before any of it is read. A zip-format file is
    memory-mapped (``mmap=True``: the tensors are read from the file as they are used, so they
    need the file unchanged until they are copied, as the package's loaders do at once); a file
    of the legacy format (``_use_new_zipfile_serialization=False``) is read whole.

    Raises:
        MissingFileError: nothing at ``path``.
        CheckpointError: the file is larger than any model this package loads, it holds code or
            objects other than tensors and containers, or it is not a torch file at all
            (truncated, random bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist")
    size, limit = path.stat().st_size, max_torch_file_bytes()
    if size > limit:
        raise CheckpointError(
            f"{path}: {size:,} bytes ({format_bytes(size)}), more than the {limit:,} bytes ({format_bytes(limit)}) "
            "that the float64 weights of the largest model this package loads take, so it was not read. If it "
            "holds more than a model's weights (an optimizer, say), save only the weights -- "
            "torch.save(model.state_dict(), path) -- or convert them to safetensors "
            "(cifar_alexnet.checkpoints.format.save_checkpoint).")
    if torch_version_tuple() < MIN_SAFE_TORCH:
        raise CheckpointError(
            f"{path}: refusing to unpickle with torch {torch.__version__}: before "
            f"{'.'.join(map(str, MIN_SAFE_TORCH))}, torch.load(weights_only=True) has published bypasses "
            "(CVE-2025-32434, CVE-2026-24747) that let a crafted file run code. Upgrade torch "
            "(pip install 'torch>=2.10'), or use a safetensors checkpoint, which holds no code.")
    try:
        with open(path, "rb") as handle:
            zip_format = handle.read(len(ZIP_MAGIC)) == ZIP_MAGIC
        return torch.load(path, map_location=map_location, weights_only=True, mmap=zip_format)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load -- the file contains code or objects other than tensors and plain "
            "containers, which could run arbitrary code when unpickled. Only load it if you trust its "
            "source; better, re-save its state_dict as safetensors (cifar_alexnet.checkpoints.format."
            f"save_checkpoint) in an environment you trust. Details: {str(exc).splitlines()[-1] if str(exc) else exc}"
        ) from None
    except Exception as exc:  # zip/pickle format errors: truncated or not a torch file
        raise CheckpointError(
            f"{path}: not a readable torch file ({type(exc).__name__}: {exc}). It is truncated or not "
            "something torch.save wrote; copy it again or convert the original to safetensors."
        ) from exc


def _arch_hint(model_shapes: Mapping[str, tuple], file_shapes: Mapping[str, tuple]) -> str:
    """Guess which constructor argument explains a shape mismatch."""
    hints = []
    last = "classifier.8.weight"  # FC3: (num_classes, hidden)
    if last in file_shapes and last in model_shapes and file_shapes[last][0] != model_shapes[last][0]:
        hints.append(f"num_classes={file_shapes[last][0]}")
    first_fc = "classifier.1.weight"  # FC1: (hidden, 4096)
    if first_fc in file_shapes and first_fc in model_shapes and file_shapes[first_fc][0] != model_shapes[first_fc][0]:
        hints.append(f"hidden={file_shapes[first_fc][0]}")
    return f" Hint: this checkpoint was trained with {', '.join(hints)}." if hints else ""


def check_state_dict_matches(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise a readable error unless ``state_dict`` has exactly the model's keys and shapes.

    ``model.load_state_dict`` would also refuse, but its message is hard to act on; this one
    lists, on one line, what is missing, what is extra and which shapes differ, and guesses the cause.

    Args:
        model: the model the weights are meant for.
        state_dict: the weights (keys already converted to the model's names).
        source: where they came from (a file name), quoted in the message.

    Raises:
        CheckpointError: (a ``ValueError``) with the lists described above.
    """
    model_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    file_shapes = {k: tuple(v.shape) for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    not_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    missing = [k for k in model_shapes if k not in file_shapes and k not in not_tensors]
    unexpected = [k for k in state_dict if k not in model_shapes]
    mismatched = [k for k in model_shapes if k in file_shapes and file_shapes[k] != model_shapes[k]]
    if not (missing or unexpected or mismatched or not_tensors):
        return

    def listing(keys: list[str], limit: int = 12) -> str:
        shown = ", ".join(keys[:limit])
        return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")

    lines = [f"{source}: the weights do not fit {type(model).__name__}"
             + (f"({', '.join(f'{k}={v}' for k, v in model.arch().items())})" if hasattr(model, "arch") else "")]
    if missing:
        lines.append(f"missing keys ({len(missing)}): {listing(missing)}")
    if unexpected:
        lines.append(f"unexpected keys ({len(unexpected)}): {listing(unexpected)}")
    if mismatched:
        lines.append(f"mismatched shapes ({len(mismatched)}): "
                     + ", ".join(f"{k}: file {file_shapes[k]} vs model {model_shapes[k]}" for k in mismatched))
    if not_tensors:
        lines.append(f"entries that are not tensors: {listing(not_tensors)}")
    hint = _arch_hint(model_shapes, file_shapes)
    if any(k.startswith(("features2.", "classifier2.", "module.")) for k in unexpected):
        hint += (" Keys named features2./classifier2./module. come from the original notebook: load the file "
                 "with cifar_alexnet.checkpoints.original_pth.load_original_state_dict, which renames them.")
    if hint:
        lines.append(hint.strip())
    raise CheckpointError("; ".join(lines))  # one line: the CLI prints it as one ``error:`` line
