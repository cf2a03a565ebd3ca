"""The convolution lesson: its worked example, figures and exercise answers, computed by reference.conv."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lesson_kit import answer, code_of, draw_grid, matrices, tests_comparing  # noqa: F401  (used by the page)
from figure_kit import C, figure_svg, new_figure
from site_kit import fence, fmt, md_table, returns_printed

#: The worked example: a 4x4 input, one 2x2 filter, padding 1, stride 2 (small enough for paper).
X = np.array([[1, 2, 0, 1],
              [0, 1, 3, 1],
              [2, 0, 1, 2],
              [1, 1, 0, 3]], dtype=np.float64)
W = np.array([[1, -1],
              [2, 0]], dtype=np.float64)
B = 0.0
PADDING, STRIDE = 1, 2
#: The committed sample image shown in the im2col figure.
IMAGE = 2


@lru_cache(maxsize=None)
def worked(padding: int = PADDING, stride: int = STRIDE):
    """(output (H_out, W_out), dx, dw, db) of the worked example, upstream gradient all ones."""
    from reference.conv import conv2d_backward, conv2d_forward

    out, cache = conv2d_forward(X[None, None], W[None, None], np.array([B]), stride=stride, padding=padding)
    dx, dw, db = conv2d_backward(np.ones_like(out), cache)
    return out[0, 0], dx[0, 0], dw[0, 0], db


def worked_text() -> str:
    """The example's input, filter and output as grids."""
    out = worked()[0]
    return matrices(("x (4×4)", X), (f"w (2×2), b = {B:g}", W),
                    (f"y, padding {PADDING}, stride {STRIDE} ({out.shape[0]}×{out.shape[1]})", out))


def gradients_text() -> str:
    """The example's gradients for an all-ones upstream gradient, as grids."""
    _, dx, dw, db = worked()
    return matrices(("dL/dy", np.ones_like(worked()[0])), ("dL/dw", dw), (f"dL/dx (dL/db = {db[0]:g})", dx))


def one_output(i: int, j: int) -> str:
    """Output (i, j) of the worked example written out term by term, in plain text."""
    x_pad = np.pad(X, PADDING)
    k = W.shape[0]
    window = x_pad[i * STRIDE: i * STRIDE + k, j * STRIDE: j * STRIDE + k]
    terms = " + ".join(f"({w:g})·{x:g}" if w < 0 else f"{w:g}·{x:g}" for w, x in zip(W.ravel(), window.ravel()))
    return f"y[{i},{j}] = {terms} + {B:g} = {worked()[0][i, j]:g}"


