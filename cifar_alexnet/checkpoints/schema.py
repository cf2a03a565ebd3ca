"""The written schema of a checkpoint file's layout, checked before any tensor is read.

A checkpoint (see :mod:`cifar_alexnet.checkpoints.format`) is a safetensors file: 8 bytes giving the
length ``N`` of a JSON header (little-endian), the header, then the raw tensor bytes. The
header lists every tensor's dtype, shape and byte range, and holds the metadata as JSON
strings. Everything here is read from those first ``8 + N`` bytes, so a file whose metadata
claims a huge model, or whose tensor table points past its end, is refused before memory is
allocated for it. Only then does :func:`~cifar_alexnet.checkpoints.format.load_checkpoint` read the
tensors, and it refuses non-finite weights (:func:`check_finite`). The metadata object itself
has its own rules: :mod:`cifar_alexnet.checkpoints.meta`.

The layout, part by part (every failure is one :class:`~cifar_alexnet.errors.CheckpointError`
line naming the file, the part and the fix):

==========================  ==========================================================================
part                        rule
==========================  ==========================================================================
header length               at most :data:`MAX_HEADER_BYTES`, inside the file
tensor table                each entry ``{"dtype", "shape", "data_offsets"}`` exactly; a known dtype;
                            ``end - begin = numel * itemsize``; the byte ranges tile the data section
                            from 0 to the file's end, no gap, no overlap
tensor names                ``model.<key>``, ``optimizer.state.<id>.<name>``, ``rng.torch_cpu``,
                            ``rng.torch_cuda.<i>``, ``rng.generators.<name>``; nothing else
header metadata             ``format``, ``cifar_alexnet`` (required), ``cifar_alexnet.optimizer``,
                            ``cifar_alexnet.rng``; nothing else
model tensors               with an ``arch``: exactly the keys, shapes and kinds (floating point,
                            int64 counters) of ``AlexNet(**arch)``, built on the ``meta`` device,
                            which allocates nothing
optimizer                   ``param_groups``: a list of objects whose ``params`` together number the
                            model's parameters 0..n-1 once each; ``lr``, ``eps``, ``weight_decay``,
                            ``momentum``, ``dampening`` finite and >= 0 (``eps`` > 0); ``betas`` two
                            numbers in [0, 1); other options plain values. ``state``: per parameter id
                            of a group, tensors shaped like that parameter or scalars
random states               ``torch_cpu`` and ``generators``: uint8 vectors of a torch generator's
                            state size; Python's ``random`` state (version 3, 624 words + position);
                            NumPy's MT19937 state (624 uint32 words, position 0..624)
==========================  ==========================================================================
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from cifar_alexnet.checkpoints.meta import Arch, invalid_meta, is_int, is_number
from cifar_alexnet.errors import CheckpointError
from cifar_alexnet.model import AlexNet

__all__ = ["MAX_HEADER_BYTES", "DTYPE_SIZES", "META_KEY", "OPTIMIZER_KEY", "RNG_KEY", "WRAPPER_PREFIXES", "TensorInfo",
           "Header", "corrupt_error", "parse_json", "read_header", "uint32_array", "check_model_tensors",
           "check_optimizer", "check_rng", "check_finite", "expected_model_shapes", "parameter_shapes",
           "strip_wrapper_prefixes"]

#: Largest JSON header accepted, in bytes. A 100-epoch run's checkpoint (history, optimizer
#: options, Python's and NumPy's generator states, about 60 tensor entries) has about 60 KB.
MAX_HEADER_BYTES = 16 << 20
#: Bytes per element of the dtypes a checkpoint may hold (safetensors' names).
DTYPE_SIZES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I64": 8, "U8": 1}
FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
#: The header metadata keys: the :class:`~cifar_alexnet.checkpoints.meta.CheckpointMeta` JSON, the
#: optimizer's state without its tensors, and Python's and NumPy's generator states.
META_KEY, OPTIMIZER_KEY, RNG_KEY = "cifar_alexnet", "cifar_alexnet.optimizer", "cifar_alexnet.rng"
HEADER_METADATA_KEYS = {"format", META_KEY, OPTIMIZER_KEY, RNG_KEY}
#: Names that ``DistributedDataParallel`` (``module.``) and ``torch.compile`` (``_orig_mod.``) prefix.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
#: BatchNorm's buffers: state_dict entries that are not parameters.
BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")
_TENSOR_NAME = re.compile(r"model\.[\w.]+|optimizer\.state\.\d{1,6}\.\w+|rng\.torch_cpu|rng\.torch_cuda\.\d{1,3}"
                          r"|rng\.generators\.\w+")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the header describes it: nothing of it has been read."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Header:
    """The header of a safetensors file: its tensors (name -> :class:`TensorInfo`) and metadata strings."""

    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]


def corrupt_error(path: Path, detail: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: not a readable checkpoint ({detail}). The file is truncated or corrupt -- e.g. copied "
        "while it was being written, or not a safetensors file at all. Use another checkpoint of the run "
        "(last.safetensors / best.safetensors) or copy the file again.")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def parse_json(path: Path, field: str, text: str | bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys; any failure is a :class:`CheckpointError`."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_pairs)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise corrupt_error(path, f"{field} is not valid JSON: {str(exc)[:200]}") from None


def read_header(path: Path) -> Header:
    """Read and check the header of the safetensors file ``path``; no tensor is read.

    Raises:
        CheckpointError: the header is too long, not JSON, or its tensor table does not fit the file.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise corrupt_error(path, f"{size} bytes, shorter than the 8-byte header length")
        length = int.from_bytes(head, "little")
        if length > MAX_HEADER_BYTES:
            raise corrupt_error(path, f"the header claims {length} bytes, more than the {MAX_HEADER_BYTES} "
                                      "a checkpoint's header may have")
        if length > size - 8:
            raise corrupt_error(path, f"the header claims {length} bytes but the file has {size}")
        raw = handle.read(length)
    table = parse_json(path, "the header", raw)
    if not isinstance(table, dict):
        raise corrupt_error(path, "the header is not a JSON object")
    metadata = table.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise corrupt_error(path, "__metadata__ is not an object of strings")
    unknown = sorted(set(metadata) - HEADER_METADATA_KEYS)
    if unknown:
        raise invalid_meta(path, "header metadata", f"has unknown keys {unknown[:5]}")
    tensors = {name: _tensor_info(path, name, entry) for name, entry in table.items()}
    _check_layout(path, tensors, size - 8 - length)
    return Header(tensors=tensors, metadata=metadata)


