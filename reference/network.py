"""The whole modified AlexNet in NumPy: forward, backward, one training step.

The network is not written out here: :func:`forward` walks the layer list
:data:`reference.architecture.LAYERS` (or ``build_layers(...)`` for other widths) and calls
the layer pair of each step (:mod:`reference.conv`, :mod:`reference.batchnorm`, ...);
:func:`backward` walks it in reverse.

**Parameters** live in one flat ``dict`` of NumPy arrays keyed exactly like the
``state_dict()`` of :class:`cifar_alexnet.model.AlexNet`, so weights move between the two
through a ``.npz`` file (:func:`save_npz`, :func:`load_npz`) without renaming:

Example keys (Conv1, BN1, FC1)::

    features.0.weight                  (64, 3, 3, 3)   Conv1 filters
    features.0.bias                    (64,)           Conv1 biases
    features.1.weight                  (64,)           BN1 gamma (scale)
    features.1.bias                    (64,)           BN1 beta (shift)
    features.1.running_mean            (64,)           BN1 buffer
    features.1.running_var             (64,)           BN1 buffer
    features.1.num_batches_tracked     () int64        BN1 buffer (a counter)
    classifier.1.weight                (2048, 4096)    FC1, PyTorch layout (out, in)

Keys ending in ``weight`` / ``bias`` are the learnable **parameters**; ``running_mean``,
``running_var`` and ``num_batches_tracked`` are **buffers**. ``num_batches_tracked`` is
kept so that a torch ``state_dict`` round-trips unchanged; it counts training forward
passes and changes nothing else here (PyTorch only uses it when ``momentum=None``). Files
without it are accepted (the counter starts at 0).

Conventions: NCHW images, float32 or float64 throughout (every float array of ``params``
must have the dtype of the input batch; :func:`cast_params` converts), and functions that
return new state instead of modifying it -- except :func:`train_step`, which, like an
optimiser's ``step()``, updates the parameters and buffers in place.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from math import sqrt
from typing import Mapping, Optional, Sequence

import numpy as np

from reference.adam import AdamState, adam_step
from reference.architecture import BN_EPS, BN_MOMENTUM, INPUT_SHAPE, LAYERS, Layer
from reference.batchnorm import batchnorm_backward, batchnorm_forward
from reference.conv import conv2d_backward, conv2d_forward
from reference.counts import buffer_shapes, output_shape, parameter_shapes
from reference.dropout import dropout_backward, dropout_forward
from reference.flatten import flatten_backward, flatten_forward
from reference.linear import linear_backward, linear_forward
from reference.loss import softmax_cross_entropy
from reference.pool import maxpool2d_backward, maxpool2d_forward
from reference.relu import relu_backward, relu_forward

__all__ = [
    "PARAMETER_SUFFIXES",
    "BUFFER_SUFFIXES",
    "NetworkCache",
    "TrainStepResult",
    "state_layout",
    "parameter_keys",
    "init_params",
    "cast_params",
    "check_params",
    "save_npz",
    "load_npz",
    "forward",
    "backward",
    "train_step",
]

#: Suffixes of the learnable parameters (what the optimiser updates).
PARAMETER_SUFFIXES = ("weight", "bias")
#: Suffixes of the BatchNorm buffers (state updated by training-mode forward passes).
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")

_NAME = "reference.network"


# ----------------------------------------------------------------------------- layout


def state_layout(layers: Sequence[Layer] = LAYERS, input_shape: Sequence[int] = INPUT_SHAPE) -> dict[str, tuple]:
    """Every key of the network's state and its shape, in ``state_dict`` order.

    Args:
        layers: the layer list.
        input_shape: per-sample input ``(C, H, W)``.

    Returns:
        ``{"features.0.weight": (64, 3, 3, 3), ..., "classifier.9.num_batches_tracked": ()}``.
    """
    layout: dict[str, tuple] = {}
    shape = tuple(input_shape)
    for layer in layers:
        for suffix, param_shape in parameter_shapes(layer, shape).items():
            layout[f"{layer.key}.{suffix}"] = param_shape
        for suffix, buffer_shape in buffer_shapes(layer, shape).items():
            layout[f"{layer.key}.{suffix}"] = buffer_shape
        shape = output_shape(layer, shape)
    return layout


def parameter_keys(layers: Sequence[Layer] = LAYERS) -> list[str]:
    """The keys of the learnable parameters, in order (``features.0.weight``, ``features.0.bias``, ...)."""
    return [key for key in state_layout(layers) if key.rsplit(".", 1)[1] in PARAMETER_SUFFIXES]


def init_params(rng: np.random.Generator, dtype=np.float32, layers: Sequence[Layer] = LAYERS) -> dict[str, np.ndarray]:
    """Fresh parameters, initialised the way PyTorch initialises these modules by default.

    * conv and linear: weight and bias uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``
      (PyTorch's ``kaiming_uniform_(a=sqrt(5))`` works out to exactly this bound), with
      ``fan_in = C_in * k * k`` or ``in_features``;
    * BatchNorm: gamma 1, beta 0, running mean 0, running variance 1, counter 0.

    Args:
        rng: the random generator, e.g. ``np.random.default_rng(0)``.
        dtype: float32 (default) or float64.
        layers: the layer list.

    Returns:
        The state dict (parameters and buffers), keyed as :func:`state_layout`.
    """
    _check_init_dtype(dtype)
    dtype = np.dtype(dtype)
    params: dict[str, np.ndarray] = {}
    by_key = {layer.key: layer for layer in layers}
    layout = state_layout(layers)
    for key, shape in layout.items():
        prefix, suffix = key.rsplit(".", 1)
        kind = by_key[prefix].kind
        if kind in ("conv", "linear"):
            weight_shape = layout[f"{prefix}.weight"]
            fan_in = int(np.prod(weight_shape[1:]))  # C_in * k * k, or in_features
            bound = 1.0 / sqrt(fan_in)
            params[key] = rng.uniform(-bound, bound, size=shape).astype(dtype)
        elif suffix == "num_batches_tracked":
            params[key] = np.zeros((), dtype=np.int64)
        elif suffix in ("weight", "running_var"):
            params[key] = np.ones(shape, dtype=dtype)
        else:  # BatchNorm bias and running_mean
            params[key] = np.zeros(shape, dtype=dtype)
    return params


def cast_params(params: Mapping[str, np.ndarray], dtype) -> dict[str, np.ndarray]:
    """A copy of ``params`` with every float array converted to ``dtype`` (the counters stay int64)."""
    return {
        key: value.astype(dtype) if np.issubdtype(value.dtype, np.floating) else value.copy()
        for key, value in params.items()
    }


def check_params(
    params: Mapping[str, np.ndarray], layers: Sequence[Layer] = LAYERS, source: str = "params"
) -> dict[str, np.ndarray]:
    """Check keys, shapes and dtypes of a state dict; return it with missing counters added.

    Args:
        params: the state dict to check.
        layers: the layer list it should belong to.
        source: what to call it in error messages (a file name, say).

    Returns:
        A new dict in :func:`state_layout` order; absent ``num_batches_tracked`` entries are
        filled in with 0.

    Raises:
        ValueError: listing every missing key, unexpected key, wrong shape and non-float
            parameter at once.
    """
    layout = state_layout(layers)
    problems = []
    missing = [k for k in layout if k not in params and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in params if k not in layout]
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    checked: dict[str, np.ndarray] = {}
    float_dtypes = set()
    for key, shape in layout.items():
        if key not in params:
            if key.endswith("num_batches_tracked"):
                checked[key] = np.zeros((), dtype=np.int64)
            continue
        value = np.asarray(params[key])
        if value.shape != shape:
            problems.append(f"{key} has shape {value.shape}, expected {shape}")
        if key.endswith("num_batches_tracked"):
            value = value.astype(np.int64)
        elif value.dtype not in (np.float32, np.float64):
            problems.append(f"{key} has dtype {value.dtype}, expected float32 or float64")
        else:
            float_dtypes.add(value.dtype)
        checked[key] = value
    if len(float_dtypes) > 1:
        problems.append(f"mixed float dtypes {sorted(str(d) for d in float_dtypes)}; use cast_params(params, dtype)")
    if problems:
        raise ValueError(f"{source}: not a state dict of this network: " + "; ".join(problems))
    return checked


# ----------------------------------------------------------------------------- files


def save_npz(path: str | os.PathLike, params: Mapping[str, np.ndarray]) -> None:
    """Write ``params`` to an uncompressed ``.npz`` file, atomically.

    The file is written under a temporary name in the same directory, flushed to disk and
    then renamed over ``path``, so ``path`` is either the old file or the complete new one,
    never half written. (``reference`` uses only NumPy and the standard library, so this is
    a small local version of :mod:`cifar_alexnet.runtime.atomic`.)
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **{key: np.asarray(value) for key, value in params.items()})
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def load_npz(path: str | os.PathLike, layers: Sequence[Layer] = LAYERS) -> dict[str, np.ndarray]:
    """Read a state dict written by :func:`save_npz` (or ``np.savez`` of a torch ``state_dict``).

    Args:
        path: the ``.npz`` file.
        layers: the layer list the weights belong to (``build_layers(...)`` for other widths).

    Returns:
        The state dict, checked by :func:`check_params`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an ``.npz`` archive, or not this network's keys/shapes (the message
            names the file and lists every problem).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected an .npz written by reference.network.save_npz)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            params = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path}: not a readable .npz archive of arrays ({error}); write one with "
            "reference.network.save_npz or np.savez(path, **{name: tensor.numpy()})"
        ) from error
    return check_params(params, layers, source=path)


# ----------------------------------------------------------------------------- forward / backward


@dataclass
class NetworkCache:
    """What :func:`backward` needs: the layer list and each layer's cache, in forward order."""

    layers: tuple
    layer_caches: list
    training: bool


