"""The small kit every build-time helper of the site uses: paths, Markdown, figures.

Importing it makes the repository importable (``reference``, ``cifar_alexnet``) and selects
matplotlib's file-only backend. The site's hook (``site_hooks.py``, named in ``mkdocs.yml``) puts
this folder on ``sys.path`` and imports this module once per build, so a page's ``markdown-exec``
block needs nothing but::

    import network_pages as d

Conventions of the helpers: a function decorated with :func:`returns_printed` returns the
Markdown it printed (the page's block prints it); figures are inline SVG made by
:mod:`figure_kit`, so the site needs no network and the build writes no file into ``docs/``.
Prose, equations and captions live in the pages; the helpers compute numbers, tables, figures.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import inspect
import io
import os
import re
import sys
import textwrap
from pathlib import Path

HELPERS = Path(__file__).resolve().parent
DOCS_DIR = HELPERS.parent
REPO_ROOT = DOCS_DIR.parent
SAMPLES = DOCS_DIR / "assets" / "cifar10_jpeg_samples.npz"

os.environ.setdefault("MPLBACKEND", "Agg")
for _path in (str(HELPERS), str(REPO_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)


# --------------------------------------------------------------------------------------
# small formatting helpers
# --------------------------------------------------------------------------------------

def returns_printed(function):
    """Decorator: run ``function`` with stdout captured and return what it printed.

    markdown-exec only captures the ``print`` of the block itself, so the helpers here print
    into a buffer and the page's block prints the returned text: ``print(d.layer_section(name))``.
    """
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs) -> str:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            function(*args, **kwargs)
        return buffer.getvalue()

    return wrapper


def fmt(n) -> str:
    """An integer with thousands separators: ``14869598 -> '14,869,598'``."""
    return f"{int(n):,}"


def tex_int(n) -> str:
    """An integer for KaTeX with thin-space thousands separators: ``\\num``-like."""
    return f"{int(n):,}".replace(",", "{,}")


def shape_text(shape) -> str:
    """``(64, 34, 34) -> '64 × 34 × 34'``."""
    return " × ".join(str(s) for s in shape)


def tex_shape(shape) -> str:
    return r" \times ".join(str(s) for s in shape)


def fence(code: str, lang: str = "python", title: str | None = None) -> str:
    """A fenced code block (four backticks, so code containing ``` stays intact)."""
    head = f'````{lang}' + (f' title="{title}"' if title else "")
    return f"{head}\n{code.rstrip()}\n````"


def indent(text: str, prefix: str = "    ") -> str:
    return textwrap.indent(text, prefix, lambda line: True)


def tabs(items: list[tuple[str, str]]) -> str:
    """pymdownx.tabbed tabs: ``[(title, markdown), ...]``."""
    return "\n\n".join(f'=== "{title}"\n\n{indent(body)}' for title, body in items)


def repo_path(path: str) -> Path:
    """A path inside the repository that must exist (the build fails if it does not)."""
    full = REPO_ROOT / path
    if not full.exists():
        raise FileNotFoundError(f"docs: {path} is linked from the documentation but does not exist")
    return full


def repo_file(path: str) -> str:
    """A repository file named in a page, as inline code; fails the build if the file is missing.

    The site links to no code host: the repository's address is wherever the reader cloned it.
    """
    repo_path(path)
    return f"`{path}`"


def rest_to_markdown(text: str) -> str:
    """Docstring reST for a page (roles, double backticks, ``::``), as the API pages show docstrings."""
    from griffe_rest_roles import rest_to_markdown as convert

    return convert(text)


#: How the recipes' optimizer names are written in prose.
OPTIMIZER_NAMES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}


def source_file_of(obj) -> str:
    return Path(inspect.getsourcefile(obj)).resolve().relative_to(REPO_ROOT).as_posix()


def source(*objects, lang: str = "python") -> str:
    """The source of functions/classes, as one fenced block titled with their file."""
    parts = [inspect.getsource(obj).rstrip() for obj in objects]
    return fence("\n\n\n".join(parts), lang, title=source_file_of(objects[0]))


def figure_html(fig, alt: str, caption: str | None = None, dpi: int = 110) -> str:
    """A matplotlib figure as a PNG data URI inside a ``<figure class="static-fallback">``; closes the figure.

    Only for the picture an explorable figure shows while JavaScript is off; the site's own
    figures are SVG with real text (:mod:`figure_kit`, ``class="generated"``).
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return png_html(buf.getvalue(), alt, caption, css_class="static-fallback")


def png_html(png: bytes, alt: str, caption: str | None = None, css_class: str = "generated") -> str:
    """A ``<figure>`` holding PNG bytes as a data URI (the site loads nothing from elsewhere)."""
    data = base64.b64encode(png).decode("ascii")
    cap = ""
    if caption:
        cap = "<figcaption>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", caption) + "</figcaption>"
    return f'<figure class="{css_class}" markdown="0"><img alt="{alt}" src="data:image/png;base64,{data}">{cap}</figure>'


def md_table(header: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one character per column: l, r or c."""
    align = align or "l" * len(header)
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# what several pages compute from: the initial model and the sample images as a batch
# --------------------------------------------------------------------------------------


def initial_model():
    """A copy of ``cifar_alexnet.model.AlexNet`` as initialised with seed 0 (the network is built once per build).

    Each call returns its own copy, so a page may train it, change its dtype or its mode
    without changing what another page sees.
    """
    import copy

    return copy.deepcopy(_initial_model())


@functools.lru_cache(maxsize=None)
def _initial_model():
    import torch

    from cifar_alexnet.model import AlexNet

    torch.manual_seed(0)
    return AlexNet()


@functools.lru_cache(maxsize=None)
def sample_batch():
    """The committed sample images as one float32 batch (N, 3, 32, 32), normalised per channel with their own statistics."""
    import numpy as np

    with np.load(SAMPLES) as z:
        images = z["images"].astype(np.float32) / 255.0  # (N, 32, 32, 3), real CIFAR-10 images
    mean, std = images.mean(axis=(0, 1, 2)), images.std(axis=(0, 1, 2))
    return np.ascontiguousarray(((images - mean) / std).transpose(0, 3, 1, 2))


# --------------------------------------------------------------------------------------
# the README's set-up commands
# --------------------------------------------------------------------------------------


def readme_setup_block() -> str:
    """The first ``bash`` block of README.md, verbatim (the two set-up commands)."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```bash\n(.*?)```", text, re.S)
    if not match:
        raise ValueError("README.md: no ```bash block with the set-up commands found")
    return match.group(1).rstrip()


def readme_setup_commands() -> list[tuple[str, str]]:
    """``[(comment, command), ...]`` from the README's set-up block."""
    pairs, comment = [], ""
    for line in readme_setup_block().splitlines():
        if line.startswith("#"):
            comment = line.lstrip("# ").strip()
        elif line.strip():
            pairs.append((comment, line.strip()))
    return pairs


# --------------------------------------------------------------------------------------
# the model whose filters and activations the figures show
# --------------------------------------------------------------------------------------

#: The label of :func:`figure_model`'s weights while none trained ship with the package.
UNTRAINED_LABEL = "untrained (seed 0)"


def figure_model():
    """``(model, label)``: the PyTorch model whose activations and filters the site's figures show.

    The one place that decides which weights the figures use: the trained weights that ship
    with the package (:data:`cifar_alexnet.weights.AlexNetWeights.DEFAULT`), labelled with the
    recipe, the epoch and the test accuracy they record. Every figure follows: the network
    explorer's feature maps, the receptive-field explorer's effective fields, the convolution
    explorer's learned Conv1 filters and the "what the network learned" page.

    The model is in eval mode with its parameters frozen (figures take gradients with respect
    to the input only); it is built once per build and shared, so callers must not change it.
    """
    return _figure_model()


@functools.lru_cache(maxsize=1)
def _figure_model():
    from cifar_alexnet.weights import AlexNetWeights, alexnet

    weights = AlexNetWeights.DEFAULT
    model = alexnet(weights=weights)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    meta = weights.meta
    return model, (f"the shipped weights, the {meta['recipe']} recipe's epoch {meta['epoch']} of "
                   f"{meta['epochs_of_run']}, {meta['test_acc']:.2f} % test accuracy on the JPEG copy")


def figure_input(images):
    """uint8 images ``(N, 32, 32, 3)`` as the float32 ``(N, 3, 32, 32)`` batch :func:`figure_model` expects.

    Normalised as the shipped weights were trained: with the per-channel mean and standard
    deviation of their training set (``AlexNetWeights.DEFAULT.transforms()``).
    """
    from cifar_alexnet.weights import AlexNetWeights

    return AlexNetWeights.DEFAULT.transforms()(images)


def samples():
    """The committed CIFAR-10 sample images: ``(images uint8 (N, 32, 32, 3), class name of each)``."""
    import numpy as np

    with np.load(SAMPLES) as data:
        return data["images"], [str(data["classes"][label]) for label in data["labels"]]


# --------------------------------------------------------------------------------------


def cli_help(*args: str) -> str:
    """What ``cifar-alexnet ARGS --help`` prints, captured (100 columns wide), in a text block."""
    from cifar_alexnet.cli import main

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            try:
                main([*args, "--help"])
            except SystemExit as stop:
                if stop.code not in (0, None):
                    raise RuntimeError(f"cifar-alexnet {' '.join(args)} --help exited with {stop.code}") from None
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return fence(f"$ cifar-alexnet {' '.join(args) + ' ' if args else ''}--help\n{buffer.getvalue()}", "text")


# --------------------------------------------------------------------------------------
# the training page: recipes, recorded runs, the original log, benchmark results