def _tensor_info(path: Path, name: str, entry: Any) -> TensorInfo:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise corrupt_error(path, f"tensor {name}: entry is not {{dtype, shape, data_offsets}}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPE_SIZES:
        raise corrupt_error(path, f"tensor {name}: dtype {str(dtype)[:20]!r} is none of {sorted(DTYPE_SIZES)}")
    if not (isinstance(shape, list) and len(shape) <= 8 and all(is_int(d) and d >= 0 for d in shape)):
        raise corrupt_error(path, f"tensor {name}: shape {str(shape)[:60]} is not a list of sizes >= 0")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(is_int(o) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise corrupt_error(path, f"tensor {name}: data_offsets {str(offsets)[:60]} is not [begin, end]")
    info = TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])
    if info.end - info.begin != info.numel * DTYPE_SIZES[dtype]:
        raise corrupt_error(path, f"tensor {name}: shape {list(shape)} of {dtype} needs "
                                  f"{info.numel * DTYPE_SIZES[dtype]} bytes, its data_offsets span "
                                  f"{info.end - info.begin}")
    return info


def _check_layout(path: Path, tensors: Mapping[str, TensorInfo], data_bytes: int) -> None:
    """The tensors' byte ranges must tile the data section exactly."""
    position = 0
    for name, info in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if info.begin != position:
            raise corrupt_error(path, f"tensor {name} starts at byte {info.begin} of the data, expected {position}")
        position = info.end
    if position != data_bytes:
        raise corrupt_error(path, f"the tensors need {position} bytes of data, the file holds {data_bytes}")


# --------------------------------------------------------------------------------------------
# Tensors against the architecture
# --------------------------------------------------------------------------------------------


def strip_wrapper_prefixes(name: str) -> str:
    """Remove ``module.`` / ``_orig_mod.`` (in any order, any number) from the front of a key."""
    while name.startswith(WRAPPER_PREFIXES):
        name = name.split(".", 1)[1]
    return name


def expected_model_shapes(arch: Arch) -> dict[str, tuple[tuple[int, ...], bool]]:
    """``{key: (shape, is_float)}`` of ``AlexNet(**arch).state_dict()``, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = AlexNet(**arch.to_json())
    return {k: (tuple(v.shape), v.is_floating_point()) for k, v in model.state_dict().items()}


def parameter_shapes(arch: Arch | None) -> list[tuple[int, ...]] | None:
    """The shapes of the model's parameters in ``model.parameters()`` order (None: order unknown, no ``arch``)."""
    if not arch:
        return None
    with torch.device("meta"):
        model = AlexNet(**arch.to_json())
    return [tuple(p.shape) for p in model.parameters()]


