"""The max-pool lesson: worked example, gradient routing, floor mode, computed by reference.pool."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lesson_kit import code_of, draw_grid, matrices, tests_comparing  # noqa: F401  (used by the page)
from figure_kit import C, figure_svg, new_figure
from site_kit import fence, returns_printed

#: The worked example: a 4x4 input, 2x2 windows, stride 2.
X = np.array([[1, 3, 2, 0],
              [4, 2, 1, 5],
              [0, 1, 3, 3],
              [2, 6, 1, 0]], dtype=np.float64)
#: Its upstream gradient, one value per output.
DOUT = np.array([[10, 20],
                 [30, 40]], dtype=np.float64)
KERNEL = STRIDE = 2


@lru_cache(maxsize=None)
def worked():
    """(output, dx) of the worked example."""
    from reference.pool import maxpool2d_backward, maxpool2d_forward

    out, cache = maxpool2d_forward(X[None, None], KERNEL, STRIDE)
    dx = maxpool2d_backward(DOUT[None, None], cache)
    return out[0, 0], dx[0, 0]


def worked_text() -> str:
    out, dx = worked()
    return matrices(("x (4×4)", X), ("y = maxpool(x), 2×2, stride 2", out), ("dL/dy", DOUT), ("dL/dx", dx))


@returns_printed
def routing_figure() -> None:
    """Input with each window's maximum marked, output, upstream gradient, and where it lands."""
    out, dx = worked()
    winners = {(r, c) for r in range(4) for c in range(4) if dx[r, c] != 0}
    fig, ax = new_figure(470, 190)
    draw_grid(ax, X, (0, 0), winners, title="x")
    for t in (2,):
        ax.plot([t, t], [0, -4], color=C.fg, lw=3)
        ax.plot([0, 4], [-t, -t], color=C.fg, lw=3)
    draw_grid(ax, out, (5.2, -1), {(0, 0), (0, 1), (1, 0), (1, 1)}, title="y")
    draw_grid(ax, DOUT, (8.6, -1), (), colour=C.hi2, title="dL/dy")
    draw_grid(ax, dx, (12.0, 0), winners, title="dL/dx")
    arrow = dict(arrowstyle="->", color=C.fg, lw=1.5)
    ax.annotate("", xy=(5.0, -2), xytext=(4.2, -2), arrowprops=arrow)
    ax.annotate("", xy=(11.8, -2), xytext=(10.8, -2), arrowprops=arrow)
    ax.text(4.6, -4.0, "forward", ha="center", va="top")
    ax.text(11.3, -4.0, "backward", ha="center", va="top")
    ax.set_xlim(-0.1, 16.1)
    ax.set_ylim(-4.9, 1.1)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.subplots_adjust(0, 0, 1, 1)
    print(figure_svg(fig, "max-pool forward and backward on a 4×4 example"))


@returns_printed
def floor_figure() -> None:
    """Pool2's 2×2/2 windows on Conv2's odd-sized map, and Pool3's overlapping 3×3/2 windows on 9×9."""
    from matplotlib.patches import Rectangle

    from reference.architecture import layer
    from reference.counts import count_layers

    c = {x.layer.name: x for x in count_layers()}
    fig, axes = new_figure(470, 290, ncols=2, gridspec_kw={"width_ratios": [1, 1]})
    for ax, name in zip(axes, ("Pool2", "Pool3")):
        L, lc = layer(name), c[name]
        size, n_out = lc.in_shape[1], lc.out_shape[1]
        covered = (n_out - 1) * L.stride + L.kernel
        for r in range(size):
            for col in range(size):
                unused = r >= covered or col >= covered
                ax.add_patch(Rectangle((col, -r - 1), 1, 1, facecolor=C.off if unused else C.cell,
                                       edgecolor=C.fg, lw=0.3))
        colours = [C.orange, C.green, C.purple]
        for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0)] if name == "Pool3" else [(0, 0), (n_out - 1, n_out - 1)]):
            inset = 0.08 * k
            ax.add_patch(Rectangle((j * L.stride + inset, -(i * L.stride) - L.kernel + inset), L.kernel - 2 * inset,
                                   L.kernel - 2 * inset, fill=False, edgecolor=colours[k], lw=2.5))
        ax.set_title(f"{name}: {L.kernel}×{L.kernel}, stride {L.stride}\n{size}×{size} → {n_out}×{n_out}")
        ax.set_xlim(-0.3, size + 0.3)
        ax.set_ylim(-size - 0.3, 0.3)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.subplots_adjust(0, 0, 1, 0.86, wspace=0.12)
    print(figure_svg(fig, "floor mode on Pool2 and overlapping windows on Pool3"))
