"""The short lessons (ReLU, linear and flatten, dropout): worked examples, figures, exercise answers."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lesson_kit import answer, code_of, matrices, tests_comparing  # noqa: F401  (used by the pages)
from site_kit import fence, figure_html, fmt, returns_printed

# ----------------------------------------------------------------------------- ReLU

RELU_X = np.array([[-2.0, 0.5, 0.0, 3.0]])
RELU_DOUT = np.array([[1.0, 1.0, 1.0, 1.0]])


def relu_worked() -> str:
    from reference.relu import relu_backward, relu_forward

    out, cache = relu_forward(RELU_X)
    return matrices(("x", RELU_X), ("y", out), ("dL/dy", RELU_DOUT), ("dL/dx", relu_backward(RELU_DOUT, cache)))


@lru_cache(maxsize=None)
def relu_fractions() -> dict:
    """Fraction of values ReLU zeroes after each BatchNorm, one train-mode pass of the initial model on real images."""
    import torch

    from cifar_alexnet.model import AlexNet
    from data_pages import samples
    from reference.architecture import LAYERS

    images = samples()[0].astype(np.float32) / 255.0
    mean, std = images.mean(axis=(0, 1, 2)), images.std(axis=(0, 1, 2))
    x = torch.from_numpy(((images - mean) / std).transpose(0, 3, 1, 2).copy())
    torch.manual_seed(0)
    model = AlexNet().train()
    zeroed = {}
    hooks = [model.get_submodule(L.key).register_forward_hook(
        lambda m, i, o, name=L.name: zeroed.__setitem__(name, float((o == 0).float().mean())))
        for L in LAYERS if L.kind == "relu"]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return zeroed


@returns_printed
def relu_figure() -> None:
    import matplotlib.pyplot as plt

    t = np.linspace(-3, 3, 601)
    fractions = relu_fractions()
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(9.5, 2.8), gridspec_kw={"width_ratios": [1, 1.6]})
    a0.plot(t, np.maximum(t, 0), label="ReLU(x)", lw=2)
    a0.plot(t, (t > 0).astype(float), label="derivative", lw=2, ls="--")
    a0.legend(fontsize=8)
    a0.grid(alpha=0.3)
    a0.set_xlabel("x")
    a1.bar(list(fractions), [100 * v for v in fractions.values()], color="#5c6bc0")
    a1.set_ylabel("% of values set to 0")
    a1.set_ylim(0, 100)
    a1.axhline(50, color="#e65100", lw=1)
    a1.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    print(figure_html(fig, "ReLU, its derivative, and the share of values each ReLU of the network zeroes"))


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


@returns_printed
def parameter_figure() -> None:
    """Learnable parameters per layer: the linear layers dominate."""
    import matplotlib.pyplot as plt

    from reference.counts import count_layers

    c = [x for x in count_layers() if x.weights]
    fig, ax = plt.subplots(figsize=(9.5, 2.8))
    colours = ["#e65100" if x.layer.kind == "linear" else "#5c6bc0" for x in c]
    ax.bar([x.layer.name for x in c], [x.weights / 1e6 for x in c], color=colours)
    ax.set_ylabel("parameters (millions)")
    ax.tick_params(axis="x", labelsize=7, rotation=45)
    total = sum(x.weights for x in c)
    linear = sum(x.weights for x in c if x.layer.kind == "linear")
    ax.set_title(f"linear layers (orange): {fmt(linear)} of {fmt(total)} parameters ({100 * linear / total:.1f} %)",
                 fontsize=9)
    fig.tight_layout()
    print(figure_html(fig, "learnable parameters per layer"))


# ----------------------------------------------------------------------------- dropout

DROP_SHAPE = (8, 16)
DROP_SEED = 0


@lru_cache(maxsize=None)
def dropout_masks(p: float):
    """Two training steps' outputs of reference.dropout on an all-ones input (8 samples × 16 features)."""
    from reference.dropout import dropout_forward

    rng = np.random.default_rng(DROP_SEED)
    x = np.ones(DROP_SHAPE)
    return [dropout_forward(x, p, training=True, rng=rng)[0] for _ in range(2)]


@returns_printed
def dropout_figure() -> None:
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from reference.architecture import DROPOUT_P

    masks = dropout_masks(DROPOUT_P)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 2.6))
    for k, (ax, out) in enumerate(zip(axes, masks)):
        ax.imshow(out > 0, cmap=ListedColormap(["#ffffff", "#bbdefb"]), vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(out):
            ax.text(c, r, "0" if v == 0 else f"{v:g}", ha="center", va="center", fontsize=6,
                    color="#c62828" if v == 0 else "#0d47a1")
        ax.set_title(f"step {k + 1}: {int((out == 0).sum())} of {out.size} dropped", fontsize=9)
        ax.set_xlabel("feature")
        ax.set_ylabel("sample")
    fig.tight_layout()
    print(figure_html(fig, "two dropout masks applied to an all-ones input"))


def exercise(key: str):
    from reference.architecture import DROPOUT_P
    from reference.counts import count_layers

    c = {x.layer.name: x for x in count_layers()}
    if key == "fc1-params":
        return c["FC1"].weights
    if key == "flatten-length":
        return c["Flatten"].out_shape[0]
    if key == "drop-scale":
        return f"{1 / (1 - DROPOUT_P):g}"
    if key == "linear-share":
        total = sum(x.weights for x in c.values())
        return f"{100 * sum(x.weights for x in c.values() if x.layer.kind == 'linear') / total:.1f} %"
    if key == "relu-dx":
        from reference.relu import relu_backward, relu_forward

        return f"{relu_backward(RELU_DOUT, relu_forward(RELU_X)[1])[0, 2]:g}"
    raise KeyError(key)


def show_answer(key: str) -> str:
    return answer(key, exercise(key))