def check_model_tensors(path: Path, arch: Arch | None, tensors: Mapping[str, TensorInfo]) -> None:
    """The tensor names, and the ``model.*`` tensors against ``AlexNet(**arch)``: keys, shapes, dtypes."""
    for name in tensors:
        if not _TENSOR_NAME.fullmatch(name):
            raise invalid_meta(path, f"tensor {name[:80]!r}", "is not a tensor this package writes (model.*, "
                                                          "optimizer.state.*, rng.*)")
    model = {strip_wrapper_prefixes(n[len("model."):]): info for n, info in tensors.items() if n.startswith("model.")}
    if len(model) != sum(n.startswith("model.") for n in tensors):
        raise invalid_meta(path, "model tensors", "name one weight twice (with and without module./_orig_mod.)")
    if not model:
        raise invalid_meta(path, "model tensors", "are missing: the file holds no model.* tensor")
    if not arch:
        return
    expected = expected_model_shapes(arch)
    missing, extra = sorted(set(expected) - set(model)), sorted(set(model) - set(expected))
    if missing or extra:
        raise invalid_meta(path, "model tensors", f"do not fit AlexNet({_arch_text(arch)}): missing {missing[:4]}"
                                              f"{' ...' if len(missing) > 4 else ''}, unexpected {extra[:4]}"
                                              f"{' ...' if len(extra) > 4 else ''}")
    for key, (shape, is_float) in expected.items():
        info = model[key]
        if info.shape != shape:
            raise invalid_meta(path, f"tensor model.{key}", f"has shape {list(info.shape)} but "
                                                        f"AlexNet({_arch_text(arch)}) needs {list(shape)}; "
                                                        "arch and weights disagree")
        if (info.dtype in FLOAT_DTYPES) != is_float or (not is_float and info.dtype != "I64"):
            raise invalid_meta(path, f"tensor model.{key}", f"has dtype {info.dtype}, expected "
                                                        f"{'a floating-point dtype' if is_float else 'I64'}")


def _arch_text(arch: Arch) -> str:
    return ", ".join(f"{k}={v}" for k, v in arch.to_json().items())


# --------------------------------------------------------------------------------------------
# Optimizer and random states (decoded, with TensorInfo in place of tensors)
# --------------------------------------------------------------------------------------------

_GROUP_NUMBERS = {"lr": 0.0, "eps": 0.0, "weight_decay": 0.0, "momentum": 0.0, "dampening": 0.0, "initial_lr": 0.0}


def check_optimizer(path: Path, state: Any, param_shapes: list[tuple[int, ...]] | None,
                    model_tensors: Mapping[str, TensorInfo]) -> None:
    """A decoded ``optimizer.state_dict()`` against the model's parameters.

    ``param_shapes``: the parameters' shapes in order, or None when unknown (then the
    parameters are the model tensors that are not BatchNorm buffers, in any order).
    """
    field = "optimizer"
    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        raise invalid_meta(path, field, "is not {state, param_groups}")
    groups, per_param = state["param_groups"], state["state"]
    if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) for g in groups):
        raise invalid_meta(path, "optimizer.param_groups", "is not a non-empty list of objects")
    if param_shapes is None:
        names = [n for n in model_tensors if n.startswith("model.") and not n.endswith(BUFFER_SUFFIXES)]
        known_shapes = {model_tensors[n].shape for n in names}
        count = len(names)
    else:
        count = len(param_shapes)
    ids: list[Any] = []
    for i, group in enumerate(groups):
        params = group.get("params")
        if not isinstance(params, list) or not all(is_int(p) for p in params):
            raise invalid_meta(path, f"optimizer.param_groups[{i}].params", "is not a list of parameter ids")
        ids.extend(params)
        for key, value in group.items():
            if key in _GROUP_NUMBERS and not (is_number(value) and value >= 0 and (key != "eps" or value > 0)):
                raise invalid_meta(path, f"optimizer.param_groups[{i}].{key}", f"is {str(value)[:40]!r}, not a finite "
                                                                          f"number {'> 0' if key == 'eps' else '>= 0'}")
            if key == "betas" and not (isinstance(value, (list, tuple)) and len(value) == 2
                                       and all(is_number(b) and 0 <= b < 1 for b in value)):
                raise invalid_meta(path, f"optimizer.param_groups[{i}].betas", f"is {str(value)[:40]}, not two numbers "
                                                                          "in [0, 1)")
            if key not in _GROUP_NUMBERS and key not in ("params", "betas") and not (
                    value is None or isinstance(value, (bool, str)) or is_number(value)):
                raise invalid_meta(path, f"optimizer.param_groups[{i}].{key}", "is not a plain value")
    if sorted(ids) != list(range(count)):
        raise invalid_meta(path, "optimizer.param_groups.params", f"number {len(ids)} parameters "
                                                              f"({str(sorted(ids))[:40]}), the model has {count} "
                                                              f"(ids 0..{count - 1}, once each)")
    if not isinstance(per_param, dict):
        raise invalid_meta(path, "optimizer.state", "is not an object")
    for param_id, values in per_param.items():
        if not is_int(param_id) or param_id not in ids or not isinstance(values, dict):
            raise invalid_meta(path, f"optimizer.state.{param_id}", "is not the state of a parameter id")
        for name, value in values.items():
            where = f"optimizer.state.{param_id}.{name}"
            if isinstance(value, TensorInfo):
                if value.dtype not in FLOAT_DTYPES and value.dtype != "I64":
                    raise invalid_meta(path, where, f"has dtype {value.dtype}, not a number type")
                shape_ok = (value.shape == () or (value.shape in known_shapes if param_shapes is None
                                                  else value.shape == param_shapes[ids.index(param_id)]))
                if not shape_ok:
                    raise invalid_meta(path, where, f"has shape {list(value.shape)}, not its parameter's shape")
            elif not (value is None or isinstance(value, bool) or is_number(value)):
                raise invalid_meta(path, where, f"is {str(value)[:40]!r}, not a tensor or a finite number")


