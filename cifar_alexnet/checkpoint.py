"""Checkpoints: one ``.safetensors`` file holds the weights, the optimizer, the random state and the metadata.

Why safetensors and not ``torch.save``: a ``.pth`` file is a pickle, and unpickling can run
arbitrary code. A safetensors file is a JSON header plus raw tensor bytes, so loading one
never runs code. The layout of one checkpoint file:

============================  =====================================================================
tensor name                   content
============================  =====================================================================
``model.<key>``               every entry of ``model.state_dict()`` (``model.features.0.weight`` ...)
``optimizer.<path>``          every tensor inside ``optimizer.state_dict()``, e.g.
                              ``optimizer.state.0.exp_avg``, ``optimizer.state.0.step`` (optional)
``rng.<path>``                random-generator states as uint8 tensors: ``rng.torch_cpu``,
                              ``rng.torch_cuda.0``, ``rng.generators.<name>`` (optional)
============================  =====================================================================

and three JSON strings in the safetensors header metadata:

* ``"cifar_alexnet"``: the checkpoint's metadata (see :func:`save_checkpoint`);
* ``"cifar_alexnet.optimizer"``: the structure of the optimizer state_dict (``param_groups``
  hyperparameters, which parameter owns which tensor), with each tensor replaced by
  ``{"__tensor__": "<tensor name>"}``;
* ``"cifar_alexnet.rng"``: the same for the random state, with Python's ``random`` and
  NumPy's global state inline as JSON.

The JSON encoding of nested Python values is written once, in :func:`_to_json_tree` and
:func:`_from_json_tree`: tuples, dicts with non-string keys and NumPy arrays are tagged so
that they come back as exactly the same types (``optimizer.load_state_dict`` and
``random.setstate`` care).

Every write goes through :func:`cifar_alexnet.runtime.atomic.atomic_path`: a crash or a full disk
in the middle of saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import json
import pickle
import random
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from cifar_alexnet.runtime.atomic import atomic_path
from cifar_alexnet.model import AlexNet, load_original_state_dict

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "META_KEY",
    "ORIGINAL_NOTEBOOK_META",
    "Checkpoint",
    "CheckpointError",
    "capture_rng_state",
    "check_state_dict_matches",
    "load_checkpoint",
    "load_torch_file_safely",
    "model_from_checkpoint",
    "resolve_checkpoint_path",
    "restore_rng_state",
    "save_checkpoint",
    "unwrap_model",
]

#: Bumped whenever the file layout changes incompatibly.
CHECKPOINT_FORMAT_VERSION = 1
#: The safetensors header metadata key that holds our JSON metadata.
META_KEY = "cifar_alexnet"
_OPTIMIZER_KEY = "cifar_alexnet.optimizer"
_RNG_KEY = "cifar_alexnet.rng"
#: Metadata a checkpoint must carry to be usable on its own (normalisation and class names).
REQUIRED_META_KEYS = ("mean", "std", "classes")
#: Prefixes that ``DistributedDataParallel``/``DataParallel`` (``module.``) and ``torch.compile``
#: (``_orig_mod.``) put in front of every state_dict key.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")

#: Metadata for a ``.pth`` file of the original notebook, which stores weights only. The
#: mean/std are the values the notebook printed for the official CIFAR-10 training set.
ORIGINAL_NOTEBOOK_META: dict[str, Any] = {
    "arch": {"num_classes": 10, "hidden": 2048, "dropout": 0.2},
    "mean": [0.49139967861519607, 0.48215840839460783, 0.44653091444546567],
    "std": [0.2470322324632819, 0.24348512800005573, 0.26158784172796434],
    "classes": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    "source": "original notebook .pth (alexnet_sukjoon.pth layout)",
}


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not fit the model; the message names file and fix."""


# --------------------------------------------------------------------------------------------
# Nested Python values <-> (JSON tree, named tensors)
# --------------------------------------------------------------------------------------------


