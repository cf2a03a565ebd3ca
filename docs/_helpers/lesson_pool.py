"""The max-pool lesson: worked example, gradient routing, floor mode, computed by reference.pool."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lesson_kit import answer, code_of, draw_grid, matrices, tests_comparing  # noqa: F401  (used by the page)
from site_kit import fence, figure_html, fmt, returns_printed

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
    import matplotlib.pyplot as plt

    out, dx = worked()
    winners = {(r, c) for r in range(4) for c in range(4) if dx[r, c] != 0}
    fig, ax = plt.subplots(figsize=(10, 2.9))
    draw_grid(ax, X, (0, 0), winners, title="x: maxima of the 2×2 windows")
    for t in (2,):
        ax.plot([t, t], [0, -4], color="#1a237e", lw=2.5)
        ax.plot([0, 4], [-t, -t], color="#1a237e", lw=2.5)
    draw_grid(ax, out, (5.3, -1), {(0, 0), (0, 1), (1, 0), (1, 1)}, title="y")
    draw_grid(ax, DOUT, (8.6, -1), (), colour="#c8e6c9", title="dL/dy")
    draw_grid(ax, dx, (11.9, 0), winners, title="dL/dx")
    ax.annotate("", xy=(5.1, -2), xytext=(4.2, -2), arrowprops=dict(arrowstyle="->"))
    ax.annotate("", xy=(11.7, -2), xytext=(10.8, -2), arrowprops=dict(arrowstyle="->"))
    ax.set_xlim(-0.3, 16.2)
    ax.set_ylim(-4.3, 1.0)
    ax.set_aspect("equal")
    ax.axis("off")
    print(figure_html(fig, "max-pool forward and backward on a 4×4 example"))


@returns_printed
def floor_figure() -> None:
    """Pool2's 2×2/2 windows on Conv2's odd-sized map, and Pool3's overlapping 3×3/2 windows on 9×9."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from reference.architecture import layer
    from reference.counts import count_layers

    c = {x.layer.name: x for x in count_layers()}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, name in zip(axes, ("Pool2", "Pool3")):
        L, lc = layer(name), c[name]
        size, n_out = lc.in_shape[1], lc.out_shape[1]
        covered = (n_out - 1) * L.stride + L.kernel
        for r in range(size):
            for col in range(size):
                unused = r >= covered or col >= covered
                ax.add_patch(Rectangle((col, -r - 1), 1, 1, facecolor="#ffcdd2" if unused else "#e8eefc",
                                       edgecolor="#9fa8da", lw=0.4))
        colours = ["#e65100", "#2e7d32", "#6a1b9a", "#00838f"]
        for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0)] if name == "Pool3" else [(0, 0), (n_out - 1, n_out - 1)]):
            ax.add_patch(Rectangle((j * L.stride + 0.06 * k, -(i * L.stride) - L.kernel - 0.06 * k), L.kernel,
                                   L.kernel, fill=False, edgecolor=colours[k], lw=2))
        ax.set_title(f"{name}: {L.kernel}×{L.kernel} windows, stride {L.stride}, on {size}×{size} → "
                     f"{n_out}×{n_out}", fontsize=9)
        ax.set_xlim(-0.5, size + 0.5)
        ax.set_ylim(-size - 0.5, 0.5)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    print(figure_html(fig, "floor mode on Pool2 and overlapping windows on Pool3"))


def exercise(key: str):
    from reference.architecture import layer
    from reference.counts import count_layers

    c = {x.layer.name: x for x in count_layers()}
    if key == "pool2-unused":
        L, lc = layer("Pool2"), c["Pool2"]
        covered = (lc.out_shape[1] - 1) * L.stride + L.kernel
        return lc.in_shape[1] ** 2 - covered ** 2
    if key == "pool3-size":
        return c["Pool3"].out_shape[1]
    if key == "pool3-shared":
        L, lc = layer("Pool3"), c["Pool3"]
        uses = np.zeros(lc.in_shape[1:], dtype=int)
        for i in range(lc.out_shape[1]):
            for j in range(lc.out_shape[2]):
                uses[i * L.stride: i * L.stride + L.kernel, j * L.stride: j * L.stride + L.kernel] += 1
        return int(uses.max())
    if key == "worked-dx-sum":
        return int(worked()[1].sum())
    raise KeyError(key)


def show_answer(key: str) -> str:
    return answer(key, exercise(key))
