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

and three plain JSON strings in the safetensors header metadata:

* ``"cifar_alexnet"``: the checkpoint's metadata, a
  :class:`~cifar_alexnet.checkpoints.meta.CheckpointMeta` as JSON;
* ``"cifar_alexnet.optimizer"``: ``optimizer.state_dict()`` without its tensors: the
  ``param_groups`` and, per parameter id, the state values that are not tensors;
* ``"cifar_alexnet.rng"``: Python's ``random`` and NumPy's global generator states.

Each tensor's name says where it belongs, so no placeholders are needed. JSON has no tuples
and only string keys: on loading, the parameter ids become integers again, Adam's ``betas``
a tuple, and the two generator states the tuples their modules expect.

Files of format 1 (which tagged tuples, integer keys and arrays inside the JSON, e.g.
``{"__tuple__": [...]}``) are still read: :func:`_decode_format1`.

Reading checks before it allocates: :func:`load_checkpoint` reads the header alone and checks
it: the layout against :mod:`cifar_alexnet.checkpoints.schema` (tensor table against the file
size, tensors against the architecture the metadata claims, optimizer and random states
against the parameters), the metadata against :mod:`cifar_alexnet.checkpoints.meta`; only then are the tensors read,
and NaN/Inf weights are refused. Every failure is one :class:`~cifar_alexnet.errors.CheckpointError` line.

Every write goes through :func:`cifar_alexnet.runtime.atomic.atomic_path`: a crash or a full
disk in the middle of saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import json
import os
from collections import OrderedDict
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from cifar_alexnet.checkpoints import schema
from cifar_alexnet.checkpoints.meta import CHECKPOINT_FORMAT_VERSION, Arch, CheckpointMeta
from cifar_alexnet.checkpoints.original_pth import ORIGINAL_NOTEBOOK_META, load_original_state_dict
from cifar_alexnet.checkpoints.safe_load import check_state_dict_matches
from cifar_alexnet.errors import CheckpointError, MissingFileError
from cifar_alexnet.model import AlexNet
from cifar_alexnet.runtime.atomic import atomic_path
from cifar_alexnet.runtime.limits import MAX_CLASSES, MIN_CLASSES
from cifar_alexnet.runtime.paths import input_file

__all__ = ["CHECKPOINT_BEST", "CHECKPOINT_LAST", "Checkpoint", "load_checkpoint", "model_from_checkpoint", "read_meta",
           "resolve_checkpoint_path", "save_checkpoint", "unwrap_model"]

#: The file names of a run directory's checkpoints (see :mod:`cifar_alexnet.training.run_dir`).
CHECKPOINT_BEST = "best.safetensors"
CHECKPOINT_LAST = "last.safetensors"


# --------------------------------------------------------------------------------------------
# Optimizer and random states <-> (plain JSON, named tensors)
# --------------------------------------------------------------------------------------------


def _cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    # a copy: safetensors refuses tensors that share memory; contiguous: it stores raw bytes
    return tensor.detach().to("cpu", copy=True).contiguous()


