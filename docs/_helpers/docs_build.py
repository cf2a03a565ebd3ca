"""Code shared by the ``markdown-exec`` blocks of the documentation.

Every number, table and figure of the site is computed here (or in the pages' own exec
blocks) from :mod:`reference` and :mod:`cifar_alexnet` while ``mkdocs build`` runs. Nothing
is typed in: a change in the code changes the pages, and code that stops working fails the
(strict) build.

Conventions of this module:

* functions that print produce Markdown for the page (markdown-exec's default output);
* figures are embedded as PNG data URIs (:func:`figure_html`), so the site needs no network
  and the build writes no files into ``docs/``.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import os
import io
import re
import textwrap
from functools import lru_cache
from pathlib import Path

HELPERS = Path(__file__).resolve().parent
DOCS_DIR = HELPERS.parent
REPO_ROOT = DOCS_DIR.parent
#: Set by hooks.py from mkdocs.yml's ``repo_url`` (a default keeps the module importable alone).
REPO_URL = "https://github.com/cifar-alexnet/cifar-alexnet"
SAMPLES = DOCS_DIR / "assets" / "cifar10_jpeg_samples.npz"

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


def repo_link(path: str, text: str | None = None) -> str:
    """A Markdown link to a file of the repository on GitHub; checks the file exists."""
    repo_path(path)
    return f"[{text or '`' + path + '`'}]({REPO_URL}/blob/main/{path})"


def source_file_of(obj) -> str:
    return Path(inspect.getsourcefile(obj)).resolve().relative_to(REPO_ROOT).as_posix()


def source(*objects, lang: str = "python") -> str:
    """The source of functions/classes, as one fenced block titled with their file."""
    parts = [inspect.getsource(obj).rstrip() for obj in objects]
    return fence("\n\n\n".join(parts), lang, title=source_file_of(objects[0]))


def figure_html(fig, alt: str, caption: str | None = None, dpi: int = 110) -> str:
    """Embed a matplotlib figure as a PNG data URI inside a ``<figure>``; closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="generated" markdown="0"><img alt="{alt}" src="data:image/png;base64,{data}">{cap}</figure>'


@returns_printed
def run_and_show(code: str, title: str | None = None) -> None:
    """Print ``code`` as a Python block, run it, and print what it printed as a text block.

    Used for the small per-layer examples: what the reader sees is exactly what ran.
    """
    code = textwrap.dedent(code).strip() + "\n"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, title or "<docs example>", "exec"), {"__name__": "__docs_example__"})
    print(fence(code, "python", title=title))
    print()
    print(fence(out.getvalue(), "text", title="output (computed when this page was built)"))


