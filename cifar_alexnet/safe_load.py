"""Reading weights without running code, and a readable check that weights fit a model.

A ``.pth`` file is a pickle, and unpickling can run arbitrary code: :func:`load_torch_file_safely`
reads one with ``torch.load(weights_only=True)``, which accepts only tensors and plain
containers. :func:`check_state_dict_matches` explains, key by key, why weights do not fit a
model. Both raise :class:`CheckpointError`, a ``ValueError`` whose message names the file
and the fix.
"""

from __future__ import annotations

import pickle
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["CheckpointError", "MIN_SAFE_TORCH", "check_state_dict_matches", "load_torch_file_safely",
           "torch_version_tuple"]


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not fit the model; the message names file and fix."""


#: The first torch release whose ``torch.load(weights_only=True)`` has no published bypass;
#: older ones had CVE-2025-32434 and CVE-2026-24747. ``pyproject.toml`` requires it too.
MIN_SAFE_TORCH = (2, 10)


def torch_version_tuple(version: str | None = None) -> tuple[int, int]:
    """``(major, minor)`` of a torch version string such as ``"2.14.1+cu130"`` (default: the running torch)."""
    major, minor = (version or torch.__version__).split("+")[0].split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def load_torch_file_safely(path: str | PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with errors that explain themselves.

    ``weights_only=True`` restricts unpickling to tensors and plain containers, so a file
    crafted to run code when loaded is refused before anything runs.

    Raises:
        FileNotFoundError: nothing at ``path``.
        CheckpointError: the file holds code or objects other than tensors and containers, or
            it is not a torch file at all (truncated, random bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if torch_version_tuple() < MIN_SAFE_TORCH:
        raise CheckpointError(
            f"{path}: refusing to unpickle with torch {torch.__version__}: before "
            f"{'.'.join(map(str, MIN_SAFE_TORCH))}, torch.load(weights_only=True) has published bypasses "
            "(CVE-2025-32434, CVE-2026-24747) that let a crafted file run code. Upgrade torch "
            "(pip install 'torch>=2.10'), or use a safetensors checkpoint, which holds no code.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load -- the file contains code or objects other than tensors and plain "
            "containers, which could run arbitrary code when unpickled. Only load it if you trust its "
            "source; better, re-save its state_dict as safetensors (cifar_alexnet.checkpoint."
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
                 "with cifar_alexnet.model.load_original_state_dict, which renames them.")
    if hint:
        lines.append(hint.strip())
    raise CheckpointError("; ".join(lines))  # one line: the CLI prints it as one ``error:`` line
