"""Figures for the content column: inline SVG with real text, in the theme's colours.

A figure is drawn at the width it is shown, in CSS pixels: :func:`new_figure` makes a matplotlib
figure of ``width`` × ``height`` pixels (72 dpi, so a point is a pixel) whose text is set in
the label size that width needs, and :func:`figure_svg` turns it into an inline ``<svg>`` that
is shown at that width on a desktop and scaled down to fit a phone's column. The label size is
chosen so that after that scaling no label is smaller than :data:`MIN_LABEL_PX`;
:func:`figure_svg` measures every label of the SVG and fails the build if one is.

Colours come from ``docs/assets/stylesheets/figures.css``: draw with ``C.fg``, ``C.cell``,
``C.orange``...; in the SVG each becomes ``var(--fig-NAME)``, so the figure follows the reader's
light or dark scheme, on a transparent background. Images inside a figure (a photo, a colour
map) keep their own colours; a colour map always comes with a colour bar.

    fig, ax = new_figure(480, 240)
    ax.plot(x, y, color=C.blue)
    print(figure_svg(fig, "what the figure shows"))
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from types import SimpleNamespace

from site_kit import DOCS_DIR

#: The content column in CSS pixels: at a 1280-px window (Material shows the navigation and the
#: table of contents beside it), and at a 390-px phone (measured in Chromium).
COLUMN_PX = 688
PHONE_COLUMN_PX = 358
#: No label of a figure is smaller than this on either screen.
MIN_LABEL_PX = 11.0

_CSS = DOCS_DIR / "assets" / "stylesheets" / "figures.css"


def _palette() -> dict[str, str]:
    """``{name: light colour}`` from the ``:root`` block of figures.css."""
    text = _CSS.read_text(encoding="utf-8")
    root = re.search(r":root\s*\{(.*?)\}", text, re.S).group(1)
    palette = {name.replace("-", "_"): value.lower()
               for name, value in re.findall(r"--fig-([\w-]+):\s*(#[0-9a-fA-F]{6})", root)}
    if len(set(palette.values())) != len(palette):
        raise ValueError(f"{_CSS}: two figure colours share a light value; each must be unique")
    return palette


PALETTE = _palette()
#: The figure colours by name: ``C.fg``, ``C.blue``, ... (the light values; the SVG gets the theme's).
C = SimpleNamespace(**PALETTE)
_VARIABLE = {value: f"var(--fig-{name.replace('_', '-')}, {value})" for name, value in PALETTE.items()}


def label_px(width: float) -> float:
    """The label size for a figure drawn ``width`` pixels wide: at least MIN_LABEL_PX on a phone, 12 on a desktop.

    With 4 % to spare: the saved figure is cropped to what it draws, which can be a little wider.
    """
    scale = min(1.0, PHONE_COLUMN_PX / (1.04 * width))
    return max(12.0, math.ceil(2 * MIN_LABEL_PX / scale) / 2)


def style(font: float) -> dict:
    """matplotlib settings for a figure with labels of ``font`` pixels, in the palette's colours."""
    from cycler import cycler

    return {
        "svg.fonttype": "none", "svg.hashsalt": "cifar-alexnet",
        "figure.dpi": 72, "savefig.dpi": 72,
        "font.size": font, "axes.titlesize": font, "axes.labelsize": font, "xtick.labelsize": font,
        "ytick.labelsize": font, "legend.fontsize": font, "figure.titlesize": font,
        "axes.titlepad": 0.5 * font, "axes.labelpad": 0.3 * font, "legend.frameon": False,
        "text.color": C.fg, "axes.labelcolor": C.fg, "axes.edgecolor": C.fg, "xtick.color": C.fg,
        "ytick.color": C.fg, "grid.color": C.grid, "patch.edgecolor": C.fg, "hatch.color": C.muted,
        "axes.facecolor": "none", "figure.facecolor": "none", "savefig.facecolor": "none",
        "savefig.transparent": True, "axes.spines.top": False, "axes.spines.right": False,
        "lines.linewidth": 2, "axes.prop_cycle": cycler(color=[C.blue, C.orange, C.green, C.purple, C.red, C.teal]),
        "image.interpolation": "none", "legend.handlelength": 1.6,
    }