def forward(
    params: Mapping[str, np.ndarray],
    x: np.ndarray,
    *,
    training: bool,
    dropout_masks: Optional[Mapping[str, np.ndarray]] = None,
    rng: Optional[np.random.Generator] = None,
    layers: Sequence[Layer] = LAYERS,
    momentum: float = BN_MOMENTUM,
    eps: float = BN_EPS,
):
    """The forward pass of the whole network.

    Args:
        params: the state dict (:func:`init_params`, :func:`load_npz`); not modified.
        x: a batch of normalised images, ``(N, 3, 32, 32)``, float32 or float64 (the dtype
            of ``params``). Training needs ``N >= 2`` (BatchNorm1d needs two values per
            feature).
        training: ``True``: BatchNorm uses batch statistics and updates the running ones,
            dropout drops; ``False``: BatchNorm uses the running statistics, dropout is the
            identity.
        dropout_masks: boolean keep-masks by dropout layer key, e.g.
            ``{"classifier.0": (N, 4096) mask, "classifier.4": (N, 2048) mask}`` (``True`` =
            keep); lets a test use the very masks a PyTorch run used.
        rng: draws the keep-masks of dropout layers without a given mask (training only).
        layers: the layer list (default: the write-up's network).
        momentum, eps: BatchNorm's running-statistics momentum and variance epsilon.

    Returns:
        logits: ``(N, num_classes)``, dtype of ``x`` (the output of BN8, before softmax).
        cache: a :class:`NetworkCache` for :func:`backward`.
        new_buffers: the BatchNorm buffers after this pass, keyed like ``params``
            (``running_mean``, ``running_var``, ``num_batches_tracked``); unchanged copies in
            eval mode. ``{**params, **new_buffers}`` is the state after the step.

    Raises:
        ValueError: a malformed batch or state dict, mismatched dtypes, unknown mask keys,
            or a dropout layer in training mode with neither a mask nor ``rng``.
    """
    layers = tuple(layers)
    params = _check_forward(params, x, training, dropout_masks, rng, layers)  # absent counters filled in
    masks = dict(dropout_masks or {})
    new_buffers: dict[str, np.ndarray] = {}
    layer_caches = []
    out = x  # (N, 3, 32, 32)
    for layer in layers:
        key = layer.key
        if layer.kind == "conv":
            out, cache = conv2d_forward(out, params[f"{key}.weight"], params[f"{key}.bias"], layer.stride, layer.padding)
        elif layer.kind in ("bn2d", "bn1d"):
            out, cache, (mean, var) = batchnorm_forward(
                out, params[f"{key}.weight"], params[f"{key}.bias"],
                params[f"{key}.running_mean"], params[f"{key}.running_var"],
                training=training, momentum=momentum, eps=eps,
            )
            counter = params[f"{key}.num_batches_tracked"]
            new_buffers[f"{key}.running_mean"] = mean.copy()
            new_buffers[f"{key}.running_var"] = var.copy()
            new_buffers[f"{key}.num_batches_tracked"] = counter + 1 if training else counter.copy()
        elif layer.kind == "relu":
            out, cache = relu_forward(out)
        elif layer.kind == "maxpool":
            out, cache = maxpool2d_forward(out, layer.kernel, layer.stride)
        elif layer.kind == "flatten":
            out, cache = flatten_forward(out)  # (N, C, H, W) -> (N, C*H*W)
        elif layer.kind == "dropout":
            mask = masks.get(key) if training else None
            out, cache = dropout_forward(out, layer.p, training=training, rng=None if mask is not None else rng,
                                         mask=mask)
        elif layer.kind == "linear":
            out, cache = linear_forward(out, params[f"{key}.weight"], params[f"{key}.bias"])
        else:
            raise ValueError(f"{_NAME}.forward: unknown layer kind {layer.kind!r} of {layer.name}")
        layer_caches.append(cache)
    return out, NetworkCache(layers, layer_caches, bool(training)), new_buffers


