"""The convolution lesson: its worked example, figures and exercise answers, computed by reference.conv."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lesson_kit import code_of, draw_grid, matrices, tests_comparing  # noqa: F401  (used by the page)
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


# ----------------------------------------------------------------------------- from one filter to a layer

#: A 3-channel 3×3 input and one 3-channel 2×2 filter (no padding, stride 1): one 2×2 map.
X3 = np.array([[[1, 0, 2], [0, 1, 1], [2, 1, 0]],    # R
               [[0, 2, 1], [1, 0, 0], [1, 1, 2]],    # G
               [[1, 1, 0], [2, 0, 1], [0, 1, 1]]], dtype=np.float64)  # B
W3 = np.array([[[1, 0], [0, -1]],
               [[0, 1], [1, 0]],
               [[-1, 0], [0, 1]]], dtype=np.float64)
#: A second filter: with W3 a bank of two, which makes a stack of two maps.
W3_SECOND = np.array([[[1, 1], [0, 0]],
                      [[0, 0], [0, 0]],
                      [[0, 0], [1, 1]]], dtype=np.float64)


@lru_cache(maxsize=None)
def channel_example():
    """(per-channel maps, their sum = the filter's map, both filters' maps), by reference.conv.conv2d_forward."""
    from reference.conv import conv2d_forward

    per_channel = [conv2d_forward(X3[None, c: c + 1], W3[None, c: c + 1], np.zeros(1))[0][0, 0] for c in range(3)]
    bank = np.stack([W3, W3_SECOND])  # (F, C, k, k) = (2, 3, 2, 2)
    maps = conv2d_forward(X3[None], bank, np.zeros(2))[0][0]  # (2, 2, 2)
    return per_channel, maps


def channel_text() -> str:
    """The 3-channel example: each channel with its slice of the filter, what each contributes, and the sum."""
    per_channel, maps = channel_example()
    names = "RGB"
    rows = [matrices((f"x, channel {names[c]}", X3[c]), (f"w, slice {names[c]}", W3[c]),
                     (f"contribution of {names[c]}", per_channel[c])) for c in range(3)]
    return ("\n\n".join(rows) + "\n\n"
            + matrices(("sum of the three = the filter's map", sum(per_channel)),
                       ("second filter's map", maps[1])))


def conv1_numbers() -> dict:
    """Conv1's sizes for the prose: input and output shapes, filter count and size, weights per filter."""
    from reference.architecture import INPUT_SHAPE, layer
    from reference.counts import count_layers

    L, c = layer("Conv1"), {x.layer.name: x for x in count_layers()}["Conv1"]
    return {"C": INPUT_SHAPE[0], "H": INPUT_SHAPE[1], "F": c.out_shape[0], "k": L.kernel,
            "H_out": c.out_shape[1], "per_filter": INPUT_SHAPE[0] * L.kernel ** 2}


@returns_printed
def bank_figure() -> None:
    """Conv1 as a picture: a 3-channel input, one 3×3×3 filter making one map, a bank of F filters making F maps."""
    from matplotlib.patches import Polygon, Rectangle

    n = conv1_numbers()

    def slab(ax, x, y, size, depth, colour, label=None, step=0.9):
        """``depth`` squares of side ``size`` stacked back to front, offset diagonally."""
        for d in reversed(range(depth)):
            ax.add_patch(Rectangle((x + d * step, y + d * step), size, size, facecolor=colour, edgecolor=C.fg, lw=1))
        if label:
            ax.text(x + size / 2 + (depth - 1) * step / 2, y - 1.2, label, ha="center", va="top")

    fig, ax = new_figure(470, 300)
    slab(ax, 0, 6, 9, 3, C.cell, f"input {n['C']}×{n['H']}×{n['H']}")
    slab(ax, 3.0, 10.2, 2.2, 3, C.hi, step=0.45)  # the filter on the input
    ax.text(5.3, 17.6, f"one filter {n['C']}×{n['k']}×{n['k']}", ha="center", va="bottom")
    ax.add_patch(Polygon([[5.2, 12.4], [17, 11.2], [17, 10.8]], closed=True, facecolor=C.hi, alpha=0.5, lw=0))
    ax.add_patch(Rectangle((16, 6), 9, 9, facecolor=C.cell, edgecolor=C.fg, lw=1))
    ax.add_patch(Rectangle((16.8, 10.6), 0.8, 0.8, facecolor=C.hi, edgecolor=C.fg, lw=1))
    ax.text(20.5, 4.8, f"one map {n['H_out']}×{n['H_out']}", ha="center", va="top")
    ax.annotate("", xy=(31, 10.5), xytext=(26.5, 10.5), arrowprops=dict(arrowstyle="->", color=C.fg, lw=1.5))
    ax.text(28.8, 11.5, f"{n['F']} filters", ha="center", va="bottom")
    slab(ax, 32, 4, 9, 8, C.cell, step=0.8)
    ax.text(39.3, 2.8, f"{n['F']} maps: {n['F']}×{n['H_out']}×{n['H_out']}", ha="center", va="top")
    ax.set_xlim(-0.5, 47.5)
    ax.set_ylim(0, 19)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.subplots_adjust(0, 0, 1, 1)
    print(figure_svg(fig, "one filter over all input channels makes one feature map; a bank of filters makes a stack"))