@returns_printed
def worked_figure() -> None:
    """Padded input with one window, the filter, the output with the cell it makes."""
    i, j = 1, 1
    k = W.shape[0]
    out = worked()[0]
    x_pad = np.pad(X, PADDING)
    window = {(i * STRIDE + u, j * STRIDE + v) for u in range(k) for v in range(k)}
    fig, ax = new_figure(440, 232)
    draw_grid(ax, x_pad, (0, 0), window, pad=PADDING, title=f"input, padded by {PADDING}")
    draw_grid(ax, W, (7.4, -2), {(u, v) for u in range(k) for v in range(k)}, title="filter w")
    draw_grid(ax, out, (11.2, -1.5), {(i, j)}, title=f"output, stride {STRIDE}")
    arrow = dict(arrowstyle="->", color=C.fg, lw=1.5)
    ax.annotate("", xy=(7.2, -3), xytext=(x_pad.shape[1] + 0.2, -3), arrowprops=arrow)
    ax.annotate("", xy=(11.0, -3), xytext=(9.6, -3), arrowprops=arrow)
    ax.set_xlim(-0.1, 14.3)
    ax.set_ylim(-6.1, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.subplots_adjust(0, 0, 1, 1)
    print(figure_svg(fig, "a 2×2 filter on a zero-padded 4×4 input with stride 2"))


def size_rows() -> list[list]:
    """Conv1's output size for its own padding/stride and three variants, by reference.conv.conv2d_output_size."""
    from reference.architecture import INPUT_SHAPE, layer
    from reference.conv import conv2d_output_size

    L, H = layer("Conv1"), INPUT_SHAPE[1]
    variants = [(L.padding, L.stride, "Conv1 as built"), (1, 1, "'same' padding"), (0, 1, "no padding"),
                (L.padding, 2, "stride 2")]
    return [[p, s, f"⌊({H} + 2·{p} − {L.kernel}) / {s}⌋ + 1", conv2d_output_size(H, L.kernel, s, p), why]
            for p, s, why in variants]


@returns_printed
def size_table() -> None:
    print(md_table(["padding p", "stride s", "formula", "output size", ""], size_rows(), "rrlrl"))


@returns_printed
def padding_figure() -> None:
    """One row of Conv1's input, 1-D: padding cells, the first windows and the last one, for each variant of size_rows."""
    from matplotlib.patches import Patch, Rectangle

    from reference.architecture import INPUT_SHAPE, layer

    L, H = layer("Conv1"), INPUT_SHAPE[1]
    rows = size_rows()
    fig, ax = new_figure(480, 62 * len(rows) + 50)
    step = 4.4  # vertical space per variant, in cells
    for r, (p, s, _, n_out, why) in enumerate(rows):
        y = -r * step
        ax.text(-2, y + 1.25, f"p = {p}, s = {s}: {n_out} outputs ({why})", va="bottom")
        for c in range(-p, H + p):
            pad = c < 0 or c >= H
            ax.add_patch(Rectangle((c, y), 1, 1, facecolor=C.pad if pad else C.cell, edgecolor=C.fg, lw=0.3,
                                   hatch="////" if pad else None))
        starts = [(-p + m * s, C.orange) for m in range(3)] + [(-p + (n_out - 1) * s, C.green)]
        for level, (start, colour) in enumerate(starts):
            drop = 0.35 + 0.45 * (level if level < 3 else 0)
            ax.plot([start + 0.1, start + 0.1, start + L.kernel - 0.1, start + L.kernel - 0.1],
                    [y - drop + 0.25, y - drop, y - drop, y - drop + 0.25], color=colour, lw=2)
    ax.legend(handles=[Patch(facecolor=C.cell, edgecolor=C.fg, label="image pixel"),
                       Patch(facecolor=C.pad, edgecolor=C.fg, hatch="////", label="zero padding"),
                       Patch(color=C.orange, label="first three windows"), Patch(color=C.green, label="last window")],
              loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, borderaxespad=0.2, handletextpad=0.4, columnspacing=1)
    ax.set_xlim(-2.2, H + 2.2)
    ax.set_ylim(-step * (len(rows) - 1) - 1.9, 2.7)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.subplots_adjust(0, 0, 1, 1)
    print(figure_svg(fig, "one row of Conv1's input with padding and stride variants"))


@lru_cache(maxsize=None)
def im2col_sizes(batch: int = 512) -> dict:
    """Conv1's im2col matrix sizes, from reference.counts and the recipe's batch size."""
    from reference.architecture import layer
    from reference.counts import count_layers

    c = {x.layer.name: x for x in count_layers()}["Conv1"]
    C, F, k = c.in_shape[0], c.out_shape[0], layer("Conv1").kernel
    positions = c.out_shape[1] * c.out_shape[2]
    return {"C": C, "F": F, "k": k, "rows": C * k * k, "positions": positions, "batch": batch,
            "cols": batch * positions, "out_hw": c.out_shape[1:]}


@returns_printed
def im2col_table(batch: int) -> None:
    s = im2col_sizes(batch)
    rows = [["filters `w_rows`", f"F × C·k²", f"{s['F']} × {s['rows']}"],
            ["receptive fields `cols`", f"C·k² × N·H_out·W_out", f"{s['rows']} × {fmt(s['cols'])}"],
            ["product `w_rows @ cols`", f"F × N·H_out·W_out", f"{s['F']} × {fmt(s['cols'])}"]]
    print(md_table(["matrix", "shape", f"Conv1, batch N = {batch}"], rows, "lll"))


@returns_printed
def im2col_figure() -> None:
    """A real image, zero-padded as Conv1 pads it; one 3×3×3 receptive field becomes one column of 27 numbers."""
    from matplotlib.patches import Rectangle

    from data_pages import samples
    from reference.architecture import layer
    from reference.conv import _im2col

    L = layer("Conv1")
    p, k = L.padding, L.kernel
    image = samples()[0][IMAGE].astype(np.float64) / 255.0  # (32, 32, 3), a real CIFAR-10 image
    x_pad = np.pad(image.transpose(2, 0, 1), ((0, 0), (p, p), (p, p)))[None]  # (1, 3, 36, 36)
    out = im2col_sizes()["out_hw"]
    cols = _im2col(x_pad, k, k, (L.stride, L.stride), out)  # (27, 34*34)
    i, j = 10, 14  # the output position shown
    column = cols[:, i * out[1] + j]  # (27,)
    fig = new_figure(480, 520)[0]
    fig.clear()
    grid = fig.add_gridspec(2, 3, width_ratios=[1, 0.22, 0.55], height_ratios=[1, 0.95], hspace=0.45, wspace=0.1)
    a0, a1, a2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    a0.imshow(x_pad[0].transpose(1, 2, 0))
    a0.add_patch(Rectangle((j - 0.5, i - 0.5), k, k, fill=False, edgecolor=C.red, lw=2.5))
    a0.set_title(f"input, padded to {x_pad.shape[2]}×{x_pad.shape[3]};\nthe window of output ({i}, {j})")
    a0.axis("off")
    shade = dict(cmap="gray", vmin=0, vmax=1)
    a1.imshow(column[:, None], aspect="auto", **shade)
    for c, name in enumerate("RGB"):
        if c:
            a1.axhline(c * k * k - 0.5, color=C.red, lw=1.5)
        a1.text(1.3, c * k * k + (k * k - 1) / 2, name, va="center", transform=a1.get_yaxis_transform())
    a1.set_title(f"{len(column)} values")
    a1.set_xticks([])
    a1.set_yticks([])
    shown = a2.imshow(cols[:, i * out[1]: (i + 1) * out[1]], aspect="auto", **shade)
    a2.add_patch(Rectangle((j - 0.5, -0.5), 1, len(column), fill=False, edgecolor=C.red, lw=2))
    a2.set_title(f"cols for output row {i} ({out[1]} of its {fmt(cols.shape[1])} columns)")
    a2.set_xlabel("output column j")
    a2.set_ylabel("channel, u, v")
    a2.set_yticks([0, k * k, 2 * k * k], ["R", "G", "B"])
    bar = fig.colorbar(shown, ax=a2, orientation="vertical", fraction=0.05, pad=0.02)
    bar.set_label("value")
    bar.set_ticks([0, 0.5, 1])
    print(figure_svg(fig, "a receptive field of Conv1 laid out as a column of the im2col matrix"))


def exercise(key: str):
    """The answers of the exercises, computed by reference."""
    from reference.architecture import INPUT_SHAPE, layer
    from reference.conv import conv2d_output_size
    from reference.counts import count_layers

    c = {x.layer.name: x for x in count_layers()}
    if key == "conv1-size-p0":
        L = layer("Conv1")
        return conv2d_output_size(INPUT_SHAPE[1], L.kernel, L.stride, 0)
    if key == "conv3-macs":
        return c["Conv3"].macs
    if key == "conv2-params":
        return c["Conv2"].weights
    if key == "conv2-im2col":
        L, lc = layer("Conv2"), c["Conv2"]
        return f"{lc.in_shape[0] * L.kernel ** 2} × {fmt(512 * lc.out_shape[1] * lc.out_shape[2])}"
    if key == "worked-stride1":
        return worked(PADDING, 1)[0].shape[0]
    raise KeyError(key)


def show_answer(key: str) -> str:
    return answer(key, exercise(key))
