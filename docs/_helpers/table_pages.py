"""The layer table computed by reference.table beside the write-up's printed table and its errata."""

from __future__ import annotations

from network_pages import counts  # noqa: F401  (used by the errata page)
from site_kit import fmt, md_table, returns_printed, shape_text  # noqa: F401


def errata_list():
    """(rows of reference.table.layer_table, errata of the original table)."""
    from reference.table import layer_table, table_errata

    rows = layer_table()
    return rows, table_errata(rows)


@returns_printed
def derived_table() -> None:
    """The layer table as :func:`reference.table.to_markdown` formats it, in a div the tests find."""
    from reference.table import to_markdown

    import re

    rows, _ = errata_list()
    text = to_markdown(rows)  # the table, then the notes on totals
    # After a linear layer every output depends on every pixel: the recurrence's r (larger than the
    # padded image) is not a size anyone could see, so the cell says what is true.
    text = re.sub(r"\| \d+ \(whole image\) \|", "| whole image |", text)
    print('<div id="derived-table" markdown>\n')
    print(text)
    print("\n</div>")


@returns_printed
def comparison_table() -> None:
    """The printed table, cell for cell, with every cell that differs marked and numbered."""
    import html

    from reference.errata import parse_original_table

    rows, errata = errata_list()
    columns = ["Filter / size", "Stride / padding", "Feature map", "Weights", "Neurons", "FLOPs", "Receptive field"]
    # the printed columns in the order of OriginalRow.cells, matched by the names errata use
    from reference import errata as errata_module

    printed_names = list(errata_module._COLUMNS.values()) if hasattr(errata_module, "_COLUMNS") else []
    marks: dict[tuple[str, str], list[int]] = {}
    for number, item in enumerate(errata, start=1):
        marks.setdefault((item.row, item.column), []).append(number)
    header_notes = [n for (row, col), ns in marks.items() if row == "(header)" for n in ns]
    head = [f"{c}" for c in columns]
    if header_notes:
        flops_index = columns.index("FLOPs")
        head[flops_index] += "".join(f' <sup>[{n}](#erratum-{n})</sup>' for n in header_notes)
    out_rows = []
    for printed in parse_original_table():
        cells = []
        for index, cell in enumerate(printed.cells):
            column = printed_names[index] if index < len(printed_names) else ""
            notes = marks.get((printed.name, column), [])
            text = html.escape(cell)
            if notes:
                refs = "".join(f"<sup>[{n}](#erratum-{n})</sup>" for n in notes)
                text = f'<span class="erratum">{text}</span>{refs}'
            cells.append(text)
        out_rows.append([f"**{printed.name}**"] + cells)
    print(md_table(["Layer"] + head, out_rows, "l" + "c" * len(columns)))


@returns_printed
def errata_items() -> None:
    """The numbered errata: printed, correct, why."""
    _, errata = errata_list()
    for number, item in enumerate(errata, start=1):
        print(f'{number}. <a id="erratum-{number}"></a>**{item.row}**, *{item.column}*: printed `{item.printed}`, '
              f"correct **{item.correct}** — {item.reason}.")


# --------------------------------------------------------------------------------------
# receptive fields measured with autograd
# --------------------------------------------------------------------------------------
