"""The short lessons (ReLU, linear and flatten, dropout): worked examples, figures, exercise answers."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from matplotlib.patches import Rectangle

from lesson_kit import code_of, matrices, tests_comparing  # noqa: F401  (used by the pages)
from figure_kit import C, figure_svg, new_figure
from site_kit import fence, fmt, returns_printed

# ----------------------------------------------------------------------------- ReLU

RELU_X = np.array([[-2.0, 0.5, 0.0, 3.0]])
RELU_DOUT = np.array([[1.0, 1.0, 1.0, 1.0]])


def relu_worked() -> str:
    from reference.relu import relu_backward, relu_forward

    out, cache = relu_forward(RELU_X)
    return matrices(("x", RELU_X), ("y", out), ("dL/dy", RELU_DOUT), ("dL/dx", relu_backward(RELU_DOUT, cache)))


@lru_cache(maxsize=None)
def relu_inputs() -> dict:
    """What each ReLU of the initial model receives, one train-mode pass on the sample images: {name: values}."""
    import torch

    from reference.architecture import LAYERS
    from site_kit import initial_model, sample_batch

    model = initial_model().train()
    seen = {}
    hooks = [model.get_submodule(L.key).register_forward_pre_hook(
        lambda m, i, name=L.name: seen.__setitem__(name, i[0].detach().numpy().ravel().copy()))
        for L in LAYERS if L.kind == "relu"]
    with torch.no_grad():
        model(torch.from_numpy(sample_batch()))
    for h in hooks:
        h.remove()
    return seen


def relu_fractions() -> dict:
    """Share of its inputs each ReLU of the network sets to zero: {name: fraction}."""
    return {name: float((values <= 0).mean()) for name, values in relu_inputs().items()}


def relu_fraction_range() -> str:
    """'between 49.6 % (ReLU3) and 50.8 % (ReLU7)': the smallest and largest share zeroed, over all ReLUs."""
    fractions = relu_fractions()
    low, high = min(fractions, key=fractions.get), max(fractions, key=fractions.get)
    return f"between {100 * fractions[low]:.1f} % ({low}) and {100 * fractions[high]:.1f} % ({high})"


@returns_printed
def relu_figure() -> None:
    """ReLU and its derivative; what the first ReLU of the network receives, and the half it zeroes."""
    t = np.linspace(-3, 3, 601)
    values = relu_inputs()["ReLU1"]
    fig, (a0, a1) = new_figure(470, 250, ncols=2)
    a0.plot(t, np.maximum(t, 0), label="ReLU(x)", color=C.blue)
    a0.plot(t, (t > 0).astype(float), label="derivative", ls="--", color=C.orange)
    a0.legend(loc="upper left")
    a0.grid(alpha=0.5)
    a0.set_xlabel("x")
    a0.set_ylim(-0.3, 3.2)
    bins = np.linspace(-4, 4, 41)
    a1.hist(values[values > 0], bins=bins, color=C.blue, label="passed on")
    a1.hist(values[values <= 0], bins=bins, color=C.orange, label="set to 0")
    a1.set_title(f"ReLU1 sets {100 * (values <= 0).mean():.1f} %\nof its input to 0 (orange)")
    a1.set_xlabel("input of ReLU1")
    a1.set_yticks([])
    fig.tight_layout()
    print(figure_svg(fig, "ReLU, its derivative, and the values the first ReLU of the network receives"))


# ----------------------------------------------------------------------------- linear

LIN_X = np.array([[1.0, 2.0, 0.0]])  # one sample, three features
LIN_W = np.array([[1.0, 0.0, -1.0],
                  [2.0, 1.0, 1.0]])  # (out, in) = (2, 3), as PyTorch stores it
LIN_B = np.array([0.5, -1.0])
LIN_DOUT = np.array([[1.0, -1.0]])


def linear_worked() -> str:
    from reference.linear import linear_backward, linear_forward

    out, cache = linear_forward(LIN_X, LIN_W, LIN_B)
    dx, dw, db = linear_backward(LIN_DOUT, cache)
    return (matrices(("x (1×3)", LIN_X), ("W (2×3)", LIN_W), ("b", LIN_B), ("y = x Wᵀ + b", out)) + "\n\n"
            + matrices(("dL/dy", LIN_DOUT), ("dL/dx", dx), ("dL/dW", dw), ("dL/db", db)))


def linear_by_hand() -> str:
    """The worked example's first output and first input gradient written out term by term."""
    from reference.linear import linear_backward, linear_forward

    out, cache = linear_forward(LIN_X, LIN_W, LIN_B)
    dx = linear_backward(LIN_DOUT, cache)[0]

    def term(a, b):
        return "·".join(f"({v:g})" if v < 0 else f"{v:g}" for v in (a, b))

    y0 = " + ".join(term(x, w) for x, w in zip(LIN_X[0], LIN_W[0]))
    dx0 = " + ".join(term(d, w) for d, w in zip(LIN_DOUT[0], LIN_W[:, 0]))
    return (f'<p class="worked">y[0] = b[0] + Σᵢ x[i]·W[0, i] = {LIN_B[0]:g} + {y0} = {out[0, 0]:g}<br>'
            f"∂L/∂x[0] = Σₒ δ[o]·W[o, 0] = {dx0} = {dx[0, 0]:g}</p>")


