"""The BatchNorm lesson: worked example, one channel normalised over a batch, the zero bias gradient."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lesson_kit import code_of, matrices, tests_comparing  # noqa: F401  (used by the page)
from figure_kit import C, figure_svg, new_figure
from site_kit import fence, fmt, md_table, returns_printed

#: The worked example: one channel, a batch of four values, gamma and beta, an upstream gradient.
X = np.array([1.0, 2.0, 4.0, 9.0])
GAMMA, BETA = 2.0, 0.5
DOUT = np.array([1.0, 0.0, 0.0, 0.0])
EPS = 1e-5


@lru_cache(maxsize=None)
def worked():
    """(out, x_hat, mean, var, dx, dgamma, dbeta) of the worked example, by reference.batchnorm."""
    from reference.batchnorm import batchnorm_backward, batchnorm_forward

    x = X[:, None]  # (N, C) = (4, 1): BatchNorm1d of one feature
    out, cache, _ = batchnorm_forward(x, np.array([GAMMA]), np.array([BETA]), np.zeros(1), np.ones(1),
                                      training=True, eps=EPS)
    dx, dgamma, dbeta = batchnorm_backward(DOUT[:, None], cache)
    var = 1.0 / cache.inv_std[0] ** 2 - EPS
    return out[:, 0], cache.x_hat[:, 0], cache.mean[0], var, dx[:, 0], dgamma[0], dbeta[0]


def worked_text() -> str:
    out, x_hat, mean, var, dx, dgamma, dbeta = worked()
    return (matrices(("x", X), ("x̂", x_hat), (f"y = {GAMMA:g}·x̂ + {BETA:g}", out), ("dL/dy", DOUT), ("dL/dx", dx))
            + f"\n\nmean {mean:g}, biased variance {var:g}; ∂L/∂β = {dbeta:.4g}, ∂L/∂γ = {dgamma:.4f}; "
              f"sum of ∂L/∂x = {dx.sum():.1e}, sum of ∂L/∂x · x̂ = {(dx * x_hat).sum():.1e}.\n")


@lru_cache(maxsize=None)
def conv1_channel(channel: int = 0):
    """Conv1's output for one channel over the committed sample images, before and after BN1 (train mode)."""
    import torch

    from site_kit import initial_model, sample_batch

    model = initial_model().train()
    images = sample_batch()  # (N, 3, 32, 32), real CIFAR-10 images
    with torch.no_grad():
        z = model.features[0](torch.from_numpy(images))  # Conv1
        y = model.features[1](z)  # BN1 (gamma = 1, beta = 0 at initialisation)
    return z[:, channel].numpy().ravel(), y[:, channel].numpy().ravel(), len(images)


@returns_printed
def channel_figure() -> None:
    before, after, n = conv1_channel()
    fig, axes = new_figure(470, 250, ncols=2, sharey=True)
    for ax, values, title in ((axes[0], before, "Conv1, channel 0"), (axes[1], after, "after BN1")):
        ax.hist(values, bins=50, color=C.blue)
        ax.axvline(values.mean(), color=C.orange, lw=2.5)
        ax.set_title(f"{title}\nmean {round(values.mean(), 2) + 0:.2f}, std {values.std():.2f}")
        ax.set_xlabel("value")
    axes[0].set_ylabel("count")
    fig.tight_layout()
    print(figure_svg(fig, "one channel of Conv1 before and after BatchNorm over a batch"))


def channel_counts() -> str:
    """How many values the figure's histograms hold: images × positions."""
    before, _, n = conv1_channel()
    return f"{fmt(before.size)} values ({n} images × {before.size // n} positions)"


@lru_cache(maxsize=None)
def bias_gradients():
    """Largest |gradient| of each conv's bias and weight after one train-mode step of AlexNet (float64)."""
    import torch

    from site_kit import initial_model

    model = initial_model().double().train()
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32, dtype=torch.float64)
    labels = torch.arange(8) % 10
    torch.nn.functional.cross_entropy(model(x), labels).backward()
    rows = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            rows.append((name, module.weight.grad.abs().max().item(), module.bias.grad.abs().max().item()))
    return rows


@returns_printed
def bias_table() -> None:
    from reference.architecture import LAYERS

    names = {L.key: L.name for L in LAYERS}
    rows = [[names[key], f"`{key}`", f"{w:.2e}", f"{b:.1e}"] for key, w, b in bias_gradients()]
    print(md_table(["layer", "module", "largest ∂L/∂w (abs.)", "largest ∂L/∂b (abs.)"], rows, "llrr"))