def md_table(header: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one character per column: l, r or c."""
    align = align or "l" * len(header)
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


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
# the network: stages, counts, receptive fields
# --------------------------------------------------------------------------------------

#: The layer pages: page slug -> (title, layer names of reference.architecture.LAYERS).
STAGES = {
    "conv1": ("Conv1 block", ("Conv1", "BN1", "ReLU1", "Pool1")),
    "conv2": ("Conv2 block", ("Conv2", "BN2", "ReLU2", "Pool2")),
    "conv3": ("Conv3", ("Conv3", "BN3", "ReLU3")),
    "conv4": ("Conv4", ("Conv4", "BN4", "ReLU4")),
    "conv5": ("Conv5 and Pool3", ("Conv5", "BN5", "ReLU5", "Pool3")),
    "classifier": ("The classifier", ("Flatten", "Drop1", "FC1", "BN6", "ReLU6", "Drop2", "FC2", "BN7", "ReLU7",
                                      "FC3", "BN8")),
}

KIND_WORDS = {
    "conv": "convolution (cross-correlation)",
    "bn2d": "BatchNorm2d",
    "bn1d": "BatchNorm1d",
    "relu": "ReLU",
    "maxpool": "max-pool",
    "flatten": "flatten",
    "dropout": "dropout",
    "linear": "linear (fully connected)",
}


def check_stages_cover_network() -> None:
    """Every layer of LAYERS is on exactly one layer page (fails the build otherwise)."""
    from reference.architecture import LAYERS

    on_pages = [name for _, names in STAGES.values() for name in names]
    names = [layer.name for layer in LAYERS]
    if on_pages != names:
        raise ValueError(f"docs STAGES do not match reference.architecture.LAYERS: {on_pages} vs {names}")


@lru_cache(maxsize=None)
def counts() -> dict:
    """Layer name -> :class:`reference.counts.LayerCounts` of the write-up's network."""
    from reference.counts import count_layers

    check_stages_cover_network()
    return {c.layer.name: c for c in count_layers()}


@lru_cache(maxsize=None)
def fields() -> dict:
    """Layer name (and ``"Input"``) -> :class:`reference.receptive_field.ReceptiveField`."""
    from reference.receptive_field import receptive_fields

    return {f.name: f for f in receptive_fields()}


def torch_module(name: str):
    """The module of the PyTorch model that implements layer ``name`` (None for flatten)."""
    from reference.architecture import layer

    from cifar_alexnet.model import AlexNet

    key = layer(name).key
    if key is None:
        return None
    return _model().get_submodule(key)


@lru_cache(maxsize=None)
def _model():
    import torch

    from cifar_alexnet.model import AlexNet

    torch.manual_seed(0)
    return AlexNet()


@returns_printed
def stage_overview(slug: str) -> None:
    """A table of the layers on a stage page: shapes, weights, MACs, torchstat FLOPs."""
    _, names = STAGES[slug]
    c = counts()
    rows = []
    for name in names:
        lc = c[name]
        key = lc.layer.key or "–"
        rows.append([f"[{name}](#{name.lower()})", f"`{key}`" if lc.layer.key else key, "×".join(map(str, lc.in_shape)),
                     "×".join(map(str, lc.out_shape)), fmt(lc.weights), fmt(lc.macs), fmt(lc.torchstat_flops)])
    print(md_table(["layer", "module", "input", "output", "weights", "MACs", "FLOPs¹"], rows, "llllrrr"))
    print("\nShapes per image. ¹ as torchstat counts them, the write-up's column (see the "
          "[layer table](../layer-table.md)).")


# ----- equations --------------------------------------------------------------------

EQUATIONS = {
    "conv": r"""
**Forward.** For output channel $f$ at output position $(i, j)$, with the input zero-padded by $p$:

$$
y_{n,f,i,j} = b_f + \sum_{c=1}^{C}\sum_{u=0}^{k-1}\sum_{v=0}^{k-1} w_{f,c,u,v}\; x^{\text{pad}}_{n,c,\,s i+u,\,s j+v}
$$

(a cross-correlation: the kernel is not flipped, exactly like `torch.nn.Conv2d`; see
[Conventions](../conventions.md#cross-correlation-not-convolution)).

**Backward.** With the upstream gradient $\delta_{n,f,i,j} = \partial L / \partial y_{n,f,i,j}$:

$$
\frac{\partial L}{\partial b_f} = \sum_{n,i,j} \delta_{n,f,i,j}, \qquad
\frac{\partial L}{\partial w_{f,c,u,v}} = \sum_{n,i,j} \delta_{n,f,i,j}\, x^{\text{pad}}_{n,c,\,s i+u,\,s j+v},
$$

$$
\frac{\partial L}{\partial x^{\text{pad}}_{n,c,a,b}} = \sum_{f}\sum_{\substack{i,u:\ s i+u=a}}\ \sum_{\substack{j,v:\ s j+v=b}} \delta_{n,f,i,j}\, w_{f,c,u,v},
$$

and $\partial L/\partial x$ is that gradient with the padding border cut off.
""",
    "bn2d": r"""
**Forward (training mode).** Per channel $c$, over the $m = N H W$ values of the batch:

$$
\mu_c = \frac{1}{m}\sum_{n,h,w} x_{n,c,h,w}, \qquad
\sigma^2_c = \frac{1}{m}\sum_{n,h,w} (x_{n,c,h,w}-\mu_c)^2, \qquad
\hat x = \frac{x-\mu_c}{\sqrt{\sigma^2_c+\epsilon}}, \qquad
y = \gamma_c \hat x + \beta_c .
$$

The running estimates are updated with the *unbiased* variance:
$\hat\mu \leftarrow (1-\alpha)\hat\mu + \alpha\mu_c$,
$\hat\sigma^2 \leftarrow (1-\alpha)\hat\sigma^2 + \alpha\,\frac{m}{m-1}\sigma^2_c$ with momentum $\alpha$
([Conventions](../conventions.md#batchnorm-biased-and-unbiased-variance)).
In eval mode $\mu_c, \sigma^2_c$ are replaced by the running estimates.

**Backward (training mode).** With $\delta = \partial L/\partial y$:

$$
\frac{\partial L}{\partial \beta_c} = \sum \delta, \qquad
\frac{\partial L}{\partial \gamma_c} = \sum \delta\,\hat x, \qquad
\frac{\partial L}{\partial x} = \frac{\gamma_c}{m\sqrt{\sigma^2_c+\epsilon}}
\Big(m\,\delta - \sum \delta - \hat x \sum \delta\,\hat x\Big),
$$

sums over the $m$ values of channel $c$. In eval mode the statistics are constants and
$\partial L/\partial x = \gamma_c\,\delta / \sqrt{\hat\sigma^2_c+\epsilon}$.
""",
    "relu": r"""
**Forward.** $y = \max(x, 0)$ element-wise.

**Backward.** $\dfrac{\partial L}{\partial x} = \delta \cdot [x > 0]$ (the gradient at exactly
$x = 0$ is taken as 0, as in PyTorch).
""",
    "maxpool": r"""
**Forward.** Each output is the maximum of a $k \times k$ window moved with stride $s$ (no padding,
windows that would run past the edge are dropped — floor mode):

$$
y_{n,c,i,j} = \max_{0 \le u,v < k} x_{n,c,\,s i+u,\,s j+v}.
$$

**Backward.** The whole upstream gradient of an output goes to the input that was the maximum
(to the *first* such position if several tie, as PyTorch does); every other input of the
window gets 0. Overlapping windows ($s < k$) add up their contributions.
""",
    "flatten": r"""
**Forward.** $y_{n,\,c H W + h W + w} = x_{n,c,h,w}$: a reshape of each sample in C-order
(NCHW), exactly `torch.flatten(x, 1)`.

**Backward.** The inverse reshape of $\delta$.
""",
    "dropout": r"""
**Forward (training mode).** With drop probability $p$ and an independent keep mask
$m_i \sim \text{Bernoulli}(1-p)$ (*inverted* dropout):

$$
y_i = \frac{m_i\, x_i}{1-p}.
$$

In eval mode $y = x$.

**Backward.** $\dfrac{\partial L}{\partial x_i} = \dfrac{m_i\,\delta_i}{1-p}$ (training), $\delta_i$ (eval).
""",
    "linear": r"""
**Forward.** With $W$ of shape (out, in), as PyTorch stores it:

$$
y = x W^{\top} + b .
$$

**Backward.**

$$
\frac{\partial L}{\partial x} = \delta\, W, \qquad
\frac{\partial L}{\partial W} = \delta^{\top} x, \qquad
\frac{\partial L}{\partial b} = \sum_n \delta_n .
$$
""",
}
EQUATIONS["bn1d"] = EQUATIONS["bn2d"].replace("over the $m = N H W$ values", "over the $m = N$ values").replace(
    "x_{n,c,h,w}", "x_{n,c}").replace("\\sum_{n,h,w}", "\\sum_{n}")


# ----- counts derived step by step ---------------------------------------------------


def derivation(name: str) -> str:
    """Prose + math deriving the parameter count and the FLOPs of layer ``name``."""
    lc = counts()[name]
    L = lc.layer
    ins, outs = lc.in_shape, lc.out_shape
    kind = L.kind
    lines = [f"Input {shape_text(ins)}, output {shape_text(outs)} per image."]
    if kind in ("conv", "maxpool"):
        size, p = ins[1], L.padding or 0
        lines.append(
            f"\n\nOutput size: $\\left\\lfloor \\frac{{H + 2p - k}}{{s}} \\right\\rfloor + 1 = "
            f"\\left\\lfloor \\frac{{{size} + 2\\cdot{p} - {L.kernel}}}{{{L.stride}}} \\right\\rfloor + 1 = {outs[1]}$."
        )
    if kind == "conv":
        C, F, k = ins[0], outs[0], L.kernel
        per_out = C * k * k
        lines.append(
            f"\n\n**Parameters.** $F \\cdot C \\cdot k^2 + F = {F} \\cdot {C} \\cdot {k}^2 + {F} = "
            f"{tex_int(F * C * k * k)} + {F} = {tex_int(lc.weights)}$."
            f"\n\n**Multiply-accumulates.** Each of the ${tex_shape(outs)} = {tex_int(lc.out_elements)}$ outputs "
            f"needs $C k^2 = {C}\\cdot{k}^2 = {tex_int(per_out)}$ of them: "
            f"${tex_int(lc.out_elements)} \\cdot {tex_int(per_out)} = {tex_int(lc.macs)}$ MACs."
            f"\n\n**FLOPs as torchstat counts them** (the write-up's column): MACs plus one addition per output "
            f"for the bias, ${tex_int(lc.macs)} + {tex_int(lc.out_elements)} = {tex_int(lc.torchstat_flops)}$. "
            f"Counting a multiply and an add separately doubles the MACs: ${tex_int(2 * lc.macs)}$."
        )
    elif kind in ("bn2d", "bn1d"):
        C = ins[0]
        lines.append(
            f"\n\n**Parameters.** $\\gamma$ and $\\beta$, one each per channel: $2 \\cdot {C} = {tex_int(lc.weights)}$ "
            f"learnable, plus the running mean and variance: ${tex_int(lc.buffers)}$ buffer values "
            f"(not trained, saved in the state_dict)."
        )
        if kind == "bn2d":
            lines.append(
                f"\n\n**FLOPs (torchstat).** 2 per element: $2 \\cdot {tex_shape(ins)} = {tex_int(lc.torchstat_flops)}$."
            )
        else:
            lines.append(
                "\n\n**FLOPs (torchstat).** torchstat has no rule for BatchNorm1d and prints "
                f"${tex_int(lc.torchstat_flops)}$; in reality it costs about as much as a BatchNorm2d: a few "
                f"operations on each of its ${tex_int(lc.in_elements)}$ values."
            )
    elif kind == "relu":
        lines.append(
            f"\n\n**Parameters.** None. **FLOPs (torchstat).** One comparison per element: "
            f"${tex_shape(ins)} = {tex_int(lc.torchstat_flops)}$."
        )
    elif kind == "maxpool":
        lines.append(
            f"\n\n**Parameters.** None. **FLOPs (torchstat).** torchstat counts one per *input* element: "
            f"${tex_shape(ins)} = {tex_int(lc.torchstat_flops)}$. The comparisons actually made are "
            f"$k^2 - 1 = {L.kernel * L.kernel - 1}$ per output: ${L.kernel * L.kernel - 1} \\cdot {tex_shape(outs)} = "
            f"{tex_int(lc.torchstat_madd)}$, torchstat's MAdd column."
        )
    elif kind == "linear":
        n_in, n_out = ins[0], outs[0]
        lines.append(
            f"\n\n**Parameters.** $\\text{{in}} \\cdot \\text{{out}} + \\text{{out}} = {tex_int(n_in)} \\cdot "
            f"{tex_int(n_out)} + {tex_int(n_out)} = {tex_int(lc.weights)}$."
            f"\n\n**Multiply-accumulates.** $\\text{{in}} \\cdot \\text{{out}} = {tex_int(lc.macs)}$; torchstat's FLOPs "
            f"column is the same number, ${tex_int(lc.torchstat_flops)}$ (it leaves the bias out)."
        )
    elif kind == "dropout":
        lines.append(
            f"\n\n**Parameters.** None; drop probability $p = {L.p}$. Identity at test time, "
            f"{tex_int(lc.torchstat_flops)} FLOPs in torchstat."
        )
    elif kind == "flatten":
        lines.append(
            f"\n\n**Parameters.** None; a reshape of ${tex_shape(ins)}$ into ${tex_int(outs[0])}$ values, "
            "no arithmetic. Not a module in the PyTorch model (`torch.flatten(x, 1)` in `forward`)."
        )
    return "".join(lines)


# ----- NumPy vs PyTorch ----------------------------------------------------------------

#: layer kind -> (module of reference, NumPy functions shown, PyTorch equivalent in words)
NUMPY_FUNCTIONS = {
    "conv": ("reference.conv", ("conv2d_forward", "conv2d_backward"), ("conv2d_forward_naive", "conv2d_backward_naive")),
    "bn2d": ("reference.batchnorm", ("batchnorm_forward", "batchnorm_backward"), ()),
    "bn1d": ("reference.batchnorm", ("batchnorm_forward", "batchnorm_backward"), ()),
    "relu": ("reference.relu", ("relu_forward", "relu_backward"), ()),
    "maxpool": ("reference.pool", ("maxpool2d_forward", "maxpool2d_backward"),
                ("maxpool2d_forward_naive", "maxpool2d_backward_naive")),
    "flatten": ("reference.flatten", ("flatten_forward", "flatten_backward"), ()),
    "dropout": ("reference.dropout", ("dropout_forward", "dropout_backward"), ()),
    "linear": ("reference.linear", ("linear_forward", "linear_backward"), ()),
}

TORCH_FUNCTIONAL = {
    "conv": "torch.nn.functional.conv2d(x, weight, bias, stride, padding)",
    "bn2d": "torch.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)",
    "bn1d": "torch.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)",
    "relu": "torch.relu(x)",
    "maxpool": "torch.nn.functional.max_pool2d(x, kernel_size, stride)",
    "flatten": "torch.flatten(x, 1)",
    "dropout": "torch.nn.functional.dropout(x, p, training)",
    "linear": "torch.nn.functional.linear(x, weight, bias)",
}

#: layer kind -> what a test must call on the torch side to compare with the NumPy layer.
TORCH_COUNTERPART = {
    "conv": r"\b(F|functional)\.conv2d\b",
    "bn2d": r"\b(F|functional)\.batch_norm\b|\bBatchNorm2d\b",
    "bn1d": r"\b(F|functional)\.batch_norm\b|\bBatchNorm1d\b",
    "relu": r"\b(F|functional)\.relu\b|\btorch\.relu\b",
    "maxpool": r"\b(F|functional)\.max_pool2d\b",
    "linear": r"\b(F|functional)\.linear\b",
    "flatten": r"\btorch\.flatten\b",
    "dropout": r"\.backward\(",  # compared with torch autograd on x * mask / (1 - p), the same mask
}


def tests_comparing(kind: str) -> list[str]:
    """The test files (``tests/test_*.py``) that run the NumPy layer of ``kind`` against torch.

    A file qualifies if it calls the layer's NumPy forward function and its torch counterpart
    (:data:`TORCH_COUNTERPART`). The build fails if there is none, so a layer page never links
    to a test that does not exist.
    """
    numpy_forward = NUMPY_FUNCTIONS[kind][1][0]
    found = []
    for path in sorted((REPO_ROOT / "tests").glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        if re.search(rf"\b{numpy_forward}\(", text) and re.search(TORCH_COUNTERPART[kind], text):
            found.append(path.relative_to(REPO_ROOT).as_posix())
    if not found:
        raise FileNotFoundError(f"docs: no test in tests/ compares {numpy_forward} with torch")
    return found


@returns_printed
def implementation_tabs(name: str) -> None:
    """Tabs: the NumPy implementation (pulled from the source) beside the PyTorch equivalent."""
    import importlib

    from reference.architecture import layer

    L = layer(name)
    module_name, functions, naive = NUMPY_FUNCTIONS[L.kind]
    module = importlib.import_module(module_name)
    items = [(f"NumPy ({module_name})", source(*(getattr(module, f) for f in functions)))]
    if naive and all(hasattr(module, f) for f in naive):
        items.append(("NumPy, with loops", source(*(getattr(module, f) for f in naive))))
    mod = torch_module(name)
    if mod is None:
        torch_text = "Not a module: `AlexNet.forward` calls it between the two stacks."
    else:
        torch_text = f"The module `{L.key}` of `cifar_alexnet.model.AlexNet`:\n\n" + fence(f"{L.key}: {mod!r}")
    torch_text += (
        f"\n\nFunctional form: `{TORCH_FUNCTIONAL[L.kind]}`. The backward pass is autograd's "
        "(`out.backward(dout)`), which the example below compares with the NumPy backward."
    )
    items.append(("PyTorch", torch_text))
    print(tabs(items))


# ----- the per-layer example (NumPy vs torch on a small input) -------------------------

_EXAMPLE_HEAD = '''\
import numpy as np
import torch
from reference.architecture import layer
from reference.counts import count_layers

L = layer("{name}")
shape = {{c.layer.name: c for c in count_layers()}}["{name}"].in_shape  # per image, e.g. (C, H, W)
rng = np.random.default_rng(0)
'''

EXAMPLES = {
    "conv": '''
from reference.conv import conv2d_forward, conv2d_backward

C = shape[0]
x = rng.standard_normal((2, C, 6, 6))                  # a small 6x6 input, float64
w = rng.standard_normal((L.out_channels, C, L.kernel, L.kernel)) / np.sqrt(C * L.kernel**2)
b = rng.standard_normal(L.out_channels)
out, cache = conv2d_forward(x, w, b, stride=L.stride, padding=L.padding)
dout = rng.standard_normal(out.shape)                   # a random upstream gradient
dx, dw, db = conv2d_backward(dout, cache)

xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
yt = torch.nn.functional.conv2d(xt, wt, bt, stride=L.stride, padding=L.padding)
yt.backward(torch.tensor(dout))
print("output shape   ", out.shape)
for what, a, t in [("out", out, yt), ("dx", dx, xt.grad), ("dw", dw, wt.grad), ("db", db, bt.grad)]:
    print(f"max |{what:>3} numpy - torch| = {np.abs(a - t.detach().numpy()).max():.2e}")
''',
    "bn": '''
from reference.batchnorm import batchnorm_forward, batchnorm_backward

C = shape[0]
x = rng.normal(3.0, 2.0, size=(4, C) + ((5, 5) if len(shape) == 3 else ()))   # float64
gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
run_mean, run_var = np.zeros(C), np.ones(C)
out, cache, (new_mean, new_var) = batchnorm_forward(x, gamma, beta, run_mean, run_var, training=True)
dout = rng.standard_normal(out.shape)
dx, dgamma, dbeta = batchnorm_backward(dout, cache)

bn = (torch.nn.BatchNorm2d if len(shape) == 3 else torch.nn.BatchNorm1d)(C).double().train()
with torch.no_grad():
    bn.weight.copy_(torch.tensor(gamma)); bn.bias.copy_(torch.tensor(beta))
xt = torch.tensor(x, requires_grad=True)
yt = bn(xt)
yt.backward(torch.tensor(dout))
print("output shape   ", out.shape)
pairs = [("out", out, yt), ("dx", dx, xt.grad), ("dgamma", dgamma, bn.weight.grad),
         ("dbeta", dbeta, bn.bias.grad), ("running_mean", new_mean, bn.running_mean),
         ("running_var", new_var, bn.running_var)]
for what, a, t in pairs:
    print(f"max |{what:>12} numpy - torch| = {np.abs(a - t.detach().numpy()).max():.2e}")
''',
    "relu": '''
from reference.relu import relu_forward, relu_backward

x = rng.standard_normal((2,) + shape[:1] + ((4, 4) if len(shape) == 3 else ()))
out, cache = relu_forward(x)
dout = rng.standard_normal(out.shape)
dx = relu_backward(dout, cache)

xt = torch.tensor(x, requires_grad=True)
yt = torch.relu(xt)
yt.backward(torch.tensor(dout))
print("fraction of inputs let through:", (out > 0).mean())
print(f"max |out numpy - torch| = {np.abs(out - yt.detach().numpy()).max():.2e}")
print(f"max | dx numpy - torch| = {np.abs(dx - xt.grad.numpy()).max():.2e}")
''',
    "maxpool": '''
from reference.pool import maxpool2d_forward, maxpool2d_backward

x = rng.standard_normal((2, shape[0]) + shape[1:])      # the real spatial size of this layer
out, cache = maxpool2d_forward(x, L.kernel, L.stride)
dout = rng.standard_normal(out.shape)
dx = maxpool2d_backward(dout, cache)

xt = torch.tensor(x, requires_grad=True)
yt = torch.nn.functional.max_pool2d(xt, L.kernel, L.stride)
yt.backward(torch.tensor(dout))
print("input shape ", x.shape, "-> output shape", out.shape)
print(f"max |out numpy - torch| = {np.abs(out - yt.detach().numpy()).max():.2e}")
print(f"max | dx numpy - torch| = {np.abs(dx - xt.grad.numpy()).max():.2e}")
''',
    "flatten": '''
from reference.flatten import flatten_forward, flatten_backward

x = rng.standard_normal((2,) + shape)
out, cache = flatten_forward(x)
dout = rng.standard_normal(out.shape)
dx = flatten_backward(dout, cache)

xt = torch.tensor(x, requires_grad=True)
yt = torch.flatten(xt, 1)
yt.backward(torch.tensor(dout))
print(x.shape, "->", out.shape)
print(f"max |out numpy - torch| = {np.abs(out - yt.detach().numpy()).max():.2e}")
print(f"max | dx numpy - torch| = {np.abs(dx - xt.grad.numpy()).max():.2e}")
''',
    "dropout": '''
from reference.dropout import dropout_forward, dropout_backward

x = rng.standard_normal((4,) + shape)
keep = rng.random(x.shape) >= L.p                        # one keep-mask, shared with torch
out, cache = dropout_forward(x, L.p, training=True, mask=keep)
dout = rng.standard_normal(out.shape)
dx = dropout_backward(dout, cache)

# torch draws its own mask; to compare, apply the same mask the way nn.Dropout does
xt = torch.tensor(x, requires_grad=True)
yt = xt * torch.tensor(keep) / (1 - L.p)
yt.backward(torch.tensor(dout))
print(f"p = {L.p}: kept {keep.mean():.3f} of the values, scaled by 1/(1-p) = {1 / (1 - L.p):.4f}")
print(f"max |out numpy - torch| = {np.abs(out - yt.detach().numpy()).max():.2e}")
print(f"max | dx numpy - torch| = {np.abs(dx - xt.grad.numpy()).max():.2e}")
eval_out, _ = dropout_forward(x, L.p, training=False)
print("eval mode is the identity:", np.array_equal(eval_out, x))
''',
    "linear": '''
from reference.linear import linear_forward, linear_backward

n_in = shape[0]
x = rng.standard_normal((4, n_in))
w = rng.standard_normal((L.features, n_in)) / np.sqrt(n_in)   # (out, in), as torch stores it
b = rng.standard_normal(L.features)
out, cache = linear_forward(x, w, b)
dout = rng.standard_normal(out.shape)
dx, dw, db = linear_backward(dout, cache)

xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
yt = torch.nn.functional.linear(xt, wt, bt)
yt.backward(torch.tensor(dout))
print("output shape   ", out.shape)
for what, a, t in [("out", out, yt), ("dx", dx, xt.grad), ("dw", dw, wt.grad), ("db", db, bt.grad)]:
    print(f"max |{what:>3} numpy - torch| = {np.abs(a - t.detach().numpy()).max():.2e}")
''',
}
EXAMPLES["bn2d"] = EXAMPLES["bn1d"] = EXAMPLES["bn"]


@returns_printed
def example(name: str) -> None:
    """Run and show the NumPy-vs-torch example of layer ``name``."""
    from reference.architecture import layer

    kind = layer(name).kind
    print(run_and_show(_EXAMPLE_HEAD.format(name=name) + EXAMPLES[kind], title=f"{name}: NumPy vs PyTorch"))


@returns_printed
def layer_section(name: str) -> None:
    """The whole section of one layer on its stage page."""
    from reference.architecture import layer

    L = layer(name)
    lc = counts()[name]
    where = (f"in PyTorch the module `{L.key}` of `AlexNet`" if L.key else
             "in PyTorch not a module: `torch.flatten(x, 1)` in `AlexNet.forward`")
    print(f"## {name}\n\n*{KIND_WORDS[L.kind]}*; {where}.\n")
    print("### What it computes\n")
    print(EQUATIONS[L.kind])
    print("### Shapes, parameters and FLOPs\n")
    print(derivation(name) + "\n")
    print("### Implementation\n")
    print(implementation_tabs(name))
    print("\n### NumPy and PyTorch agree\n")
    print("A small example, executed when this page was built (float64, random upstream gradient):\n")
    print(example(name))
    links = ", ".join(repo_link(t) for t in tests_comparing(L.kind))
    print(f"\nThe tests that prove it for all shapes and parameters: {links} "
          "(hypothesis-generated inputs, tolerances from "
          f"{repo_link('tests/tolerances.py')}; see [Verification](../verification.md)).\n")
    del lc


# ----- receptive-field picture --------------------------------------------------------


def rf_figure(name: str, caption: bool = True) -> str:
    """The input grid (with the padding it sees) and the field of the centre unit of ``name``."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    f = fields()[name]
    size = fields()["Input"].size
    centre = (f.size - 1) // 2
    low, high = f.span(centre)
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    lo_view, hi_view = min(-1, low - 1), max(size, high + 1)
    ax.add_patch(Rectangle((-0.5, -0.5), size, size, facecolor="#e8eefc", edgecolor="#3f51b5", lw=1.2,
                           label=f"input {size}×{size}"))
    for t in range(size + 1):
        ax.plot([t - 0.5, t - 0.5], [-0.5, size - 0.5], color="#c5cae9", lw=0.4)
        ax.plot([-0.5, size - 0.5], [t - 0.5, t - 0.5], color="#c5cae9", lw=0.4)
    ax.add_patch(Rectangle((low - 0.5, low - 0.5), high - low + 1, high - low + 1, facecolor="#ff980055",
                           edgecolor="#e65100", lw=2, label=f"field of unit ({centre}, {centre}): {f.r}×{f.r}"))
    c = f.centre(centre)
    ax.plot([c], [c], marker="+", color="#b71c1c", ms=12, mew=2)
    ax.set_xlim(lo_view - 0.5, hi_view + 0.5)
    ax.set_ylim(hi_view + 0.5, lo_view - 0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("input column")
    ax.set_ylabel("input row")
    ax.set_title(f"{name}: output {f.size}×{f.size}, r = {f.r}, jump = {f.j}", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, ncol=1, frameon=False)
    cap = None
    if caption:
        cap = (f"Receptive field of the centre unit ({centre}, {centre}) of the {name} output: input pixels "
               f"{low} … {high} along each axis (the image is 0 … {size - 1}; outside is zero padding).")
    return figure_html(fig, alt=f"receptive field of {name}", caption=cap)


@returns_printed
def rf_section(name: str) -> None:
    """Receptive field of a stage's last layer: numbers, recurrence with this layer's values, picture."""
    allf = fields()
    names = list(allf)
    f = allf[name]
    # the window layer of this stage (the last conv/pool up to `name`) drives the change
    from reference.architecture import LAYERS

    windows = [L for L in LAYERS if L.kind in ("conv", "maxpool")]
    steps = []
    for L in windows:
        if names.index(L.name) > names.index(name):
            break
        prev = allf[names[names.index(L.name) - 1]]
        steps.append((L, prev, allf[L.name]))
    rows = [[L.name, L.kernel, L.stride, L.padding or 0, prev.j, f"{prev.r} + ({L.kernel} − 1) · {prev.j} = {cur.r}",
             cur.j, f"{cur.start:g}"] for L, prev, cur in steps]
    print(md_table(["window", "k", "s", "p", "jump in", "r = r_in + (k − 1) · jump_in", "jump out", "start"], rows,
                   "lrrrrlrr"))
    print()
    print(rf_figure(name))


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def samples():
    """The committed real sample images: (images uint8 (N,32,32,3), labels, classes, source)."""
    import numpy as np

    with np.load(SAMPLES) as z:
        return z["images"], z["labels"], tuple(str(c) for c in z["classes"]), str(z["source"])


# --------------------------------------------------------------------------------------
# the layer table beside the original's
# --------------------------------------------------------------------------------------


def errata_list():
    """(rows of reference.table.layer_table, errata of the original table)."""
    from reference.table import layer_table, table_errata

    rows = layer_table()
    return rows, table_errata(rows)


@returns_printed
def derived_table() -> None:
    """The layer table as :func:`reference.table.to_markdown` formats it, in a div the tests find."""
    from reference.table import to_markdown

    rows, _ = errata_list()
    text = to_markdown(rows)  # the table, then the notes on totals
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
    stack = example.measurable_stack(_model(), int(layer(upto).key.split(".")[1]))
    rows, cols, support = example.measured_span(stack, size, torch.device("cpu"))
    return support.numpy(), rows, cols


@returns_printed
def receptive_field_comparison(size: int = 96) -> None:
    """Analytic vs measured receptive field of every conv and pooling output, table + figure."""
    import matplotlib.pyplot as plt
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
    cols = 4
    fig, axes = plt.subplots(2, cols, figsize=(11, 6))
    for ax, (name, support, low, high) in zip(axes.flat, panels):
        ax.imshow(np.log10(support + 1e-30).clip(min=np.log10(support.max()) - 12), cmap="magma")
        ax.add_patch(Rectangle((low - 0.5, low - 0.5), high - low + 1, high - low + 1, fill=False,
                               edgecolor="#00e5ff", lw=1.2))
        ax.set_title(f"{name}: r = {high - low + 1}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    print()
    print(figure_html(fig, "measured receptive fields", caption=(
        f"|∂(centre unit)/∂input| on a {size}×{size} input (log scale, dark = 0) for each convolution and "
        "pooling output; the cyan square is the analytic field. Computed with autograd when this page was built.")))


# --------------------------------------------------------------------------------------
# the data page
# --------------------------------------------------------------------------------------


@returns_printed
def sample_grid() -> None:
    """All committed sample images, one column per class."""
    import matplotlib.pyplot as plt

    images, labels, classes, source = samples()
    per_class = len(images) // len(classes)
    fig, axes = plt.subplots(per_class, len(classes), figsize=(1.1 * len(classes), 1.25 * per_class))
    for k, name in enumerate(classes):
        picks = [i for i in range(len(images)) if labels[i] == k]
        for row, i in enumerate(picks):
            ax = axes[row, k]
            ax.imshow(images[i], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=8)
    fig.tight_layout()
    print(figure_html(fig, "CIFAR-10 sample images", caption=f"The committed samples: {source}."))


def augmentation_steps():
    """The random augmentations of the original training transform, each made to always fire.

    Taken from :func:`cifar_alexnet.data.original_train_transform` (so the page shows the
    pipeline the trainer uses), without ``ToTensor``/``Normalize``. A step with a probability
    ``p`` is copied with ``p = 1`` so its effect is visible on every image; the real ``p``
    is returned beside it.
    """
    import copy

    from cifar_alexnet.data import original_train_transform

    pipeline = original_train_transform((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    steps = []
    for step in pipeline.transforms:
        name = type(step).__name__
        if name in ("ToTensor", "Normalize"):
            continue
        shown = copy.copy(step)
        p = getattr(step, "p", None)
        if p is not None:
            shown.p = 1.0
        steps.append((name, step, shown, p))
    return steps


@returns_printed
def augmentation_grid(n_images: int = 6, seed: int = 0) -> None:
    """Rows: sample images; columns: original, each augmentation alone, the whole pipeline."""
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from PIL import Image

    from cifar_alexnet.data import original_train_transform

    images, labels, classes, _ = samples()
    per_class = len(images) // len(classes)
    picks = list(range(0, len(images), per_class))[:n_images]  # one image each of the first classes
    steps = augmentation_steps()
    pipeline = original_train_transform((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # identity normalisation
    titles = ["original"] + [name + ("\n(p = 1 here)" if p is not None else "") for name, _, _, p in steps] + [
        "whole pipeline"]
    torch.manual_seed(seed)
    fig, axes = plt.subplots(len(picks), len(titles), figsize=(1.55 * len(titles), 1.6 * len(picks)))
    for row, i in enumerate(picks):
        pil = Image.fromarray(images[i])
        shown = [pil] + [applied(pil) for _, _, applied, _ in steps]
        whole = pipeline(pil).permute(1, 2, 0).numpy()  # ToTensor, identity Normalize: [0, 1] HWC
        for col, im in enumerate(shown + [whole]):
            ax = axes[row, col]
            ax.imshow(np.asarray(im), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[col], fontsize=7)
        axes[row, 0].set_ylabel(classes[labels[i]], fontsize=8)
    fig.tight_layout()
    probs = ", ".join(f"{name} p = {p:g}" for name, _, _, p in steps if p is not None)
    print(figure_html(fig, "augmentations on real images", caption=(
        "Each augmentation of the original training transform alone, then the whole pipeline, on real "
        f"CIFAR-10 images (JPEG q75 copy). Random steps are shown with probability 1; in training: {probs}.")))


# --------------------------------------------------------------------------------------
# the command line
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
# --------------------------------------------------------------------------------------

RUNS_DIR = DOCS_DIR / "runs"
RESULTS_DIRS = (DOCS_DIR / "results", REPO_ROOT / "bench" / "results")


def recipe_source(name: str) -> str:
    """The source of the recipe constant (``ORIGINAL``, ``FAST``) in recipes.py, with its comments."""
    import ast

    from cifar_alexnet import recipes

    path = Path(recipes.__file__)
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return fence(ast.get_source_segment(text, node), title="cifar_alexnet/recipes.py")
    raise KeyError(f"recipes.py has no constant {name}")


@returns_printed
def recipe_table() -> None:
    """Every field of every recipe, side by side."""
    from dataclasses import fields

    from cifar_alexnet.recipes import RECIPES

    names = list(RECIPES)
    rows = []
    for f in fields(next(iter(RECIPES.values()))):
        values = [getattr(RECIPES[n], f.name) for n in names]
        cells = [f"`{v!r}`" for v in values]
        if len(set(map(repr, values))) > 1:
            cells = [f"**{c}**" for c in cells]
        rows.append([f"`{f.name}`"] + cells)
    print(md_table(["field"] + [f"`{n}`" for n in names], rows, "l" + "l" * len(names)))


def recorded_runs() -> list[tuple[str, dict, list[dict]]]:
    """``[(name, meta, history), ...]`` for every ``docs/runs/<name>/`` with both files."""
    import json

    runs = []
    if RUNS_DIR.is_dir():
        for folder in sorted(p for p in RUNS_DIR.iterdir() if p.is_dir()):
            history_file, meta_file = folder / "history.json", folder / "meta.json"
            if not history_file.is_file():
                continue
            if not meta_file.is_file():
                raise FileNotFoundError(f"docs: {folder} has history.json but no meta.json (machine, device, data, "
                                        "command, date)")
            runs.append((folder.name, json.loads(meta_file.read_text()), json.loads(history_file.read_text())))
    return runs


def _meta_field(meta: dict, word: str) -> str:
    """The first meta.json value whose key contains ``word`` ("data" matches "data_set", not "date")."""
    for key, value in meta.items():
        if word in key.lower():
            return str(value)
    return "?"


def _percent(value) -> float:
    return 100.0 * value if value <= 1.0 else float(value)


def _png_file_html(path: Path, alt: str, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure class="generated" markdown="0"><img alt="{alt}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>")


@returns_printed
def runs_section() -> None:
    """Curves and a summary table per recorded run, or a plain statement that there is none."""
    import tempfile

    from cifar_alexnet.plots import plot_history

    runs = recorded_runs()
    if not runs:
        print("No measured run has been recorded in this repository yet (`docs/runs/` holds none), so this "
              "page shows no accuracy of this package. Only measured runs appear here.")
        return
    summary = []
    for name, meta, history in runs:
        best = max(history, key=lambda r: r["test_acc"])
        total_time = sum(r.get("epoch_time_s", 0.0) for r in history)
        summary.append([f"[{name}](#run-{name})", _meta_field(meta, "data"), _meta_field(meta, "device"), len(history), f"{_percent(best['test_acc']):.2f} %",
                        best["epoch"], f"{_percent(history[-1]['test_acc']):.2f} %", f"{total_time / 60:.1f} min"])
    print(md_table(["run", "data", "device", "epochs", "best test acc.", "at epoch", "last test acc.",
                    "training time"], summary, "lllrrrrr"))
    for name, meta, history in runs:
        print(f'\n### Run `{name}` {{ #run-{name} }}\n')
        print(md_table(["", ""], [[f"`{k}`", f"`{v}`" if not isinstance(v, (dict, list)) else f"`{v!r}`"]
                                  for k, v in meta.items()], "ll"))
        with tempfile.TemporaryDirectory() as tmp:
            png = plot_history(history, Path(tmp) / "curves.png", compare_original=True, title=name)
            print()
            print(_png_file_html(Path(png), f"curves of {name}", (
                f"Run {name}: accuracy and loss per epoch (`cifar_alexnet.plots.plot_history`); circles: the "
                "write-up's published accuracies (official CIFAR-10).")))


@returns_printed
def original_log_section() -> None:
    """The transcribed log as a table and a figure; checked against plots.ORIGINAL_PUBLISHED_ACCURACY."""
    import matplotlib.pyplot as plt

    import original_log
    from cifar_alexnet.plots import ORIGINAL_PUBLISHED_ACCURACY

    rows = original_log.parse_log()
    ours = {r["epoch"]: (r["eval_train_acc"], r["test_acc"]) for r in rows}
    if ours != dict(ORIGINAL_PUBLISHED_ACCURACY):
        raise ValueError("docs: the transcribed log disagrees with cifar_alexnet.plots.ORIGINAL_PUBLISHED_ACCURACY")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    epochs = [r["epoch"] for r in rows]
    ax.plot(epochs, [r["eval_train_acc"] for r in rows], "o-", label='"train" (eval mode, augmented images)')
    ax.plot(epochs, [r["test_acc"] for r in rows], "s-", label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("The write-up's log (official CIFAR-10), transcribed", fontsize=10)
    print(figure_html(fig, "the original log", caption=(
        "Every fifth epoch, as printed in the 2020 write-up. Transcribed, not measured here.")))
    print()
    best = original_log.best(rows)
    table = [[r["epoch"], f"{r['eval_train_acc']:.2f}", f"**{r['test_acc']:.2f}**" if r is best else
              f"{r['test_acc']:.2f}"] for r in rows]
    print('??? note "The log as a table"\n')
    print(indent(md_table(["epoch", '"train" acc. (%)', "test acc. (%)"], table, "rrr")))


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and len(value) > 8:
        yield prefix, f"({len(value)} values)"
    else:
        yield prefix, value


def result_files() -> list[Path]:
    files = []
    for folder in RESULTS_DIRS:
        if folder.is_dir():
            files += sorted(folder.glob("*.json"))
    return files


def _measured_results(benchmark: str) -> list[tuple[Path, dict]]:
    """``[(path, result), ...]`` of the result files written by ``benchmark``, ``--smoke`` runs left out."""
    import json

    found = [(path, json.loads(path.read_text())) for path in result_files()]
    return [(path, data) for path, data in found if data.get("benchmark") == benchmark and not data.get("smoke")]


@returns_printed
def throughput_section() -> None:
    """The training-throughput results (``bench/train_throughput.py``), one row per precision."""
    rows = []
    for path, data in _measured_results("train_throughput"):
        original, project = data["sides"]["original"], data["sides"]["project"]
        amp = data.get("project_amp", "off")
        rows.append([f"`{path.name}`", f"`{data['device']}`", "float32" if amp == "off" else f"{amp} autocast",
                     f"{original['images_per_s']:.1f}", f"{project['images_per_s']:.1f}",
                     f"{data['speedup_project_over_original']:.2f}x",
                     f"{data['matmul_flops_per_s'] / 1e9:,.0f} ({data.get('matmul_dtype', 'float32')})",
                     f"{100 * project['matmul_fraction']:.1f} %", f"`{data['command']}`"])
    if not rows:
        print("No training-throughput result has been recorded yet.")
        return
    print(md_table(["result", "device", "project precision", "original loop img/s", "project img/s",
                    "project / original", "matmul GFLOP/s", "project / matmul", "command"], rows, "lllrrrrrl"))


@returns_printed
def step_profile_section() -> None:
    """``bench/step_profile.py`` results: time per kind of work in one training step, per precision."""
    profiles = _measured_results("step_profile")
    if not profiles:
        print("No step profile has been recorded yet.")
        return
    kinds = list(profiles[0][1]["kinds"])
    header = ["kind of work"] + [f"{d['precision']}: ms/step (share)" for _, d in profiles]
    header += [f"{d['precision']}: of {d['matmul_dtype']} matmul" for _, d in profiles]
    rows = []
    for kind in kinds:
        row = [kind]
        row += [f"{d['kinds'][kind]['ms_per_step']:.0f} ({100 * d['kinds'][kind]['share']:.1f} %)" for _, d in profiles]
        row += [f"{100 * d['kinds'][kind]['matmul_fraction']:.1f} %" if "matmul_fraction" in d["kinds"][kind] else ""
                for _, d in profiles]
        rows.append(row)
    print(md_table(header, rows, "l" + "r" * (len(header) - 1)))
    print()
    print("; ".join(f"`{d['command']}` on `{d['device_name']}` ({d['device']}), batch {d['batch_size']}: "
                    f"{d['images_per_s']:.1f} images/s without the profiler" for _, d in profiles) + ".")


@returns_printed
def results_section() -> None:
    """Every benchmark result file: a summary row each, then all its fields (nothing typed in).

    Results of a script's ``--smoke`` mode (``"smoke": true``) check that the script runs; they
    are not measurements and are left out.
    """
    import json

    measured, smoke = [], []
    for path in result_files():
        data = json.loads(path.read_text())
        (smoke if data.get("smoke") else measured).append((path, data))
    if not measured:
        print("No benchmark result has been recorded yet (`docs/results/` and `bench/results/` hold no "
              "measured JSON). The benchmark scripts under `bench/` write one when they are run.")
    else:
        rows = []
        for path, data in measured:
            ratios = [f"`{k}` = {v:.3g}" for k, v in _flatten(data)
                      if isinstance(v, (int, float)) and not isinstance(v, bool)
                      and re.search(r"speedup|ratio", k) and not k.startswith("targets")][:4]
            rows.append([f"`{path.relative_to(REPO_ROOT).as_posix()}`", f"`{data.get('benchmark', path.stem)}`",
                         f"`{data.get('device_name', data.get('device', '?'))}`",
                         data.get("date_utc", data.get("date", "")), "<br>".join(ratios) or "-"])
        print(md_table(["file", "benchmark", "device", "date", "ratios"], rows, "lllll"))
        for path, data in measured:
            rel = path.relative_to(REPO_ROOT).as_posix()
            table = md_table(["field", "value"], [[f"`{k}`", f"{v:,.4g}" if isinstance(v, float) else f"`{v}`"]
                                                  for k, v in _flatten(data)], "ll")
            print(f'\n??? note "All fields of `{rel}`"\n\n{indent(table)}\n')
    if smoke:
        names = ", ".join(f"`{p.relative_to(REPO_ROOT).as_posix()}`" for p, _ in smoke)
        print(f"\nLeft out: {names} — written by a `--smoke` run, which checks that the script works and "
              "measures nothing.")


def _run_recipe(name: str) -> str | None:
    """The recipe of recorded run ``name``, from the ``config.json`` the trainer wrote (None if absent)."""
    import json

    config = RUNS_DIR / name / "config.json"
    return json.loads(config.read_text()).get("recipe") if config.is_file() else None


@returns_printed
def fast_recipe_status() -> None:
    """What has been measured of the fast recipe, read from ``docs/runs`` and the result files."""
    from cifar_alexnet.plots import ORIGINAL_PUBLISHED_ACCURACY

    if fast_recipe_measured_on_gpu():
        print("A recorded run or benchmark result below measured it on a GPU.")
        return
    original_best = max(test for _, test in ORIGINAL_PUBLISHED_ACCURACY.values())
    paragraphs = ["The fast recipe has **not been run on a GPU in this project yet**: it was written on machines "
                  "without one, so no GPU time or speed is claimed for it. `bench/gpu.py` measures them."]
    cpu_runs = [(name, meta, history) for name, meta, history in recorded_runs()
                if _run_recipe(name) == "fast" and meta.get("device") == "cpu"]
    for name, meta, history in cpu_runs:
        best = max(history, key=lambda r: r["test_acc"])
        paragraphs.append(
            f"Its accuracy was measured on a CPU: run [`{name}`](#run-{name}) reached "
            f"**{_percent(best['test_acc']):.2f} %** best test accuracy (epoch {best['epoch']} of {len(history)}; "
            f"{_percent(history[-1]['test_acc']):.2f} % after the last) on {_meta_field(meta, 'data')}. The "
            f"write-up's {original_best:.2f} % was measured on the official test set.")
    if not cpu_runs:
        paragraphs.append("No accuracy is claimed for it either.")
    print('!!! warning "Not measured on a GPU yet"\n\n' + indent("\n\n".join(paragraphs)) + "\n")


def fast_recipe_measured_on_gpu() -> bool:
    """True if a recorded run of the fast recipe or a ``bench/gpu.py`` result ran on a CUDA device."""
    import json

    for name, meta, _ in recorded_runs():
        if _run_recipe(name) == "fast" and str(meta.get("device", "")).startswith("cuda"):
            return True
    for path in result_files():
        data = json.loads(path.read_text())
        if (not data.get("smoke") and str(data.get("environment", {}).get("device", "")).startswith("cuda")
                and (data.get("fast_recipe") or {}).get("history")):
            return True
    return False


# --------------------------------------------------------------------------------------
# the verification page
# --------------------------------------------------------------------------------------


def load_tests_module(name: str):
    """Import ``tests/<name>.py`` (tolerances, conftest, strategies) without making tests a package."""
    import importlib.util
    import sys

    tests_dir = str(REPO_ROOT / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)  # tests import each other by plain name (from tolerances import ...)
    spec = importlib.util.spec_from_file_location(f"_docs_tests_{name}", REPO_ROOT / "tests" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented_constants(path: Path) -> list[tuple[str, str]]:
    """``[(NAME, "#: comment"), ...]`` for the constants of a module documented with ``#:``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        match = re.match(r"^([A-Z][A-Z0-9_]*)\s*(:[^=]*)?=", line)
        if match and i > 0 and lines[i - 1].startswith("#:"):
            found.append((match.group(1), lines[i - 1][2:].strip()))
    return found


@returns_printed
def tolerance_table() -> None:
    """Every tolerance of tests/tolerances.py: name, value, what it is for."""
    tolerances = load_tests_module("tolerances")
    rows = [[f"`{name}`", f"{getattr(tolerances, name):.0e}", text]
            for name, text in documented_constants(REPO_ROOT / "tests" / "tolerances.py")]
    print(md_table(["name", "value", "used for"], rows, "lrl"))


@returns_printed
def hypothesis_profiles() -> None:
    """The hypothesis profiles registered by tests/conftest.py."""
    from hypothesis import settings

    load_tests_module("conftest")
    rows = []
    for name in ("ci", "thorough"):
        profile = settings.get_profile(name)
        rows.append([f"`{name}`", profile.max_examples, profile.derandomize, profile.deadline])
    print(md_table(["profile", "examples per test", "derandomized", "deadline"], rows, "lrll"))


@returns_printed
def test_inventory() -> None:
    """Every test module: its first docstring paragraph, its tests, how many use hypothesis."""
    import ast

    rows = []
    for path in sorted((REPO_ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        doc = (ast.get_docstring(tree) or "").split("\n\n")[0].replace("\n", " ")
        doc = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", doc).replace("``", "`")  # reST roles -> Markdown code
        tests = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name.startswith("test_")]
        with_given = sum(1 for n in tests if any("given" in ast.unparse(dec) for dec in n.decorator_list))
        rel = path.relative_to(REPO_ROOT).as_posix()
        rows.append([repo_link(rel, f"`{path.name}`"), doc.replace("|", "\\|"), len(tests), with_given])
    print(md_table(["file", "what it proves", "tests", "of them property-based"], rows, "llrr"))


# --------------------------------------------------------------------------------------
# the API pages
# --------------------------------------------------------------------------------------


def public_modules(package: str) -> list[str]:
    """The public modules of a package (no leading underscore), from its folder."""
    folder = REPO_ROOT / package
    return sorted(f"{package}.{p.stem}" for p in folder.glob("*.py") if not p.stem.startswith("_"))


def check_api_page(page: str, package: str) -> str:
    """Fail the build if a public module of ``package`` has no ``::: module`` on ``page``."""
    text = (DOCS_DIR / page).read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: ([\w.]+)", text, re.M))
    missing = [m for m in public_modules(package) if m not in documented]
    if missing:
        raise ValueError(f"docs: {page} lacks ::: entries for {missing}")
    return f"All {len(documented)} public modules of `{package}` are on this page."


# --------------------------------------------------------------------------------------
# the examples page
# --------------------------------------------------------------------------------------

#: example script -> the pages that use it (each of those pages links back here).
EXAMPLE_PAGES = {
    "train_original.py": ["training.md", "getting-started.md"],
    "train_fast.py": ["training.md"],
    "layer_by_layer.py": ["network/index.md", "verification.md"],
    "receptive_field.py": ["receptive-fields.md"],
}


def example_scripts() -> list[Path]:
    """The runnable examples: ``examples/*.py`` except the shared ``_smoke.py``."""
    return sorted(p for p in (REPO_ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


@returns_printed
def examples_section() -> None:
    """Each example: what it does (its docstring), where it is used, its source."""
    import ast

    scripts = example_scripts()
    unlisted = sorted({p.name for p in scripts} ^ set(EXAMPLE_PAGES))
    if unlisted:
        raise ValueError(f"docs: EXAMPLE_PAGES and examples/ disagree on {unlisted}")
    for path in scripts:
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
        summary, _, rest = doc.partition("\n\n")
        anchor = path.stem.replace("_", "-")
        used = ", ".join(f"[{p.removesuffix('.md').replace('/index', '').replace('-', ' ')}]({p})"
                         for p in EXAMPLE_PAGES[path.name])
        print(f"## `{path.name}` {{ #{anchor} }}\n")
        print(f"{summary}\n")
        print(f"Used on: {used}. Source: {repo_link('examples/' + path.name)}.\n")
        print(fence(rest.strip(), "text") + "\n")
        print(f'??? example "examples/{path.name}"\n')
        print(indent(fence(text, title=f"examples/{path.name}")) + "\n")