def check_rng(path: Path, state: Any) -> None:
    """A decoded random state (see :func:`cifar_alexnet.runtime.random_state.capture_rng_state`)."""
    torch_state_size = torch.get_rng_state().numel()
    if not isinstance(state, dict) or not {"torch_cpu", "python", "numpy"} <= set(state):
        raise invalid_meta(path, "rng", "lacks torch_cpu, python or numpy")
    generators = dict(state.get("generators") or {})
    for name, value in [("torch_cpu", state["torch_cpu"])] + [(f"generators.{k}", v) for k, v in generators.items()]:
        if not (isinstance(value, TensorInfo) and value.dtype == "U8" and value.shape == (torch_state_size,)):
            raise invalid_meta(path, f"rng.{name}", f"is not a uint8 vector of {torch_state_size} bytes (a torch "
                                                "generator's state)")
    for i, value in enumerate(state.get("torch_cuda") or []):
        if not (isinstance(value, TensorInfo) and value.dtype == "U8" and len(value.shape) == 1
                and value.numel <= 1 << 16):
            raise invalid_meta(path, f"rng.torch_cuda.{i}", "is not a uint8 vector (a CUDA generator's state)")
    python = state["python"]
    if not (isinstance(python, tuple) and len(python) == 3 and python[0] == 3 and isinstance(python[1], tuple)
            and len(python[1]) == 625 and all(is_int(w) and 0 <= w < 1 << 32 for w in python[1])
            and python[1][-1] <= 624 and (python[2] is None or is_number(python[2]))):
        raise invalid_meta(path, "rng.python", "is not a random.getstate() of Python's Mersenne Twister (version 3, "
                                           "624 words and a position)")
    numpy_state = state["numpy"]
    if not (isinstance(numpy_state, tuple) and len(numpy_state) == 5 and numpy_state[0] == "MT19937"
            and isinstance(numpy_state[1], np.ndarray) and numpy_state[1].shape == (624,)
            and numpy_state[1].dtype == np.uint32 and is_int(numpy_state[2]) and 0 <= numpy_state[2] <= 624
            and numpy_state[3] in (0, 1) and is_number(numpy_state[4])):
        raise invalid_meta(path, "rng.numpy", "is not a numpy.random.get_state() of MT19937 (624 uint32 words, a "
                                          "position 0..624)")


def uint32_array(values: Any) -> np.ndarray:
    """``values`` as a uint32 array; ValueError unless every one is an int in 0..2**32-1."""
    if not isinstance(values, list) or not all(is_int(v) and 0 <= v < 1 << 32 for v in values):
        raise ValueError("not a list of uint32 values")
    return np.asarray(values, dtype=np.uint32)


def check_finite(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Refuse NaN/Inf in the model and optimizer tensors (a diverged run must not be evaluated or resumed)."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{path}: tensor {name} holds {bad} non-finite value(s) (NaN or Inf); the weights are unusable "
                "-- the run diverged before this save, or the file was altered. Use an earlier checkpoint of "
                "the run, or train again with a lower learning rate")