def fc1_cost() -> str:
    """FC1's multiply-accumulates per image and for a batch of the original recipe, from reference.counts."""
    from cifar_alexnet.training.recipes import ORIGINAL
    from reference.counts import count_layers

    fc1 = {c.layer.name: c for c in count_layers()}["FC1"]
    batch = ORIGINAL.batch_size
    return (f"FC1, for example, makes {fmt(fc1.macs)} multiply-accumulates per image, one per weight: "
            f"{fmt(fc1.macs * batch)} for a batch of {batch}, in one call of `x @ w.T`. Every weight is "
            f"used {batch} times, once per image of the batch, which is what lets the product keep it "
            "in fast memory.")


@returns_printed
def parameter_figure() -> None:
    """Learnable parameters per layer, on a log scale: the linear layers dominate."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    from reference.counts import count_layers

    c = [x for x in count_layers() if x.weights]
    fig, ax = new_figure(470, 22 * len(c) + 70)
    names = [x.layer.name for x in c]
    colours = [C.orange if x.layer.kind == "linear" else C.blue for x in c]
    ax.barh(names, [x.weights for x in c], color=colours)
    for k, x in enumerate(c):
        ax.text(x.weights * 1.25, k, fmt(x.weights), va="center")
    ax.set_xscale("log")
    ax.set_xlim(8, 4e8)
    ax.xaxis.set_major_locator(LogLocator(base=100))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.invert_yaxis()
    ax.set_xlabel("learnable parameters (log scale)")
    ax.tick_params(axis="y", length=0)
    fig.tight_layout()
    print(figure_svg(fig, "learnable parameters per layer"))


# ----------------------------------------------------------------------------- dropout

DROP_SHAPE = (4, 8)
DROP_SEED = 0


@lru_cache(maxsize=None)
def dropout_masks(p: float):
    """Two training steps' outputs of reference.dropout on an all-ones input (4 samples × 8 features)."""
    from reference.dropout import dropout_forward

    rng = np.random.default_rng(DROP_SEED)
    x = np.ones(DROP_SHAPE)
    return [dropout_forward(x, p, training=True, rng=rng)[0] for _ in range(2)]


@returns_printed
def dropout_figure() -> None:
    from reference.architecture import DROPOUT_P

    masks = dropout_masks(DROPOUT_P)
    rows, cols = masks[0].shape
    gap = rows + 1.4  # vertical distance between the two steps, in cells
    width = 400
    fig, ax = new_figure(width, width * (gap + rows + 1.0) / (cols + 0.1))
    for k, out in enumerate(masks):
        top = -k * gap
        for (r, c), v in np.ndenumerate(out):
            ax.add_patch(Rectangle((c, top - r - 1), 1, 1, facecolor=C.cell if v else C.off, edgecolor=C.fg, lw=0.6))
            ax.text(c + 0.5, top - r - 0.5, "0" if v == 0 else f"{v:g}", ha="center", va="center")
        ax.text(0, top + 0.25, f"step {k + 1}: {int((out == 0).sum())} of {out.size} values dropped", va="bottom")
    ax.set_xlim(-0.05, cols + 0.05)
    ax.set_ylim(-gap - rows - 0.05, 0.95)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.subplots_adjust(0, 0, 1, 1)
    print(figure_svg(fig, "two dropout masks applied to an all-ones input"))


#: The dropout worked example: five values, a keep-mask, the network's drop probability, an upstream gradient.
DROP_X = np.array([[1.0, -2.0, 3.0, 0.5, 4.0]])
DROP_KEEP = np.array([[True, False, True, True, False]])
DROP_DOUT = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])


def dropout_worked() -> str:
    from reference.architecture import DROPOUT_P
    from reference.dropout import dropout_backward, dropout_forward

    out, cache = dropout_forward(DROP_X, DROPOUT_P, training=True, mask=DROP_KEEP)
    dx = dropout_backward(DROP_DOUT, cache)
    return matrices(("x", DROP_X), ("keep mask m", DROP_KEEP.astype(float)), (f"y = m·x / (1 − {DROPOUT_P:g})", out),
                    ("dL/dy", DROP_DOUT), ("dL/dx", dx))
