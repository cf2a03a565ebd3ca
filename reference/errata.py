"""What the original write-up's layer table printed, and where and why it is wrong.

The "printed" side is :data:`ORIGINAL_TABLE_MARKDOWN`: table (b) of the 2020 write-up,
copied character for character from ``../shared/original/000_e87e2e1067e7d35c.txt`` (the
write-up lives outside this repository, so it is transcribed here as data). Nothing in
it is computed; :func:`parse_original_table` only reads it.

The "correct" side is the table derived from the layer list by :mod:`reference.table`.
:func:`find_errata` compares the two cell by cell and also checks the printed table
against itself (is the Total row the sum of the rows above it?). Each difference becomes
an :class:`Erratum` with an explanation. The explanations are written per *kind* of
mistake; which cells are affected is found by the comparison, not listed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

__all__ = [
    "ORIGINAL_TABLE_MARKDOWN",
    "ORIGINAL_TORCHSTAT_TOTALS",
    "OriginalRow",
    "Erratum",
    "parse_original_table",
    "find_errata",
]

#: Table (b) of the original write-up, verbatim (LaTeX and Markdown markup included).
#: Source: ../shared/original/000_e87e2e1067e7d35c.txt, section "Network 구조".
ORIGINAL_TABLE_MARKDOWN = r"""
| Layer | # of Filter / Filter Size | Stride / Zero Padding | Feature Map Size | # of Weights | # of Neurons | # of Conv Ops<br>(FLOPS) | Receptive Field | 
|:------:|:------:|:------:|:------:|:----------------:|:------:|:------:|:-----:|
| **Input** | - / - | - / - | $32\times32\times3$ | - | - | - | - |
| **Conv1** | $64$ / $3$ | $1$ / $2$ | $34\times34\times64$ | $1,792$ | $73,984$ | $2,071,552.0$ | $3$ |
| **BN1** | - / - | - / - | $34\times34\times64$ | $128$| - | $147,968.0$ | - |
| **Pool1** | - / $2$ | $2$ / - | $17\times17\times64$ | - | - | $73,984.0$ | - |
| **Conv2** | $192$ / $3$ | $1$ / $2$ | $19\times19\times192$ | $110,784$ | $69,312$ | $39,993,024.0$ | $5$ |
| **BN2** | - / - | - / - | $19\times19\times192$ | $384$ | - | $138,624.0$ | - |
| **Pool2** | - / $2$ | $2$ / - | $9\times9\times192$ | - | - | $69,312.0$ | - |
| **Conv3** | $384$ / $3$ | $1$ / $1$ | $9\times9\times384$ | $663,936$ | $31,104$ | $53,778,816.0$ | $7$ |
| **BN3** | - / - | - / - | $9\times9\times384$ | $768$ | - | $62,208.0$ | - |
| **Conv4** | $256$ / $3$ | $1$ / $1$ | $9\times9\times256$ | $884,992$ | $20,736$ | $71,684,352.0$ | $9$ |
| **BN4** | - / - | - / - | $9\times9\times256$ | $512$ | - | $41,472.0$ | - |
| **Conv5** | $256$ / $3$ | $1$ / $1$ | $9\times9\times256$ | $590,080$ | $20,736$ | $47,796,480.0$ | $11$ |
| **BN5** | - / - | - / - | $9\times9\times256$ | $512$ | - | $41,472.0$ | - |
| **Pool3** | - / $3$ | $3$ / - | $4\times4\times256$ | - | - | $20,736.0$ | - |
| **FC1** | - / - | - / - | $1\times2048$ | $8,390,656$ | $2,048$ | $8,388,608.0$ | - |
| **BN6** | - / - | - / - | $1\times2048$ | $4096$ | - | - | - |
| **FC2** | - / - | - / - | $1\times2048$ | $4,196,352$ | $2,048$ | $4,194,304.0$ | - |
| **BN7** | - / - | - / - | $1\times2048$ | $4096$ | - | - | - |
| **FC3** | - / - | - / - | $1\times10$ | $20,490$ | $10$ | $20,480.0$ | - |
| **BN8** | - / - | - / - | $1\times10$ | $20$ | - | - | - |
| **Total** |  - / - |  - / - |  - / - | $14,869,598$ | $219,978$ | $228,743,360.0$ | $11$ |
"""

#: The totals of the torchstat output printed just above table (b) in the write-up
#: (``stat(net, (3, 32, 32))``), transcribed: Total params, Total MAdd, Total Flops.
ORIGINAL_TORCHSTAT_TOTALS = {"weights": 14_869_598, "torchstat_madd": 456_637_750, "torchstat_flops": 228_743_360}


@dataclass(frozen=True)
class OriginalRow:
    """One row of the printed table, with the markup removed and numbers parsed.

    ``None`` stands for a printed "-". Shapes are ``(C, H, W)`` or ``(F,)`` like the rest
    of :mod:`reference` (the write-up prints ``H x W x C`` and ``1 x F``).
    """

    name: str
    cells: tuple[str, ...]  # the 8 cells as printed, markup removed
    filters: Optional[int]
    filter_size: Optional[int]
    stride: Optional[int]
    padding: Optional[int]
    feature_map: Optional[tuple[int, ...]]
    weights: Optional[int]
    neurons: Optional[int]
    flops: Optional[int]
    receptive_field: Optional[int]


@dataclass(frozen=True)
class Erratum:
    """One cell (or the header) of the printed table that is wrong or misleading."""

    row: str
    column: str
    printed: str
    correct: str
    reason: str


def _clean(cell: str) -> str:
    return cell.replace("$", "").replace("**", "").replace("\\times", "x").strip()


def _number(text: str) -> Optional[int]:
    text = text.strip()
    if text in ("-", ""):
        return None
    value = float(text.replace(",", ""))
    if value != int(value):
        raise ValueError(f"original table: expected a whole number, got {text!r}")
    return int(value)


def _pair(text: str) -> tuple[Optional[int], Optional[int]]:
    left, right = text.split("/")
    return _number(left), _number(right)


def _feature_map(text: str) -> Optional[tuple[int, ...]]:
    if text.strip() in ("-", "- / -"):
        return None
    dims = [int(d) for d in text.split("x")]
    if len(dims) == 3:  # printed H x W x C
        height, width, channels = dims
        return (channels, height, width)
    if len(dims) == 2 and dims[0] == 1:  # printed 1 x F
        return (dims[1],)
    raise ValueError(f"original table: cannot read feature map size {text!r}")


def parse_original_table(markdown: str = ORIGINAL_TABLE_MARKDOWN) -> list[OriginalRow]:
    """Read the printed table into :class:`OriginalRow` objects (header and rule skipped)."""
    rows = []
    lines = [line for line in markdown.strip().splitlines() if line.strip().startswith("|")]
    for line in lines[2:]:
        cells = tuple(_clean(c) for c in line.strip().strip("|").split("|"))
        if len(cells) != 8:
            raise ValueError(f"original table: expected 8 cells, got {len(cells)} in {line!r}")
        name = cells[0]
        filters, filter_size = _pair(cells[1])
        stride_value, padding = _pair(cells[2])
        rows.append(
            OriginalRow(
                name=name,
                cells=cells[1:],
                filters=filters,
                filter_size=filter_size,
                stride=stride_value,
                padding=padding,
                feature_map=_feature_map(cells[3]),
                weights=_number(cells[4]),
                neurons=_number(cells[5]),
                flops=_number(cells[6]),
                receptive_field=_number(cells[7]),
            )
        )
    return rows


# Column names as printed, for the report.
_COLUMNS = {
    "filters": "# of Filter / Filter Size",
    "stride": "Stride / Zero Padding",
    "feature_map": "Feature Map Size",
    "weights": "# of Weights",
    "neurons": "# of Neurons",
    "flops": "# of Conv Ops (FLOPS)",
    "receptive_field": "Receptive Field",
}
# Position of each column in OriginalRow.cells.
_CELL_INDEX = {name: index for index, name in enumerate(_COLUMNS)}


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _receptive_field_reason(row) -> str:
    if row.kind == "total":
        return (
            "the Total row takes the largest printed value; the network's output sees the whole "
            f"image: FC1 connects every position of Pool3's output, a span of {row.receptive_field} pixels "
            "(more than the 32-pixel image)"
        )
    return (
        "the printed value adds k-1 = 2 pixels per 3x3 convolution and ignores the strides; after a "
        f"stride-2 pooling each convolution widens the field by 2*j input pixels (jump j = {row.jump} "
        "here), and the pooling windows widen it as well"
    )


def find_errata(rows: Sequence, original: Iterable[OriginalRow] | None = None) -> list[Erratum]:
    """Compare the printed table with the derived one, cell by cell.

    Args:
        rows: the derived table, :func:`reference.table.layer_table` (objects with the
            attributes of :class:`reference.table.Row`).
        original: the printed table; default :func:`parse_original_table`.

    Returns:
        The errata in table order (header first), then checks of the printed Total row
        against the printed rows.
    """
    original = list(parse_original_table() if original is None else original)
    by_name = {row.name: row for row in rows}
    errata: list[Erratum] = [
        Erratum(
            row="(header)",
            column=_COLUMNS["flops"],
            printed="# of Conv Ops (FLOPS)",
            correct="torchstat 'Flops' (multiply-accumulates, plus bias adds, per layer)",
            reason=(
                "the column is torchstat's 'Flops', which counts one per multiply-accumulate; the floating-point "
                "operations (a multiply and an add each) are torchstat's 'MAdd', about twice as many "
                "(456,637,750 in total). It also covers BatchNorm and pooling, not only convolutions"
            ),
        )
    ]
    for printed in original:
        if printed.name not in by_name:
            raise ValueError(f"original table row {printed.name!r} has no derived counterpart")
        row = by_name[printed.name]
        is_total = row.kind == "total"

        if not is_total and printed.filter_size is not None and (printed.filters, printed.filter_size) != (
            row.filters, row.filter_size
        ):
            errata.append(Erratum(row.name, _COLUMNS["filters"], printed.cells[0],
                                  f"{_fmt(row.filters)} / {_fmt(row.filter_size)}",
                                  "differs from the layer definition in the code"))

        if not is_total and printed.stride is not None:
            printed_padding = printed.padding or 0  # the table writes "-" for no padding
            if (printed.stride, printed_padding) != (row.stride, row.padding or 0):
                reason = "differs from the layer definition in the code"
                if row.kind == "maxpool" and printed.stride != row.stride:
                    reason = (
                        f"the code says nn.MaxPool2d(kernel_size={row.filter_size}, stride={row.stride}); the table's "
                        "own feature map size agrees with the code: with stride "
                        f"{printed.stride} the output would be {(row.in_shape[1] - row.filter_size) // printed.stride + 1}"
                        f"x{(row.in_shape[1] - row.filter_size) // printed.stride + 1}, not "
                        f"{row.feature_map[1]}x{row.feature_map[2]}"
                    )
                errata.append(Erratum(row.name, _COLUMNS["stride"], printed.cells[1],
                                      f"{_fmt(row.stride)} / {_fmt(row.padding or 0)}", reason))

        if printed.feature_map is not None and not is_total and printed.feature_map != row.feature_map:
            errata.append(Erratum(row.name, _COLUMNS["feature_map"], printed.cells[2], str(row.feature_map),
                                  "differs from the shape the layer list produces"))

        for column in ("weights", "neurons"):
            value = getattr(printed, column) or 0
            if value != getattr(row, column):
                errata.append(Erratum(row.name, _COLUMNS[column], printed.cells[_CELL_INDEX[column]],
                                      _fmt(getattr(row, column)), "differs from the count derived from the layer list"))

        printed_flops = printed.flops or 0
        if not is_total and printed_flops != row.torchstat_flops:
            errata.append(Erratum(row.name, _COLUMNS["flops"], printed.cells[5], _fmt(row.torchstat_flops),
                                  "differs from torchstat's rule for this layer"))
        if row.kind == "bn1d" and printed.flops is None:
            errata.append(Erratum(
                row.name, _COLUMNS["flops"], printed.cells[5],
                f"0 in torchstat's count; {_fmt(2 * row.feature_map[0])} by its BatchNorm2d rule",
                "torchstat has no rule for BatchNorm1d and counts it as 0 (the output prints 0.0), so the '-' reads "
                "as 'no work'; normalising, scaling and shifting costs 2 per element by the rule torchstat "
                "applies to BatchNorm2d",
            ))

        if printed.receptive_field is not None and printed.receptive_field != row.receptive_field:
            errata.append(Erratum(row.name, _COLUMNS["receptive_field"], printed.cells[6],
                                  _fmt(row.receptive_field), _receptive_field_reason(row)))
        elif printed.receptive_field is None and row.kind == "maxpool":
            errata.append(Erratum(row.name, _COLUMNS["receptive_field"], printed.cells[6], _fmt(row.receptive_field),
                                  "left blank, but pooling widens the receptive field too ((k-1)*j pixels) and "
                                  "multiplies the jump by its stride"))

    # The printed Total row against the printed rows above it.
    layer_rows = [p for p in original if p.name not in ("Input", "Total")]
    printed_total_row = next(p for p in original if p.name == "Total")
    derived_total = by_name["Total"]
    # FLOPs of layers that are not rows of the table (the ReLUs; dropout and flatten count 0).
    not_shown = derived_total.torchstat_flops - sum(r.torchstat_flops for r in rows if r.kind not in ("input", "total"))
    for column in ("weights", "neurons", "flops"):
        column_sum = sum(getattr(p, column) or 0 for p in layer_rows)
        printed_total = getattr(printed_total_row, column)
        if printed_total == column_sum:
            continue
        reason = f"the Total is not the sum of the rows above it ({_fmt(column_sum)})"
        if column == "flops" and printed_total - column_sum == not_shown:
            reason += (
                f"; the difference, {_fmt(not_shown)}, is the FLOPs of the ReLU layers: the Total is torchstat's "
                "total, which counts the ReLUs, but the table has no ReLU rows"
            )
        errata.append(Erratum("Total", _COLUMNS[column], printed_total_row.cells[_CELL_INDEX[column]],
                              f"{_fmt(column_sum)} without ReLU, {_fmt(printed_total)} with ReLU", reason))
    return errata