def _optimizer_to_json(state_dict: Mapping[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``optimizer.state_dict()`` as JSON; its tensors go into ``tensors`` as ``optimizer.state.<id>.<name>``."""
    state: dict[str, dict[str, Any]] = {}
    for param_id, values in state_dict["state"].items():
        state[str(param_id)] = {}
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.state.{param_id}.{name}"] = _cpu_copy(value)
            else:
                state[str(param_id)][name] = value
    return {"state": state, "param_groups": state_dict["param_groups"]}


def _optimizer_from_json(tree: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Inverse of :func:`_optimizer_to_json`."""
    state = {int(param_id): dict(values) for param_id, values in tree["state"].items()}
    for tensor_name, tensor in tensors.items():
        if tensor_name.startswith("optimizer.state."):
            param_id, name = tensor_name[len("optimizer.state."):].split(".", 1)
            values = state.setdefault(int(param_id), {})
            if name in values:
                raise ValueError(f"{tensor_name} is both a tensor and a JSON value")
            values[name] = tensor
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in tree["param_groups"]]
    return {"state": state, "param_groups": groups}


def _rng_to_json(rng_state: Mapping[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The generator states of :func:`capture_rng_state`: torch's as ``rng.*`` tensors, the others as JSON."""
    tensors["rng.torch_cpu"] = _cpu_copy(rng_state["torch_cpu"])
    for index, cuda_state in enumerate(rng_state.get("torch_cuda", [])):
        tensors[f"rng.torch_cuda.{index}"] = _cpu_copy(cuda_state)
    for name, gen_state in rng_state.get("generators", {}).items():
        tensors[f"rng.generators.{name}"] = _cpu_copy(gen_state)
    version, internal, gauss = rng_state["python"]
    kind, keys, pos, has_gauss, cached = rng_state["numpy"]
    return {"python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def _rng_from_json(tree: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Inverse of :func:`_rng_to_json`: the dict :func:`restore_rng_state` takes."""
    version, internal, gauss = tree["python"]
    kind, keys, pos, has_gauss, cached = tree["numpy"]
    state: dict[str, Any] = {"torch_cpu": tensors["rng.torch_cpu"], "python": (version, tuple(internal), gauss),
                             "numpy": (kind, schema.uint32_array(keys), pos, has_gauss, cached),
                             "generators": {}}
    cuda = sorted((int(n.rsplit(".", 1)[1]), t) for n, t in tensors.items() if n.startswith("rng.torch_cuda."))
    if cuda:
        state["torch_cuda"] = [t for _, t in cuda]
    for tensor_name, tensor in tensors.items():
        if tensor_name.startswith("rng.generators."):
            state["generators"][tensor_name[len("rng.generators."):]] = tensor
    return state


def _decode_format1(tree: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """A format-1 JSON tree: tuples, non-string keys, NumPy arrays and tensors were tagged."""
    if isinstance(tree, list):
        return [_decode_format1(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        return tensors[tree["__tensor__"]]
    if "__ndarray__" in tree:
        spec = tree["__ndarray__"]  # format 1 stored only NumPy's generator words this way
        if spec["dtype"] not in ("<u4", "uint32"):
            raise ValueError(f"array dtype {spec['dtype']!r} is not uint32")
        return schema.uint32_array(spec["data"]).reshape(spec["shape"])
    if "__tuple__" in tree:
        return tuple(_decode_format1(v, tensors) for v in tree["__tuple__"])
    if "__items__" in tree:
        return {_decode_format1(k, tensors): _decode_format1(v, tensors) for k, v in tree["__items__"]}
    return {k: _decode_format1(v, tensors) for k, v in tree.items()}


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


def save_checkpoint(path: str | PathLike, model: nn.Module, *, meta: CheckpointMeta,
                    optimizer: torch.optim.Optimizer | None = None,
                    rng_state: Mapping[str, Any] | None = None) -> Path:
    """Write one checkpoint file atomically.

    Args:
        path: destination, conventionally ``*.safetensors``. Parent directories are created.
        model: an :class:`~cifar_alexnet.model.AlexNet` (wrapped in DDP/DataParallel/compile or not).
        meta: what the checkpoint records; its ``arch``, ``format_version``, ``package_version``
            and ``torch_version`` are filled in here from ``model`` and the running versions.
        optimizer: if given, its ``state_dict()`` is stored so training can resume exactly.
        rng_state: if given, a dict from :func:`~cifar_alexnet.runtime.random_state.capture_rng_state`.

    Returns:
        The path written.

    Raises:
        CheckpointError: the class names do not match the model's outputs, their number is
            outside what a checkpoint may hold (``MIN_CLASSES``..``MAX_CLASSES``), or ``meta``
            holds values JSON cannot store. The previous file at ``path`` (if any) is left untouched.
    """
    path = Path(path)
    plain = unwrap_model(model)
    arch = Arch(**plain.arch()) if isinstance(plain, AlexNet) else None
    if arch is not None and len(meta.classes) != arch.num_classes:
        raise CheckpointError(f"save_checkpoint({path}): {len(meta.classes)} class names for a model with "
                              f"num_classes={arch.num_classes}")
    if arch is not None and not MIN_CLASSES <= arch.num_classes <= MAX_CLASSES:  # the reader's bounds (meta.py)
        raise CheckpointError(f"save_checkpoint({path}): num_classes={arch.num_classes} is outside "
                              f"{MIN_CLASSES}..{MAX_CLASSES} (cifar_alexnet/runtime/limits.py), so the checkpoint "
                              "could not be read back; nothing was written")
    meta = replace(meta, arch=arch, format_version=CHECKPOINT_FORMAT_VERSION, package_version=_package_version(),
                   torch_version=torch.__version__)
    tensors = {f"model.{key}": _cpu_copy(value) for key, value in plain.state_dict().items()}
    header: dict[str, str] = {"format": "pt"}
    try:
        header[schema.META_KEY] = json.dumps(meta.to_json(), allow_nan=False)
        if optimizer is not None:
            header[schema.OPTIMIZER_KEY] = json.dumps(_optimizer_to_json(optimizer.state_dict(), tensors))
        if rng_state is not None:
            header[schema.RNG_KEY] = json.dumps(_rng_to_json(rng_state, tensors))
    except (TypeError, ValueError) as exc:
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
        meta: what the checkpoint records (class names, normalisation, architecture, run state).
        optimizer_state: a dict for ``optimizer.load_state_dict`` or ``None``.
        rng_state: a dict for :func:`~cifar_alexnet.runtime.random_state.restore_rng_state` or ``None``.
        path: the file it came from.
    """

    state_dict: "OrderedDict[str, torch.Tensor]"
    meta: CheckpointMeta
    optimizer_state: dict[str, Any] | None = None
    rng_state: dict[str, Any] | None = None
    path: Path | None = None


def resolve_checkpoint_path(path: str | PathLike) -> Path:
    """Accept a checkpoint file or a run directory (then ``best.safetensors``, else ``last.safetensors``).

    Raises:
        MissingFileError: (a FileNotFoundError) with the paths that were tried.
        CheckpointError: something other than a regular file stands there (a FIFO, a device, a
            folder named like a checkpoint).
    """
    path = Path(path)
    if path.is_dir():
        for name in (CHECKPOINT_BEST, CHECKPOINT_LAST):
            if os.path.lexists(path / name):
                return input_file(path / name, "checkpoint", CheckpointError)
        raise MissingFileError(f"{path} is a directory without best.safetensors or last.safetensors; "
                                "pass a checkpoint file or a run directory written by `cifar-alexnet train`")
    return input_file(path, "checkpoint", CheckpointError)


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


def read_meta(path: str | PathLike) -> CheckpointMeta:
    """The metadata of a checkpoint, read from its header alone: no tensor is read.

    Raises:
        MissingFileError: nothing at ``path``.
        CheckpointError: the file is not a checkpoint of this package, or its metadata breaks the rules.
    """
    path = resolve_checkpoint_path(path)
    return _meta_from_header(path, schema.read_header(path))


def _meta_from_header(path: Path, header: schema.Header) -> CheckpointMeta:
    if schema.META_KEY not in header.metadata:
        raise CheckpointError(f"{path}: a safetensors file, but without the {schema.META_KEY!r} metadata of this "
                              "package; it was not written by cifar_alexnet.checkpoints.format.save_checkpoint")
    return CheckpointMeta.from_json(path, schema.parse_json(path, schema.META_KEY, header.metadata[schema.META_KEY]))


def load_checkpoint(path: str | PathLike, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the ``.safetensors`` file, or a run directory.
        map_location: device for the model tensors (``"cpu"``, ``"cuda:0"``, ...). Optimizer
            and random states stay on the CPU (``optimizer.load_state_dict`` moves them).

    Raises:
        MissingFileError: nothing at ``path``.
        CheckpointError: the file is truncated/corrupt, is a pickle (``.pth``: use
            :func:`model_from_checkpoint`, which reads those safely), or lacks our metadata.
    """
    path = resolve_checkpoint_path(path)
    if _is_torch_pickle_file(path):
        raise CheckpointError(f"{path} is a torch.save pickle, not a safetensors checkpoint; read it with "
                              "model_from_checkpoint() or cifar_alexnet.checkpoints.original_pth.load_original_state_dict()")
    # 1. The header alone (at most MAX_HEADER_BYTES): the tensor table fits the file, the
    #    metadata fits the schema, the tensors fit the architecture. Nothing else is read yet.
    header = schema.read_header(path)
    meta = _meta_from_header(path, header)
    schema.check_model_tensors(path, meta.arch, header.tensors)
    decode_optimizer, decode_rng = _optimizer_from_json, _rng_from_json
    if meta.format_version == 1:
        decode_optimizer = decode_rng = _decode_format1
    trees = {key: schema.parse_json(path, key, header.metadata[key])
             for key in (schema.OPTIMIZER_KEY, schema.RNG_KEY) if key in header.metadata}
    if schema.OPTIMIZER_KEY in trees:
        schema.check_optimizer(path, _decoded(path, decode_optimizer, trees[schema.OPTIMIZER_KEY], header.tensors,
                                              "optimizer"),
                               schema.parameter_shapes(meta.arch), header.tensors)
    if schema.RNG_KEY in trees:
        schema.check_rng(path, _decoded(path, decode_rng, trees[schema.RNG_KEY], header.tensors, "rng"))

    # 2. The tensors: their sizes are now known to be the file's.
    try:
        # Everything is read to the CPU first: optimizer.load_state_dict moves its tensors to the
        # parameters' device itself, and generator states must be CPU tensors.
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except SafetensorError as exc:
        raise schema.corrupt_error(path, str(exc)) from exc
    schema.check_finite(path, {n: t for n, t in tensors.items() if n.startswith(("model.", "optimizer."))})
    state_dict = OrderedDict((schema.strip_wrapper_prefixes(name[len("model."):]), t.to(map_location))
                             for name, t in tensors.items() if name.startswith("model."))
    optimizer_state = (decode_optimizer(trees[schema.OPTIMIZER_KEY], tensors) if schema.OPTIMIZER_KEY in trees
                       else None)
    rng_state = decode_rng(trees[schema.RNG_KEY], tensors) if schema.RNG_KEY in trees else None
    return Checkpoint(state_dict=state_dict, meta=meta, optimizer_state=optimizer_state,
                      rng_state=rng_state, path=path)


def _decoded(path: Path, decode, tree: Any, tensors: Mapping[str, Any], field: str) -> Any:
    """``decode(tree, tensors)``, any failure of a malformed tree reported as a :class:`CheckpointError`."""
    try:
        return decode(tree, tensors)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, RecursionError) as exc:
        raise CheckpointError(f"{path}: invalid checkpoint metadata: {field} is malformed "
                              f"({type(exc).__name__}: {str(exc)[:120]}); use another checkpoint of the run "
                              "(last.safetensors / best.safetensors)") from None


def model_from_checkpoint(path: str | PathLike,
                          map_location: str | torch.device = "cpu") -> tuple[AlexNet, CheckpointMeta]:
    """Build the model a checkpoint describes, with its weights, in eval mode.

    Args:
        path: a ``.safetensors`` checkpoint, a run directory, or a ``.pth`` state_dict of the
            original notebook (read with ``torch.load(weights_only=True)``; its metadata is
            :data:`~cifar_alexnet.checkpoints.original_pth.ORIGINAL_NOTEBOOK_META`).
        map_location: device of the returned model.

    Returns:
        ``(model, meta)``.

    Raises:
        MissingFileError: nothing at ``path``.
        CheckpointError: unreadable file, or weights that do not fit the recorded architecture.
    """
    path = resolve_checkpoint_path(path)
    if _is_torch_pickle_file(path):
        model = load_original_state_dict(path, map_location=map_location)  # checks keys and shapes
        schema.check_finite(path, model.state_dict())
        return model.to(map_location).eval(), ORIGINAL_NOTEBOOK_META
    ckpt = load_checkpoint(path, map_location=map_location)  # checks the tensors against meta.arch
    if ckpt.meta.arch is None:
        raise CheckpointError(f"{path}: metadata arch is empty: the checkpoint holds a model that is not "
                              "cifar_alexnet's AlexNet, so it cannot be rebuilt here; load it with "
                              "load_checkpoint() into that model")
    model = AlexNet(**ckpt.meta.arch.to_json())
    check_state_dict_matches(model, ckpt.state_dict, source=str(path))
    model.load_state_dict(ckpt.state_dict)
    return model.to(map_location).eval(), ckpt.meta