#: A hand-made vertical-edge detector (Sobel), the same 3×3 slice for each of the three channels,
#: and its transpose for horizontal edges: a bank of two filters.
SOBEL = np.array([[1, 0, -1],
                  [2, 0, -2],
                  [1, 0, -1]], dtype=np.float64)
EDGE_IMAGE = 18  # the committed sample shown (a truck: long straight edges)


@lru_cache(maxsize=None)
def edge_maps():
    """(image (32, 32, 3) in [0, 1], maps (2, 32, 32)) of the two-filter edge bank, by reference.conv.conv2d_forward."""
    from data_pages import samples
    from reference.conv import conv2d_forward

    image = samples()[0][EDGE_IMAGE].astype(np.float64) / 255.0
    bank = np.stack([np.stack([SOBEL] * 3), np.stack([SOBEL.T] * 3)]) / 3  # (2, 3, 3, 3): average of the channels
    maps = conv2d_forward(image.transpose(2, 0, 1)[None], bank, np.zeros(2), stride=1, padding=1)[0][0]
    return image, maps


def edge_filter_text() -> str:
    return matrices(("filter 1, each channel's slice (× 1/3)", SOBEL), ("filter 2, each slice (× 1/3)", SOBEL.T))


@returns_printed
def edge_figure() -> None:
    """A CIFAR image and the two feature maps of the edge-detector bank, on one colour scale."""
    from data_pages import samples

    image, maps = edge_maps()
    limit = float(np.abs(maps).max())
    fig, axes = new_figure(470, 230, ncols=3)
    axes[0].imshow(image)
    axes[0].set_title(f"input: a {samples()[2][samples()[1][EDGE_IMAGE]]}")
    for ax, m, title in zip(axes[1:], maps, ("filter 1:\nvertical edges", "filter 2:\nhorizontal edges")):
        shown = ax.imshow(m, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(title)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.subplots_adjust(0, 0.2, 1, 0.82, wspace=0.08)
    bar = fig.colorbar(shown, cax=fig.add_axes([0.36, 0.1, 0.6, 0.05]), orientation="horizontal")
    bar.set_label("value of the feature map")
    print(figure_svg(fig, "a hand-made edge detector applied to a CIFAR-10 image, and its two feature maps"))


def dense_comparison() -> str:
    """How many weights a fully connected layer from Conv1's input to its output would need, against Conv1's."""
    from reference.counts import count_layers

    c = {x.layer.name: x for x in count_layers()}["Conv1"]
    n_in, n_out = int(np.prod(c.in_shape)), int(np.prod(c.out_shape))
    dense = n_in * n_out + n_out  # a weight per (input, output) pair and a bias per output
    ratio = dense / c.weights
    return (f"a weight for every pair of its {fmt(n_in)} input and {fmt(n_out)} output values: "
            f"{fmt(dense)} weights and biases against Conv1's {fmt(c.weights)}, about "
            f"{fmt(round(ratio, -3))} times as many")


# ----------------------------------------------------------------------------- padding and stride


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
