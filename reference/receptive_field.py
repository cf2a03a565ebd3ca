"""Receptive fields, computed analytically layer by layer.

The receptive field of a unit is the set of input pixels that can influence it. Along one
axis it is described by three numbers per layer output (the classic recurrence, e.g.
Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019):

``r``      size: how many input pixels one output unit sees;
``j``      jump: how many input pixels apart two neighbouring output units are (the
           product of all strides so far);
``start``  the input coordinate of the *centre* of the field of output unit 0, with input
           pixel centres at 0, 1, ..., W-1. Padding pushes it to the left (negative values
           mean the field starts in the zero padding).

A window of kernel ``k``, stride ``s`` and padding ``p`` (convolution or pooling) maps
``(r, j, start)`` to::

    r_out     = r_in + (k - 1) * j_in
    j_out     = j_in * s
    start_out = start_in + ((k - 1) / 2 - p) * j_in

BatchNorm, ReLU, dropout and flatten do not mix positions (in eval mode -- see the note
below) and leave the three numbers unchanged. A linear layer sees every position of its
input, so it is a window as wide as its input (``k = size``, ``s = 1``, ``p = 0``).

Unit ``i`` of a layer output then covers input pixels
``start + i * j - (r - 1) / 2`` to ``start + i * j + (r - 1) / 2``.

A common mistake -- the one in the original write-up's table -- is to add ``k - 1`` per
convolution and ignore the jump: after a stride-2 pooling every further 3x3 convolution
widens the field by ``2 * j`` pixels, not by 2.

Gaps: ``r`` is the *extent* of the field. When a stride is larger than the field of
the units it steps over (``j_in > r_in``), neighbouring units of a window see disjoint,
non-adjacent pixels and the field has holes -- e.g. a 1x1 convolution with stride 2
followed by a 2x2 convolution sees pixels 0 and 2 but not 1. :attr:`ReceptiveField.contiguous`
tracks this; in the AlexNet every field is contiguous.

Note:
    In *training* mode BatchNorm normalises with the mean and variance of the whole batch,
    which depend on every pixel of every image; through them every output depends on the
    whole input. The receptive field is a property of the eval-mode network.

The network is symmetric in height and width (square kernels, equal strides and
paddings), so one axis describes both; for a non-square input call
:func:`receptive_fields` once per axis with that axis's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from reference.architecture import INPUT_SHAPE, LAYERS, Layer
from reference.conv import conv2d_output_size

__all__ = ["ReceptiveField", "receptive_fields", "receptive_field_of"]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the output of one layer, along one spatial axis.

    Attributes:
        name: the layer's name (``"Input"`` for the input itself).
        size: number of output positions along the axis (1 after a linear layer).
        r: receptive field size in input pixels.
        j: jump -- input pixels between neighbouring output units.
        start: input coordinate of the centre of unit 0's field.
        contiguous: every pixel between the field's first and last one is part of it (no
            holes; see the module docstring).
    """

    name: str
    size: int
    r: int
    j: int
    start: float
    contiguous: bool = True

    def centre(self, index: int) -> float:
        """Input coordinate of the centre of the field of output unit ``index``."""
        return self.start + index * self.j

    def span(self, index: int) -> tuple[int, int]:
        """First and last input pixel (inclusive) of the field of output unit ``index``.

        May reach outside ``0 .. W-1`` (into the zero padding or beyond the image).
        """
        half = (self.r - 1) / 2
        low, high = self.centre(index) - half, self.centre(index) + half
        return int(round(low)), int(round(high))

    def covers_whole_input(self, input_size: int) -> bool:
        """True if every output unit sees every pixel of an input of ``input_size`` pixels."""
        return all(
            self.span(i)[0] <= 0 and self.span(i)[1] >= input_size - 1 for i in range(self.size)
        )


def _window(field: ReceptiveField, name: str, kernel: int, stride: int, padding: int) -> ReceptiveField:
    """Apply a sliding window (convolution, pooling, or a linear layer as a full-width window)."""
    size = conv2d_output_size(field.size, kernel, stride, padding)
    if size < 1:
        raise ValueError(f"{name}: {field.size} positions are too few for a window of {kernel} with padding {padding}")
    return ReceptiveField(
        name=name,
        size=size,
        r=field.r + (kernel - 1) * field.j,
        j=field.j * stride,
        start=field.start + ((kernel - 1) / 2 - padding) * field.j,
        # A window of k >= 2 units whose fields (r_in wide, j_in apart) leave gaps between them.
        contiguous=field.contiguous and (kernel == 1 or field.r >= field.j),
    )


def receptive_fields(layers: Iterable[Layer] = LAYERS, input_size: int = INPUT_SHAPE[1]) -> list[ReceptiveField]:
    """The receptive field of every layer output, in order, preceded by the input's own.

    Args:
        layers: the layer list (default: the network of the write-up).
        input_size: the input's size along the axis (default 32).

    Returns:
        ``[input, layer_1, ..., layer_n]``: one :class:`ReceptiveField` for the input
        (``r=1, j=1, start=0``) and one for the output of each layer.
    """
    field = ReceptiveField(name="Input", size=int(input_size), r=1, j=1, start=0.0)
    result = [field]
    for layer in layers:
        if layer.kind in ("conv", "maxpool"):
            field = _window(field, layer.name, layer.kernel, layer.stride, layer.padding or 0)
        elif layer.kind == "linear":
            # Every input position feeds every output: a window as wide as the input.
            field = _window(field, layer.name, kernel=field.size, stride=1, padding=0)
        elif layer.kind in ("bn2d", "bn1d", "relu", "dropout", "flatten"):
            field = ReceptiveField(layer.name, field.size, field.r, field.j, field.start, field.contiguous)
        else:
            raise ValueError(f"{layer.name}: unknown layer kind {layer.kind!r}")
        result.append(field)
    return result


def receptive_field_of(name: str, layers: Iterable[Layer] = LAYERS, input_size: int = INPUT_SHAPE[1]) -> ReceptiveField:
    """The receptive field of the output of the layer called ``name`` (e.g. ``"Conv3"``)."""
    for field in receptive_fields(layers, input_size):
        if field.name == name:
            return field
    raise KeyError(f"no layer named {name!r}")
