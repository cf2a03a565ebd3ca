"""Analytic shapes, parameter counts, neuron counts and operation counts, layer by layer.

Everything here is derived from the layer list of :mod:`reference.architecture` and an
input shape; nothing is measured and no number is typed in. The tests check the results
against the PyTorch model (forward hooks, ``numel``, ``torch.utils.flop_counter``) and
against the ``torchstat`` output printed in the original write-up.

Shapes are per sample, without the batch dimension: ``(C, H, W)`` for image-like
activations, ``(F,)`` after flattening.

Three ways of counting work are reported, because the original mixes them up:

``macs``
    plain multiply-accumulates of the convolutions and linear layers, the number most
    papers mean by "FLOPs / 2": conv ``out_elements * C_in * k * k``, linear
    ``in * out``; every other layer 0. Equals half of what
    ``torch.utils.flop_counter.FlopCounterMode`` reports.

``torchstat_flops``
    the "Flops" column of ``torchstat`` (the tool the write-up ran), whose rules are
    (``torchstat/compute_flops.py``)

    * conv: ``out_elements * C_in * k * k`` + ``out_elements`` for the bias;
    * BatchNorm2d: 2 per element (1 without affine);
    * ReLU: 1 per element;
    * max-pool: 1 per *input* element;
    * linear: ``in * out`` (bias not counted);
    * BatchNorm1d, dropout: 0 -- torchstat has no rule for them and prints 0.

``torchstat_madd``
    the "MAdd" column of ``torchstat`` (``torchstat/compute_madd.py``): conv
    ``out_elements * (2 * C_in * k * k - 1 + 1 for the bias)``; BatchNorm2d 4 per element;
    ReLU 1 per element; max-pool ``out_elements * (k * k - 1)``; linear
    ``out * (2 * in - 1)``; BatchNorm1d, dropout 0.

"Neurons" follows the write-up's table: the output activations of the convolutional and
fully connected layers (BatchNorm, ReLU and pooling outputs are not counted again).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Iterable, Sequence

from reference.architecture import INPUT_SHAPE, LAYERS, Layer
from reference.conv import conv2d_output_size

__all__ = [
    "LayerCounts",
    "output_shape",
    "parameter_shapes",
    "buffer_shapes",
    "count_layer",
    "count_layers",
    "totals",
]

@dataclass(frozen=True)
class LayerCounts:
    """The analytic numbers of one layer for one input sample.

    Attributes:
        layer: the layer of :data:`reference.architecture.LAYERS` (or of ``build_layers``).
        in_shape: per-sample input shape, ``(C, H, W)`` or ``(F,)``.
        out_shape: per-sample output shape.
        weights: learnable parameters (conv/linear weight + bias, BatchNorm gamma + beta).
        buffers: non-learnable state elements (BatchNorm running mean + running variance;
            the scalar ``num_batches_tracked`` is not counted).
        neurons: output activations of a conv or linear layer, else 0.
        macs: multiply-accumulates of a conv or linear layer, else 0.
        torchstat_flops: torchstat's "Flops" for this layer (see the module docstring).
        torchstat_madd: torchstat's "MAdd" for this layer.
    """

    layer: Layer
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weights: int
    buffers: int
    neurons: int
    macs: int
    torchstat_flops: int
    torchstat_madd: int

    @property
    def in_elements(self) -> int:
        return prod(self.in_shape)

    @property
    def out_elements(self) -> int:
        return prod(self.out_shape)


def _require_image(layer: Layer, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise ValueError(f"{layer.name} ({layer.kind}) needs a (C, H, W) input, got shape {in_shape}")
    return in_shape  # type: ignore[return-value]


def _require_vector(layer: Layer, in_shape: tuple[int, ...]) -> int:
    if len(in_shape) != 1:
        raise ValueError(
            f"{layer.name} ({layer.kind}) needs a flat (F,) input, got shape {in_shape}; "
            "put a flatten layer in front of it"
        )
    return in_shape[0]


def output_shape(layer: Layer, in_shape: Sequence[int]) -> tuple[int, ...]:
    """The per-sample output shape of ``layer`` for a per-sample input of ``in_shape``.

    Raises:
        ValueError: the input shape does not suit the layer (for example a spatial size
            smaller than the kernel), naming the layer.
    """
    in_shape = tuple(int(s) for s in in_shape)
    kind = layer.kind
    if kind in ("conv", "maxpool"):
        channels, height, width = _require_image(layer, in_shape)
        padding = layer.padding or 0
        out_h = conv2d_output_size(height, layer.kernel, layer.stride, padding)
        out_w = conv2d_output_size(width, layer.kernel, layer.stride, padding)
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"{layer.name}: input {height}x{width} is too small for a {layer.kernel}x{layer.kernel} "
                f"window with padding {padding}"
            )
        out_channels = layer.out_channels if kind == "conv" else channels
        return (out_channels, out_h, out_w)
    if kind == "bn2d":
        _require_image(layer, in_shape)
        return in_shape
    if kind in ("relu", "dropout"):
        return in_shape
    if kind == "flatten":
        return (prod(in_shape),)
    if kind == "linear":
        _require_vector(layer, in_shape)
        return (layer.features,)
    if kind == "bn1d":
        features = _require_vector(layer, in_shape)
        if layer.features is not None and layer.features != features:
            raise ValueError(f"{layer.name}: BatchNorm1d of {layer.features} features got {features} inputs")
        return in_shape
    raise ValueError(f"{layer.name}: unknown layer kind {kind!r}")


def parameter_shapes(layer: Layer, in_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Learnable parameters of ``layer``: state_dict suffix -> shape (``{}`` if none).

    conv: ``weight (F, C, k, k)``, ``bias (F,)``; linear: ``weight (out, in)``, ``bias (out,)``
    (PyTorch's layout); BatchNorm: ``weight`` (gamma) and ``bias`` (beta), ``(C,)`` each.
    """
    in_shape = tuple(int(s) for s in in_shape)
    kind = layer.kind
    if kind == "conv":
        channels = _require_image(layer, in_shape)[0]
        return {"weight": (layer.out_channels, channels, layer.kernel, layer.kernel), "bias": (layer.out_channels,)}
    if kind == "linear":
        features = _require_vector(layer, in_shape)
        return {"weight": (layer.features, features), "bias": (layer.features,)}
    if kind in ("bn2d", "bn1d"):
        channels = in_shape[0]
        return {"weight": (channels,), "bias": (channels,)}
    return {}