def backward(dlogits: np.ndarray, cache: NetworkCache) -> dict[str, np.ndarray]:
    """The backward pass of the whole network.

    Args:
        dlogits: gradient of the loss with respect to the logits, ``(N, num_classes)``.
        cache: from :func:`forward`.

    Returns:
        The gradient of every learnable parameter, keyed like the parameters
        (``features.0.weight``: ``(64, 3, 3, 3)``, ...; buffers have no gradient), in
        forward order.
    """
    grads: dict[str, np.ndarray] = {}
    dout = dlogits  # (N, num_classes)
    for layer, layer_cache in zip(reversed(cache.layers), reversed(cache.layer_caches)):
        key = layer.key
        if layer.kind == "conv":
            dout, grads[f"{key}.weight"], grads[f"{key}.bias"] = conv2d_backward(dout, layer_cache)
        elif layer.kind in ("bn2d", "bn1d"):
            dout, grads[f"{key}.weight"], grads[f"{key}.bias"] = batchnorm_backward(dout, layer_cache)
        elif layer.kind == "relu":
            dout = relu_backward(dout, layer_cache)
        elif layer.kind == "maxpool":
            dout = maxpool2d_backward(dout, layer_cache)
        elif layer.kind == "flatten":
            dout = flatten_backward(dout, layer_cache)  # (N, C*H*W) -> (N, C, H, W)
        elif layer.kind == "dropout":
            dout = dropout_backward(dout, layer_cache)
        elif layer.kind == "linear":
            dout, grads[f"{key}.weight"], grads[f"{key}.bias"] = linear_backward(dout, layer_cache)
    # dout is now the gradient with respect to the input images, (N, 3, 32, 32); not needed here.
    order = parameter_keys(cache.layers)
    return {key: grads[key] for key in order}


