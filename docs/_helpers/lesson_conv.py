"""The convolution lesson: its worked example, figures and exercise answers, computed by reference.conv."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lesson_kit import answer, code_of, draw_grid, matrices, tests_comparing  # noqa: F401  (used by the page)
from site_kit import fence, figure_html, fmt, md_table, returns_printed

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
    import matplotlib.pyplot as plt

    i, j = 1, 1
    k = W.shape[0]
    out = worked()[0]
    x_pad = np.pad(X, PADDING)
    window = {(i * STRIDE + u, j * STRIDE + v) for u in range(k) for v in range(k)}
    fig, ax = plt.subplots(figsize=(8.4, 3.2))
    draw_grid(ax, x_pad, (0, 0), window, pad=PADDING, title=f"input, zero-padded by {PADDING}")
    draw_grid(ax, W, (7.5, -2), {(u, v) for u in range(k) for v in range(k)}, title="filter w")
    draw_grid(ax, out, (11, -1.5), {(i, j)}, title=f"output, stride {STRIDE}")
    ax.annotate("", xy=(7.3, -3), xytext=(x_pad.shape[1] + 0.2, -3), arrowprops=dict(arrowstyle="->"))
    ax.annotate("", xy=(10.8, -3), xytext=(9.7, -3), arrowprops=dict(arrowstyle="->"))
    ax.set_xlim(-0.3, 14.3)
    ax.set_ylim(-6.3, 1.2)
    ax.set_aspect("equal")
    ax.axis("off")
    print(figure_html(fig, "a 2×2 filter on a zero-padded 4×4 input with stride 2"))


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
    """One row of Conv1's input, 1-D: padding cells, the first and last window, for each variant of size_rows."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from reference.architecture import INPUT_SHAPE, layer

    L, H = layer("Conv1"), INPUT_SHAPE[1]
    rows = size_rows()
    fig, ax = plt.subplots(figsize=(10, 0.9 * len(rows) + 0.4))
    for r, (p, s, _, n_out, why) in enumerate(rows):
        y = -r * 1.6
        for c in range(-p, H + p):
            pad = c < 0 or c >= H
            ax.add_patch(Rectangle((c, y), 1, 1, facecolor="#eeeeee" if pad else "#e8eefc", edgecolor="#9fa8da",
                                   lw=0.4))
        for start, colour in ((-p, "#e65100"), (-p + (n_out - 1) * s, "#2e7d32")):
            ax.add_patch(Rectangle((start, y - 0.08), L.kernel, 1.16, fill=False, edgecolor=colour, lw=2))
        ax.text(H + 3.5, y + 0.5, f"p = {p}, s = {s}: {n_out} outputs ({why})", va="center", fontsize=9)
    ax.set_xlim(-3, H + 24)
    ax.set_ylim(-1.6 * len(rows) + 1.2, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    print(figure_html(fig, "one row of Conv1's input with padding and stride variants"))


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
    import matplotlib.pyplot as plt
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
    fig, (a0, a1, a2) = plt.subplots(1, 3, figsize=(10, 3.8), gridspec_kw={"width_ratios": [3, 1.1, 3]})
    a0.imshow(x_pad[0].transpose(1, 2, 0), interpolation="nearest")
    a0.add_patch(Rectangle((j - 0.5, i - 0.5), k, k, fill=False, edgecolor="#ff1744", lw=2))
    a0.set_title(f"input, padded to {x_pad.shape[2]}×{x_pad.shape[3]}; window of output ({i}, {j})", fontsize=9)
    a0.axis("off")
    a1.imshow(column[:, None], cmap="gray", vmin=0, vmax=1, aspect=0.35, interpolation="nearest")
    for c, name in enumerate("RGB"):
        a1.axhline(c * k * k - 0.5, color="#ff1744", lw=1)
        a1.text(1.0, c * k * k + (k * k - 1) / 2, name, va="center", fontsize=9)
    a1.set_title(f"column: {len(column)} values", fontsize=9)
    a1.set_xticks([])
    a1.set_yticks([0, k * k, 2 * k * k])
    a2.imshow(cols[:, i * out[1]: (i + 1) * out[1]], cmap="gray", vmin=0, vmax=1, aspect="auto",
               interpolation="nearest")
    a2.add_patch(Rectangle((j - 0.5, -0.5), 1, len(column), fill=False, edgecolor="#ff1744", lw=1.5))
    a2.set_title(f"cols: {cols.shape[0]} × {fmt(cols.shape[1])} per image; output row {i} shown", fontsize=9)
    a2.set_xlabel(f"output column j (position {i}·{out[1]} + j)")
    a2.set_ylabel("(channel, u, v)")
    fig.tight_layout()
    print(figure_html(fig, "a receptive field of Conv1 laid out as a column of the im2col matrix"))


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