def buffer_shapes(layer: Layer, in_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Non-learnable state of ``layer`` (BatchNorm only): suffix -> shape.

    ``running_mean (C,)``, ``running_var (C,)`` and the scalar ``num_batches_tracked ()``
    that PyTorch keeps (it only matters for ``momentum=None``, which this network does not use).
    """
    if layer.kind in ("bn2d", "bn1d"):
        channels = int(in_shape[0])
        return {"running_mean": (channels,), "running_var": (channels,), "num_batches_tracked": ()}
    return {}


def _torchstat_flops(layer: Layer, in_elements: int, out_shape: tuple[int, ...], macs: int) -> int:
    kind = layer.kind
    if kind == "conv":
        return macs + prod(out_shape)  # one multiply-accumulate per weight use + one add per bias
    if kind == "bn2d":
        return 2 * in_elements  # affine BatchNorm: 2 per element
    if kind == "relu":
        return in_elements
    if kind == "maxpool":
        return in_elements  # torchstat counts the input elements of a pooling layer
    if kind == "linear":
        return macs  # torchstat leaves the bias out here
    return 0  # bn1d, dropout, flatten: no torchstat rule


def _torchstat_madd(layer: Layer, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    kind = layer.kind
    out_elements = prod(out_shape)
    if kind == "conv":
        per_output = layer.kernel * layer.kernel * in_shape[0]  # multiplications per output element
        adds = per_output - 1 + 1  # summing the products, then the bias
        return out_elements * (per_output + adds)
    if kind == "bn2d":
        return 4 * prod(in_shape)  # subtract mean, divide by std, scale, shift
    if kind == "relu":
        return prod(in_shape)
    if kind == "maxpool":
        return out_elements * (layer.kernel * layer.kernel - 1)  # comparisons per window
    if kind == "linear":
        return layer.features * (2 * in_shape[0] - 1)  # bias not counted
    return 0


def count_layer(layer: Layer, in_shape: Sequence[int]) -> LayerCounts:
    """All analytic numbers of one layer for a per-sample input of ``in_shape``."""
    in_shape = tuple(int(s) for s in in_shape)
    out_shape = output_shape(layer, in_shape)
    weights = sum(prod(shape) for shape in parameter_shapes(layer, in_shape).values())
    buffers = sum(prod(shape) for suffix, shape in buffer_shapes(layer, in_shape).items() if shape != ())
    if layer.kind == "conv":
        macs = prod(out_shape) * in_shape[0] * layer.kernel * layer.kernel
        neurons = prod(out_shape)
    elif layer.kind == "linear":
        macs = in_shape[0] * layer.features
        neurons = prod(out_shape)
    else:
        macs = neurons = 0
    return LayerCounts(
        layer=layer,
        in_shape=in_shape,
        out_shape=out_shape,
        weights=weights,
        buffers=buffers,
        neurons=neurons,
        macs=macs,
        torchstat_flops=_torchstat_flops(layer, prod(in_shape), out_shape, macs),
        torchstat_madd=_torchstat_madd(layer, in_shape, out_shape),
    )


def count_layers(layers: Iterable[Layer] = LAYERS, input_shape: Sequence[int] = INPUT_SHAPE) -> list[LayerCounts]:
    """:func:`count_layer` for every layer, feeding each output shape into the next layer.

    Args:
        layers: the layer list (default: the network of the write-up).
        input_shape: per-sample input shape ``(C, H, W)`` (default ``(3, 32, 32)``).
    """
    result = []
    shape = tuple(int(s) for s in input_shape)
    for layer in layers:
        counts = count_layer(layer, shape)
        result.append(counts)
        shape = counts.out_shape
    return result


def totals(counts: Iterable[LayerCounts]) -> dict[str, int]:
    """Sums over all layers (ReLU included, as torchstat's total row does)."""
    counts = list(counts)
    return {
        "weights": sum(c.weights for c in counts),
        "buffers": sum(c.buffers for c in counts),
        "neurons": sum(c.neurons for c in counts),
        "macs": sum(c.macs for c in counts),
        "torchstat_flops": sum(c.torchstat_flops for c in counts),
        "torchstat_madd": sum(c.torchstat_madd for c in counts),
    }
