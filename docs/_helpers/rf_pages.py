"""Receptive fields: the recurrence with each stage's numbers, pictures, and autograd's measurement."""

from __future__ import annotations

from functools import lru_cache

from network_pages import model
from figure_kit import C, figure_svg, new_figure
from site_kit import REPO_ROOT, fence, md_table, returns_printed


@lru_cache(maxsize=None)
def fields() -> dict:
    """Layer name (and ``"Input"``) -> :class:`reference.receptive_field.ReceptiveField`."""
    from reference.receptive_field import receptive_fields

    return {f.name: f for f in receptive_fields()}


def rf_example():
    """``examples/receptive_field.py`` as a module: the one implementation of the measurement."""
    import importlib.util
    import sys

    examples = str(REPO_ROOT / "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)  # the example imports its sibling _smoke.py
    spec = importlib.util.spec_from_file_location("_docs_example_receptive_field", REPO_ROOT / "examples" /
                                                  "receptive_field.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def empirical_receptive_field(upto: str, size: int = 96):
    """Measure the receptive field of the centre unit of layer ``upto`` with autograd.

    Uses :func:`measurable_stack` and :func:`measured_span` of ``examples/receptive_field.py``
    on the CPU. Returns ``(support (size, size) array, rows, cols)``.
    """
    import torch

    from reference.architecture import layer

    example = rf_example()
    stack = example.measurable_stack(model(), int(layer(upto).key.split(".")[1]))
    rows, cols, support = example.measured_span(stack, size, torch.device("cpu"))
    return support.numpy(), rows, cols


@returns_printed
def receptive_field_comparison(size: int = 96) -> None:
    """Analytic vs measured receptive field of every conv and pooling output, table + figure."""
    import numpy as np
    from matplotlib.patches import Rectangle

    from reference.architecture import LAYERS
    from reference.errata import parse_original_table
    from reference.receptive_field import receptive_fields

    printed = {row.name: row.receptive_field for row in parse_original_table()}
    analytic = {f.name: f for f in receptive_fields(LAYERS, size)}
    names = [L.name for L in LAYERS if L.kind in ("conv", "maxpool")]
    rows, panels = [], []
    for name in names:
        f = analytic[name]
        support, (r0, r1), (c0, c1) = empirical_receptive_field(name, size)
        centre = (f.size - 1) // 2
        low, high = f.span(centre)
        measured = r1 - r0 + 1
        agree = "yes" if (r0, r1) == (low, high) and (c0, c1) == (low, high) else "**no**"
        shown = printed.get(name)
        rows.append([name, f.r, measured, f"{low} … {high}", f"{r0} … {r1}", agree, "-" if shown is None else shown])
        panels.append((name, support, low, high))
    print(md_table(["layer", "analytic r", "measured width", "analytic span (centre unit)", "measured span",
                    "agree", "printed in the write-up"], rows, "lrrllcr"))
    fig, axes = new_figure(470, 330, nrows=2, ncols=4)
    for ax, (name, support, low, high) in zip(axes.flat, panels):
        relative = np.log10(np.maximum(support / support.max(), 1e-30))
        shown = ax.imshow(relative, cmap="magma", vmin=-12, vmax=0)
        ax.add_patch(Rectangle((low - 0.5, low - 0.5), high - low + 1, high - low + 1, fill=False,
                               edgecolor=C.teal, lw=1.5))
        ax.set_title(f"{name}\nr = {high - low + 1}")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.subplots_adjust(0, 0.16, 1, 0.9, wspace=0.1, hspace=0.5)
    bar = fig.colorbar(shown, cax=fig.add_axes([0.15, 0.07, 0.7, 0.035]), orientation="horizontal")
    bar.set_label("log₁₀ of |∂ unit / ∂ pixel|, relative to the largest")
    print()
    print(figure_svg(fig, f"measured receptive fields on a {size}×{size} input"))


# --------------------------------------------------------------------------------------
# the data page
# --------------------------------------------------------------------------------------



# ----- receptive-field picture --------------------------------------------------------


def rf_figure(name: str) -> str:
    """The input grid (with the padding it sees) and the field of the centre unit of ``name``."""
    from matplotlib.patches import Rectangle

    f = fields()[name]
    size = fields()["Input"].size
    centre = (f.size - 1) // 2
    low, high = f.span(centre)
    fig, ax = new_figure(360, 400)
    lo_view, hi_view = min(-1, low - 1), max(size, high + 1)
    ax.add_patch(Rectangle((-0.5, -0.5), size, size, facecolor=C.cell, edgecolor=C.blue, lw=1.2,
                           label=f"input {size}×{size}"))
    for t in range(size + 1):
        ax.plot([t - 0.5, t - 0.5], [-0.5, size - 0.5], color=C.grid, lw=0.4)
        ax.plot([-0.5, size - 0.5], [t - 0.5, t - 0.5], color=C.grid, lw=0.4)
    ax.add_patch(Rectangle((low - 0.5, low - 0.5), high - low + 1, high - low + 1, facecolor=C.hi, alpha=0.6,
                           edgecolor=C.orange, lw=2, label=f"field of unit ({centre}, {centre}): {f.r}×{f.r}"))
    c = f.centre(centre)
    ax.plot([c], [c], marker="+", color=C.red, ms=12, mew=2)
    ax.set_xlim(lo_view - 0.5, hi_view + 0.5)
    ax.set_ylim(hi_view + 0.5, lo_view - 0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("input column")
    ax.set_ylabel("input row")
    ax.set_title(f"{name}: output {f.size}×{f.size}, r = {f.r}, jump = {f.j}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1)
    fig.tight_layout()
    return figure_svg(fig, f"receptive field of {name}")


@returns_printed
def rf_section(slug: str) -> None:
    """Receptive field at the end of stage ``slug``: the recurrence for this stage's windows, then the picture."""
    from network_pages import STAGES
    from reference.architecture import layer

    allf = fields()
    names = list(allf)
    stage = STAGES[slug][1]
    before = allf[names[names.index(stage[0]) - 1]]
    print(f"Coming into this stage: r = {before.r}, jump = {before.j}.\n")
    rows = []
    for name in stage:
        L = layer(name)
        if L.kind not in ("conv", "maxpool"):
            continue
        prev, cur = allf[names[names.index(name) - 1]], allf[name]
        rows.append([name, L.kernel, L.stride, L.padding or 0, prev.j,
                     f"{prev.r} + ({L.kernel} − 1) · {prev.j} = {cur.r}", cur.j, f"{cur.start:g}"])
    print(md_table(["window", "k", "s", "p", "jump in", "r = r_in + (k − 1) · jump_in", "jump out", "start"], rows,
                   "lrrrrlrr"))
    print()
    last = [n for n in stage if layer(n).kind in ("conv", "maxpool")][-1]
    print(rf_figure(last))




@returns_printed
def growth_figure() -> None:
    """The field of one middle unit of every convolution and pooling output, nested, on the padded input."""
    from matplotlib.patches import Rectangle

    from reference.architecture import LAYERS

    allf = fields()
    size = allf["Input"].size
    windows = [L.name for L in LAYERS if L.kind in ("conv", "maxpool")]
    middle = {name: (allf[name].size - 1) // 2 for name in windows}
    spans = {name: allf[name].span(middle[name]) for name in windows}
    low = min(lo for lo, _ in spans.values())
    high = max(hi for _, hi in spans.values())
    fig, ax = new_figure(470, 560)
    ax.add_patch(Rectangle((-0.5, -0.5), size, size, facecolor=C.cell, edgecolor=C.blue, lw=1.5))
    colours = [C.fg, C.blue, C.green, C.orange, C.purple, C.teal, C.red, C.muted]
    for name, colour in zip(windows, colours):
        lo, hi = spans[name]
        ax.add_patch(Rectangle((lo - 0.5, lo - 0.5), hi - lo + 1, hi - lo + 1, fill=False, edgecolor=colour, lw=2,
                               label=f"{name}: r = {allf[name].r}"))
    ax.set_xlim(low - 1.5, high + 1.5)
    ax.set_ylim(high + 1.5, low - 1.5)
    ax.set_aspect("equal")
    ax.set_xlabel("input column (0 … 31 is the image)")
    ax.set_ylabel("input row")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, columnspacing=1)
    fig.tight_layout()
    print(figure_svg(fig, "receptive fields growing layer by layer"))
