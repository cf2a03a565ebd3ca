"""The layer table of the original write-up (its table (b)), derived from the layer list.

One :class:`Row` per row of the original table -- Input, Conv1, BN1, Pool1, ..., FC3, BN8,
Total (:data:`reference.architecture.TABLE_ROWS`) -- with every number computed from
:data:`reference.architecture.LAYERS` by :mod:`reference.counts` (shapes, weights,
neurons, operation counts) and :mod:`reference.receptive_field`. Where the printed table
is wrong, this table has the correct value and :mod:`reference.errata` says what was
printed and why it differs.

ReLU, dropout and flatten are not rows (as in the original), but the Total row's
torchstat FLOPs and MAdd include the ReLUs, exactly as torchstat's own total does: that
is how the original's total of 228,743,360 comes about.

Command line::

    python -m reference.table --format md    # Markdown table, then the errata
    python -m reference.table --format csv
    python -m reference.table --format json
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

from reference.architecture import INPUT_SHAPE, LAYERS, Layer
from reference.counts import count_layers, totals
from reference.errata import ORIGINAL_TORCHSTAT_TOTALS, Erratum, find_errata
from reference.receptive_field import receptive_fields

__all__ = ["Row", "layer_table", "table_errata", "to_markdown", "to_csv", "to_json", "main"]

#: Kinds of layer that are not rows of the table.
HIDDEN_KINDS = ("relu", "dropout", "flatten")


@dataclass(frozen=True)
class Row:
    """One row of the layer table. ``None`` means "does not apply" (printed "-").

    Attributes:
        name: ``"Input"``, a layer name of :data:`~reference.architecture.TABLE_ROWS`, or ``"Total"``.
        kind: the layer kind, or ``"input"`` / ``"total"``.
        filters: number of filters of a convolution.
        filter_size: kernel size of a convolution or pooling window.
        stride, padding: of a convolution or pooling (pooling has padding 0).
        in_shape: per-sample input shape (``None`` for Input and Total).
        feature_map: per-sample output shape, ``(C, H, W)`` or ``(F,)``.
        weights: learnable parameters (BatchNorm: gamma and beta, not the running statistics).
        neurons: output activations of a conv or linear layer.
        torchstat_flops: torchstat's "Flops" (see :mod:`reference.counts`).
        torchstat_madd: torchstat's "MAdd".
        macs: plain multiply-accumulates (conv and linear only).
        receptive_field: receptive field size ``r`` of one output unit, in input pixels.
        jump: input pixels between neighbouring output units.
        start: input coordinate of the centre of output unit 0's field.
        whole_input: every output unit sees the whole input image.
    """

    name: str
    kind: str
    filters: Optional[int]
    filter_size: Optional[int]
    stride: Optional[int]
    padding: Optional[int]
    in_shape: Optional[tuple[int, ...]]
    feature_map: Optional[tuple[int, ...]]
    weights: int
    neurons: int
    torchstat_flops: int
    torchstat_madd: int
    macs: int
    receptive_field: int
    jump: int
    start: float
    whole_input: bool


def _geometry(layer: Layer) -> tuple[Optional[int], Optional[int], Optional[int], Optional[int]]:
    """(filters, filter_size, stride, padding) as the table shows them."""
    if layer.kind == "conv":
        return layer.out_channels, layer.kernel, layer.stride, layer.padding
    if layer.kind == "maxpool":
        return None, layer.kernel, layer.stride, 0
    return None, None, None, None


def layer_table(layers: Sequence[Layer] = LAYERS, input_shape: Sequence[int] = INPUT_SHAPE) -> list[Row]:
    """The table: an Input row, one row per layer that is not ReLU/dropout/flatten, a Total row.

    Args:
        layers: the layer list (default: the write-up's network; ``build_layers(...)`` for
            other widths).
        input_shape: per-sample input ``(C, H, W)``; the receptive field is along H.
    """
    layers = tuple(layers)
    input_shape = tuple(int(s) for s in input_shape)
    counts = count_layers(layers, input_shape)
    fields = receptive_fields(layers, input_shape[1])  # fields[0] is the input's own
    input_field = fields[0]
    rows = [
        Row("Input", "input", None, None, None, None, None, input_shape, 0, 0, 0, 0, 0,
            input_field.r, input_field.j, input_field.start, False)
    ]
    for layer, count, field in zip(layers, counts, fields[1:]):
        if layer.kind in HIDDEN_KINDS:
            continue
        filters, filter_size, stride, padding = _geometry(layer)
        rows.append(
            Row(
                name=layer.name,
                kind=layer.kind,
                filters=filters,
                filter_size=filter_size,
                stride=stride,
                padding=padding,
                in_shape=count.in_shape,
                feature_map=count.out_shape,
                weights=count.weights,
                neurons=count.neurons,
                torchstat_flops=count.torchstat_flops,
                torchstat_madd=count.torchstat_madd,
                macs=count.macs,
                receptive_field=field.r,
                jump=field.j,
                start=field.start,
                whole_input=field.covers_whole_input(input_shape[1]),
            )
        )
    total = totals(counts)  # over ALL layers, ReLU included, like torchstat's total
    last = fields[-1]
    rows.append(
        Row("Total", "total", None, None, None, None, None, None, total["weights"], total["neurons"],
            total["torchstat_flops"], total["torchstat_madd"], total["macs"], last.r, last.j, last.start,
            last.covers_whole_input(input_shape[1]))
    )
    return rows


def table_errata(rows: Sequence[Row] | None = None) -> list[Erratum]:
    """The errata of the original table (only meaningful for the write-up's network)."""
    return find_errata(layer_table() if rows is None else rows)


def not_shown_flops(rows: Sequence[Row]) -> int:
    """torchstat FLOPs of the layers that are not rows (the ReLUs): Total minus the rows' sum."""
    total = next(r for r in rows if r.kind == "total")
    return total.torchstat_flops - sum(r.torchstat_flops for r in rows if r.kind not in ("input", "total"))


# ----------------------------------------------------------------------------- formatting

def _num(value: Optional[int]) -> str:
    return "-" if value is None else f"{value:,}"


def _nonzero(value: int) -> str:
    return "-" if value == 0 else f"{value:,}"


def _pair(left: Optional[int], right: Optional[int]) -> str:
    return f"{_num(left)} / {_num(right)}"


def _shape(shape: Optional[tuple[int, ...]], sep: str = "×") -> str:
    return "-" if shape is None else sep.join(str(s) for s in shape)


def _start(value: float) -> str:
    return f"{value:g}"


_MD_HEADER = (
    "Layer", "Filters / size", "Stride / padding", "Output (C×H×W)", "Weights", "Neurons",
    "FLOPs (torchstat)", "MAdd (torchstat)", "MACs", "Receptive field r", "Jump j", "Start",
)


def to_markdown(rows: Sequence[Row], errata: Sequence[Erratum] = ()) -> str:
    """A Markdown table, a note on the totals, then the errata list (if any)."""
    lines = ["| " + " | ".join(_MD_HEADER) + " |", "|" + "|".join(":---:" for _ in _MD_HEADER) + "|"]
    for row in rows:
        rf = f"{row.receptive_field}" + (" (whole image)" if row.whole_input else "")
        cells = (
            f"**{row.name}**", _pair(row.filters, row.filter_size), _pair(row.stride, row.padding),
            _shape(row.feature_map), _nonzero(row.weights), _nonzero(row.neurons),
            _nonzero(row.torchstat_flops), _nonzero(row.torchstat_madd), _nonzero(row.macs), rf, str(row.jump),
            _start(row.start),
        )
        lines.append("| " + " | ".join(cells) + " |")
    total = rows[-1]
    lines += [
        "",
        f"Totals: {total.weights:,} weights, {total.neurons:,} neurons, {total.torchstat_flops:,} torchstat FLOPs, "
        f"{total.torchstat_madd:,} torchstat MAdd, {total.macs:,} multiply-accumulates.",
        f"The Total row's FLOPs and MAdd include the ReLU layers, which are not rows "
        f"({not_shown_flops(rows):,} FLOPs), as torchstat's total does. Receptive field along one axis: "
        "r pixels, jump j between neighbouring units, start = input coordinate of the centre of unit 0's field.",
    ]
    if errata:
        lines += ["", "Errata of the original table (b):", ""]
        for number, item in enumerate(errata, start=1):
            lines.append(f"{number}. **{item.row}**, {item.column}: printed `{item.printed}`, "
                         f"correct `{item.correct}`: {item.reason}.")
    return "\n".join(lines) + "\n"


_FIELDS = tuple(Row.__dataclass_fields__)


def to_csv(rows: Sequence[Row]) -> str:
    """CSV with one line per row; shapes as ``CxHxW``, missing values empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_FIELDS)
    for row in rows:
        values = []
        for name in _FIELDS:
            value = getattr(row, name)
            if name in ("in_shape", "feature_map"):
                value = _shape(value, "x") if value is not None else ""
            values.append("" if value is None else value)
        writer.writerow(values)
    return buffer.getvalue()


def to_json(rows: Sequence[Row], errata: Sequence[Erratum] = ()) -> str:
    """JSON object: ``rows`` (one object per row), ``totals``, ``errata``, the original's totals."""
    total = rows[-1]
    document = {
        "rows": [asdict(row) for row in rows],
        "totals": {
            "weights": total.weights,
            "neurons": total.neurons,
            "torchstat_flops": total.torchstat_flops,
            "torchstat_madd": total.torchstat_madd,
            "macs": total.macs,
            "not_shown_relu_flops": not_shown_flops(rows),
        },
        "original_torchstat_totals": ORIGINAL_TORCHSTAT_TOTALS,
        "errata": [asdict(item) for item in errata],
    }
    return json.dumps(document, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table in the chosen format (``python -m reference.table --format md``)."""
    parser = argparse.ArgumentParser(prog="python -m reference.table", description=__doc__.split("\n")[0])
    parser.add_argument("--format", choices=("md", "csv", "json"), default="md", help="output format (default md)")
    args = parser.parse_args(argv)
    rows = layer_table()
    errata = table_errata(rows)
    if args.format == "md":
        text = to_markdown(rows, errata)
    elif args.format == "csv":
        text = to_csv(rows)
    else:
        text = to_json(rows, errata)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