# ----------------------------------------------------------------------------- training


@dataclass
class TrainStepResult:
    """What one :func:`train_step` reports.

    Attributes:
        loss: mean cross-entropy of the batch (before the update).
        logits: ``(N, num_classes)`` (before the update).
        grads: the gradients used for the update, keyed like the parameters.
    """

    loss: float
    logits: np.ndarray
    grads: dict


def train_step(
    params: dict,
    adam_state: AdamState,
    x: np.ndarray,
    labels: np.ndarray,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    dropout_masks: Optional[Mapping[str, np.ndarray]] = None,
    rng: Optional[np.random.Generator] = None,
    layers: Sequence[Layer] = LAYERS,
) -> TrainStepResult:
    """One training step: forward (training mode), cross-entropy, backward, Adam.

    Like ``model.train(); loss.backward(); optimizer.step()`` in PyTorch, it changes its
    arguments **in place**: the learnable parameters of ``params`` get the Adam update,
    the BatchNorm buffers of ``params`` the new running statistics, and ``adam_state`` its
    moments and step counts.

    Args:
        params: the state dict (float arrays of ``x``'s dtype), updated in place.
        adam_state: an :class:`reference.adam.AdamState` (``AdamState()`` before the first step).
        x: images, ``(N, 3, 32, 32)``, ``N >= 2``.
        labels: class indices, ``(N,)`` integers.
        lr, betas, eps, weight_decay: Adam's hyperparameters (the write-up: lr 1e-3).
        dropout_masks, rng: the dropout keep-masks or the generator to draw them (see
            :func:`forward`).
        layers: the layer list.

    Returns:
        A :class:`TrainStepResult` with the loss, logits and gradients of this batch.
    """
    logits, cache, new_buffers = forward(params, x, training=True, dropout_masks=dropout_masks, rng=rng, layers=layers)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    grads = backward(dlogits, cache)
    learnable = {key: params[key] for key in grads}  # the same arrays: adam_step updates them in place
    adam_step(learnable, grads, adam_state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    params.update(new_buffers)
    return TrainStepResult(loss=float(loss), logits=logits, grads=grads)


# ----------------------------------------------------------------------------- argument checks


def _check_init_dtype(dtype) -> None:
    """:func:`init_params` makes float32 or float64 parameters only."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{_NAME}.init_params: dtype must be float32 or float64, got {dtype}")


def _check_forward(params, x, training, dropout_masks, rng, layers) -> dict[str, np.ndarray]:
    """Check :func:`forward`'s arguments; return ``params`` as :func:`check_params` returns it.

    The batch must be ``(N, 3, 32, 32)`` of the parameters' dtype, the masks must name dropout
    layers, and in training mode every dropout layer needs a mask or ``rng``.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4 or tuple(x.shape[1:]) != tuple(INPUT_SHAPE):
        raise ValueError(
            f"{_NAME}.forward: x must be a NumPy array of shape (N, 3, 32, 32) (NCHW), got "
            f"{getattr(x, 'shape', type(x).__name__)}; add a batch axis with x[None] for one image"
        )
    params = check_params(params, layers)
    dtype = _float_dtype_of(params)
    if x.dtype != dtype:
        raise ValueError(
            f"{_NAME}.forward: x has dtype {x.dtype} but the parameters are {dtype}; convert one of them "
            f"(x.astype({dtype}) or cast_params(params, x.dtype))"
        )
    masks = dict(dropout_masks or {})
    dropout_layers = [layer for layer in layers if layer.kind == "dropout"]
    dropout_keys = {layer.key for layer in dropout_layers}
    unknown = sorted(set(masks) - dropout_keys)
    if unknown:
        raise ValueError(
            f"{_NAME}.forward: dropout_masks has unknown keys {unknown}; dropout layers: {sorted(dropout_keys)}"
        )
    for layer in dropout_layers:
        if training and layer.key not in masks and rng is None:
            raise ValueError(
                f"{_NAME}.forward: training mode needs a keep-mask for dropout layer {layer.key} ({layer.name}) "
                "in dropout_masks, or rng=np.random.default_rng(seed) to draw one"
            )
    return params


def _float_dtype_of(params: Mapping[str, np.ndarray]) -> Optional[np.dtype]:
    """The dtype of the first float array in ``params`` (:func:`check_params` allows only one)."""
    for value in params.values():
        if np.issubdtype(value.dtype, np.floating):
            return value.dtype
    return None