def new_figure(width: float, height: float, *, font: float | None = None, **subplots):
    """``(fig, axes)`` of ``width`` × ``height`` CSS pixels with the site's style; ``subplots`` go to ``plt.subplots``."""
    import matplotlib.pyplot as plt

    plt.rcParams.update(style(font or label_px(width)))
    return plt.subplots(figsize=(width / 72, height / 72), **subplots)


def figure_svg(fig, alt: str, caption: str | None = None, *, scroll: bool = False) -> str:
    """The figure as an inline ``<svg>`` in a ``<figure>``; closes the figure.

    Fails if a label would be smaller than MIN_LABEL_PX on a desktop or a phone. With
    ``scroll=True`` (a figure that cannot be read at a phone's width) the figure keeps the
    width its smallest label needs and scrolls sideways on narrow screens, with a cue.
    """
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=2 / 72, metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'<style type="text/css">\*\{[^}]*\}</style>', "", svg)  # matplotlib's page-wide rule; figures.css has it
    svg = re.sub(r"font-family:[^;\"]*;?\s*", "", svg)  # text in the page's own font
    svg = re.sub(r"#[0-9a-fA-F]{6}\b", lambda m: _VARIABLE.get(m.group(0).lower(), m.group(0)), svg)
    svg = re.sub(r'<g id="[^"]*"', "<g", svg)
    uid = "f" + hashlib.sha1(svg.encode()).hexdigest()[:8] + "-"
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{uid}\1"', svg)
    svg = re.sub(r'(url\(#|href="#)', rf"\1{uid}", svg)
    svg = re.sub(r"\s*\n\s*", " ", svg)  # one line: a blank line would end the page's HTML block
    width, height = (float(v) for v in re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg).groups())
    sizes = [float(v) for v in re.findall(r"font-size: ([\d.]+)px", svg)]
    smallest = min(sizes) if sizes else None
    min_width = None
    if smallest is not None:
        need = width * MIN_LABEL_PX / smallest  # the narrowest width at which every label is still readable
        if need > COLUMN_PX + 0.5:
            raise ValueError(f"figure {alt!r}: labels of {smallest:g} px on a {width:.0f}-px figure are below "
                             f"{MIN_LABEL_PX:g} px in the {COLUMN_PX}-px column; draw it narrower or larger")
        if need > PHONE_COLUMN_PX + 0.5:
            if not scroll:
                raise ValueError(f"figure {alt!r}: labels of {smallest:g} px on a {width:.0f}-px figure are below "
                                 f"{MIN_LABEL_PX:g} px on a {PHONE_COLUMN_PX}-px phone column; draw it narrower, "
                                 "with larger labels, or let it scroll")
            min_width = math.ceil(need)
    root_style = f' style="min-width: {min_width}px"' if min_width else ""
    svg = re.sub(r"<svg [^>]*>", f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                                 f'viewBox="0 0 {width:g} {height:g}" width="{width:g}" height="{height:g}" '
                                 f'role="img" aria-label="{_attr(alt)}"{root_style}>', svg, count=1)
    cap = ""
    if caption:
        cap = "<figcaption>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", caption) + "</figcaption>"
    html = f'<figure class="generated" markdown="0" data-search-exclude>{svg}{cap}</figure>'
    if min_width:
        html = (f'<div class="figure-scroll" markdown="0" data-search-exclude><div class="scroll-cue">'
                f'Scroll sideways to see the whole figure →</div>{html}</div>')
    return html


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def smallest_label(svg_html: str) -> tuple[float, float, float | None]:
    """(drawn width, smallest font size, min-width or None) of an inline figure, read from its SVG."""
    width = float(re.search(r'viewBox="0 0 ([\d.]+) [\d.]+"', svg_html).group(1))
    sizes = [float(v) for v in re.findall(r"font-size: ?([\d.]+)px", svg_html)]
    min_width = re.search(r'<svg [^>]*style="min-width: (\d+)px"', svg_html)
    return width, min(sizes) if sizes else math.inf, float(min_width.group(1)) if min_width else None