def _to_json_tree(value: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Turn ``value`` into something ``json.dumps`` accepts, moving tensors into ``tensors``.

    Args:
        value: a nested structure of dicts, lists, tuples, tensors, NumPy arrays and scalars.
        name: the dotted name of ``value`` (becomes the tensor name, e.g. ``optimizer.state.0.exp_avg``).
        tensors: collects the tensors, keyed by name.
    """
    if isinstance(value, torch.Tensor):
        if name in tensors:
            raise CheckpointError(f"two values would be stored under the tensor name {name!r}")
        # clone(): safetensors refuses tensors that share memory; contiguous(): it stores raw bytes.
        tensors[name] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": name}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json_tree(v, f"{name}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_to_json_tree(v, f"{name}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _to_json_tree(v, f"{name}.{k}", tensors) for k, v in value.items()}
        # Keys that JSON cannot keep (the optimizer's integer parameter ids): store as pairs.
        return {"__items__": [[_to_json_tree(k, f"{name}.key", {}), _to_json_tree(v, f"{name}.{k}", tensors)]
                              for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckpointError(f"cannot store {name!r} in a checkpoint: unsupported type {type(value).__name__}")


def _from_json_tree(tree: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`_to_json_tree`."""
    if isinstance(tree, list):
        return [_from_json_tree(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        return tensors[tree["__tensor__"]]
    if "__ndarray__" in tree:
        spec = tree["__ndarray__"]
        return np.asarray(spec["data"], dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])
    if "__tuple__" in tree:
        return tuple(_from_json_tree(v, tensors) for v in tree["__tuple__"])
    if "__items__" in tree:
        return {_from_json_tree(k, tensors): _from_json_tree(v, tensors) for k, v in tree["__items__"]}
    return {k: _from_json_tree(v, tensors) for k, v in tree.items()}


# --------------------------------------------------------------------------------------------
# Random state
# --------------------------------------------------------------------------------------------


def capture_rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Snapshot every random generator a training run draws from.

    Args:
        generators: extra ``torch.Generator`` objects by name (for example the
            :class:`~cifar_alexnet.device_data.DeviceLoader`'s shuffling generator). Their
            states are stored as uint8 tensors.

    Returns:
        ``{"torch_cpu": ByteTensor, "torch_cuda": [ByteTensor per device] (only when CUDA is
        initialised), "python": random.getstate(), "numpy": np.random.get_state(),
        "generators": {name: ByteTensor}}`` -- pass it to :func:`save_checkpoint` as
        ``rng_state`` and later to :func:`restore_rng_state`.
    """
    state: dict[str, Any] = {
        "torch_cpu": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "generators": {name: gen.get_state() for name, gen in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None) -> None:
    """Put back a state captured by :func:`capture_rng_state`.

    Args:
        state: the dict from :func:`capture_rng_state` (or ``Checkpoint.rng_state``).
        generators: the same names as at capture time; each generator's state is set in place.

    Raises:
        CheckpointError: a generator named in ``generators`` has no saved state.
    """
    torch.set_rng_state(state["torch_cpu"].to("cpu"))
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    cuda_states = state.get("torch_cuda")
    if cuda_states:
        if torch.cuda.is_available() and torch.cuda.device_count() >= len(cuda_states):
            torch.cuda.set_rng_state_all([s.to("cpu") for s in cuda_states])
        else:
            warnings.warn(
                f"the checkpoint holds CUDA random states for {len(cuda_states)} device(s) but this machine "
                "has fewer; CUDA random numbers will differ from the original run", stacklevel=2)
    saved = state.get("generators", {})
    for name, gen in (generators or {}).items():
        if name not in saved:
            raise CheckpointError(f"no saved random state for generator {name!r} (saved: {sorted(saved)})")
        gen.set_state(saved[name].to("cpu"))


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the plain model inside ``DataParallel``/``DistributedDataParallel``/``torch.compile`` wrappers."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("cifar-alexnet")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


def save_checkpoint(path: str | PathLike, model: nn.Module, *, meta: Mapping[str, Any],
                    optimizer: torch.optim.Optimizer | None = None,
                    rng_state: Mapping[str, Any] | None = None) -> Path:
    """Write one checkpoint file atomically.

    Args:
        path: destination, conventionally ``*.safetensors``. Parent directories are created.
        model: an :class:`~cifar_alexnet.model.AlexNet` (wrapped in DDP/DataParallel/compile or not).
        meta: JSON-serialisable metadata. Must contain ``mean`` and ``std`` (3 floats each, the
            normalisation the model was trained with) and ``classes`` (one name per output);
            conventionally also ``epoch``, ``metrics`` (dict) and ``config`` (dict). The keys
            ``arch``, ``format_version``, ``package_version`` and ``torch_version`` are filled in here.
        optimizer: if given, its ``state_dict()`` is stored so training can resume exactly.
        rng_state: if given, a dict from :func:`capture_rng_state`.

    Returns:
        The path written.

    Raises:
        CheckpointError: ``meta`` lacks a required key, has the wrong number of classes, or is
            not JSON-serialisable. The previous file at ``path`` (if any) is left untouched.
    """
    path = Path(path)
    plain = unwrap_model(model)
    missing = [k for k in REQUIRED_META_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"save_checkpoint({path}): meta lacks {missing}; pass the normalisation mean/std "
                              "and the class names so the checkpoint can be evaluated on its own")
    for key in ("mean", "std"):
        if len(meta[key]) != 3:
            raise CheckpointError(f"save_checkpoint({path}): meta[{key!r}] must hold 3 per-channel values, "
                                  f"got {meta[key]!r}")
    arch = plain.arch() if hasattr(plain, "arch") else {}
    if "num_classes" in arch and len(meta["classes"]) != arch["num_classes"]:
        raise CheckpointError(f"save_checkpoint({path}): {len(meta['classes'])} class names for a model with "
                              f"num_classes={arch['num_classes']}")

    full_meta = dict(meta)
    full_meta.update(arch=arch, format_version=CHECKPOINT_FORMAT_VERSION,
                     package_version=_package_version(), torch_version=torch.__version__)
    full_meta["mean"] = [float(v) for v in meta["mean"]]
    full_meta["std"] = [float(v) for v in meta["std"]]
    full_meta["classes"] = [str(c) for c in meta["classes"]]

    tensors: dict[str, torch.Tensor] = {}
    for key, value in plain.state_dict().items():
        tensors[f"model.{key}"] = value.detach().to("cpu", copy=True).contiguous()
    header: dict[str, str] = {"format": "pt"}
    try:
        header[META_KEY] = json.dumps(full_meta)
        if optimizer is not None:
            header[_OPTIMIZER_KEY] = json.dumps(_to_json_tree(optimizer.state_dict(), "optimizer", tensors))
        if rng_state is not None:
            header[_RNG_KEY] = json.dumps(_to_json_tree(dict(rng_state), "rng", tensors))
    except TypeError as exc:
        raise CheckpointError(f"save_checkpoint({path}): metadata is not JSON-serialisable: {exc}") from exc

    with atomic_path(path) as tmp:
        try:
            save_file(tensors, tmp, metadata=header)
        except SafetensorError as exc:
            # safetensors reports I/O failures as its own error type; a full disk must surface as
            # ENOSPC so that atomic_path turns it into a DiskFullError naming the file and the fix.
            if "os error 28" in str(exc) or "No space left" in str(exc):
                raise OSError(errno.ENOSPC, str(exc)) from exc
            raise
    return path


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        state_dict: the model's tensors, keys as in ``AlexNet().state_dict()``.
        meta: the metadata (``arch``, ``mean``, ``std``, ``classes``, ``epoch``, ...).
        optimizer_state: a dict for ``optimizer.load_state_dict`` or ``None``.
        rng_state: a dict for :func:`restore_rng_state` or ``None``.
        path: the file it came from.
    """

    state_dict: "OrderedDict[str, torch.Tensor]"
    meta: dict[str, Any]
    optimizer_state: dict[str, Any] | None = None
    rng_state: dict[str, Any] | None = None
    path: Path | None = field(default=None)


def resolve_checkpoint_path(path: str | PathLike) -> Path:
    """Accept a checkpoint file or a run directory (then ``best.safetensors``, else ``last.safetensors``).

    Raises:
        FileNotFoundError: with the paths that were tried.
    """
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path} is a directory without best.safetensors or last.safetensors; "
                                "pass a checkpoint file or a run directory written by `cifar-alexnet train`")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return path


def _is_torch_pickle_file(path: Path) -> bool:
    """``torch.save`` writes a zip archive (``PK``) or, in the legacy format, a raw pickle (0x80).

    A safetensors file starts with its JSON header's length as 8 little-endian bytes and then
    the header's ``{``; that length's low byte can itself be 0x80 (about one file in 256), so the
    safetensors layout is recognised first and only then the pickle magic bytes.
    """
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if header_len <= path.stat().st_size - 8:
            return False  # safetensors
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _corrupt_error(path: Path, detail: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: not a readable checkpoint ({detail}). The file is truncated or corrupt -- e.g. copied "
        "while it was being written, or not a safetensors file at all. Use another checkpoint of the run "
        "(last.safetensors / best.safetensors) or copy the file again.")


def load_checkpoint(path: str | PathLike, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the ``.safetensors`` file, or a run directory.
        map_location: device for the model tensors (``"cpu"``, ``"cuda:0"``, ...). Optimizer
            and random states stay on the CPU (``optimizer.load_state_dict`` moves them).

    Raises:
        FileNotFoundError: nothing at ``path``.
        CheckpointError: the file is truncated/corrupt, is a pickle (``.pth``: use
            :func:`model_from_checkpoint`, which reads those safely), or lacks our metadata.
    """
    path = resolve_checkpoint_path(path)
    if _is_torch_pickle_file(path):
        raise CheckpointError(f"{path} is a torch.save pickle, not a safetensors checkpoint; read it with "
                              "model_from_checkpoint() or cifar_alexnet.model.load_original_state_dict()")
    try:
        # Everything is read to the CPU first: optimizer.load_state_dict moves its tensors to the
        # parameters' device itself, and generator states must be CPU tensors.
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except SafetensorError as exc:
        raise _corrupt_error(path, str(exc)) from exc
    if META_KEY not in header:
        raise CheckpointError(f"{path}: a safetensors file, but without the {META_KEY!r} metadata of this "
                              "package; it was not written by cifar_alexnet.checkpoint.save_checkpoint")
    try:
        meta = json.loads(header[META_KEY])
        optimizer_tree = json.loads(header[_OPTIMIZER_KEY]) if _OPTIMIZER_KEY in header else None
        rng_tree = json.loads(header[_RNG_KEY]) if _RNG_KEY in header else None
    except json.JSONDecodeError as exc:
        raise _corrupt_error(path, f"metadata is not valid JSON: {exc}") from exc
    if meta.get("format_version", 0) > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta['format_version']} is newer than this "
                              f"package understands ({CHECKPOINT_FORMAT_VERSION}); upgrade cifar-alexnet")

    state_dict = OrderedDict((name[len("model."):], t.to(map_location))
                             for name, t in tensors.items() if name.startswith("model."))
    try:
        optimizer_state = _from_json_tree(optimizer_tree, tensors) if optimizer_tree is not None else None
        rng_state = _from_json_tree(rng_tree, tensors) if rng_tree is not None else None
    except KeyError as exc:
        raise _corrupt_error(path, f"metadata names tensor {exc} which the file does not hold") from exc
    return Checkpoint(state_dict=state_dict, meta=meta, optimizer_state=optimizer_state,
                      rng_state=rng_state, path=path)


def strip_wrapper_prefixes(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Remove ``module.`` / ``_orig_mod.`` (in any order, any number) from the front of every key."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in state_dict.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix):], True
        out[key] = value
    return out


def model_from_checkpoint(path: str | PathLike,
                          map_location: str | torch.device = "cpu") -> tuple[AlexNet, dict[str, Any]]:
    """Build the model a checkpoint describes, with its weights, in eval mode.

    Args:
        path: a ``.safetensors`` checkpoint, a run directory, or a ``.pth`` state_dict of the
            original notebook (read with ``torch.load(weights_only=True)``; its metadata is
            :data:`ORIGINAL_NOTEBOOK_META`).
        map_location: device of the returned model.

    Returns:
        ``(model, meta)``.

    Raises:
        CheckpointError: unreadable file, or weights that do not fit the recorded architecture.
    """
    path = resolve_checkpoint_path(path)
    if _is_torch_pickle_file(path):
        meta = dict(ORIGINAL_NOTEBOOK_META)
        model = load_original_state_dict(path, map_location=map_location)
        return model.to(map_location).eval(), meta
    ckpt = load_checkpoint(path, map_location=map_location)
    arch = ckpt.meta.get("arch")
    if not isinstance(arch, dict):
        raise CheckpointError(f"{path}: metadata has no 'arch' (the AlexNet constructor arguments)")
    model = AlexNet(**arch)
    state_dict = strip_wrapper_prefixes(ckpt.state_dict)
    check_state_dict_matches(model, state_dict, source=str(path))
    model.load_state_dict(state_dict)
    return model.to(map_location).eval(), ckpt.meta


# --------------------------------------------------------------------------------------------
# Safe torch.load and the state_dict check
# --------------------------------------------------------------------------------------------


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
    lists what is missing, what is extra and which shapes differ, and guesses the cause.

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
        lines.append(f"  missing keys ({len(missing)}): {listing(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys ({len(unexpected)}): {listing(unexpected)}")
    if mismatched:
        lines.append(f"  mismatched shapes ({len(mismatched)}):")
        lines.extend(f"    {k}: file {file_shapes[k]} vs model {model_shapes[k]}" for k in mismatched)
    if not_tensors:
        lines.append(f"  entries that are not tensors: {listing(not_tensors)}")
    hint = _arch_hint(model_shapes, file_shapes)
    if any(k.startswith(("features2.", "classifier2.", "module.")) for k in unexpected):
        hint += (" Keys named features2./classifier2./module. come from the original notebook: load the file "
                 "with cifar_alexnet.model.load_original_state_dict, which renames them.")
    if hint:
        lines.append(hint.strip())
    raise CheckpointError("\n".join(lines))
