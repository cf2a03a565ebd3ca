"""The lessons on the loss, the optimiser and one whole training step: numbers and figures by reference."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lesson_kit import code_of, matrices, tests_comparing  # noqa: F401  (used by the pages)
from figure_kit import C, figure_svg, new_figure
from site_kit import fmt, md_table, returns_printed, shape_text

# ----------------------------------------------------------------------------- softmax cross-entropy

#: The worked example: one sample, three classes, the right class is 0.
LOGITS = np.array([[2.0, 1.0, -1.0]])
LABELS = np.array([0])


@lru_cache(maxsize=None)
def loss_worked():
    from reference.loss import softmax_cross_entropy

    loss, dlogits = softmax_cross_entropy(LOGITS, LABELS)
    shifted = LOGITS - LOGITS.max()
    probs = np.exp(shifted) / np.exp(shifted).sum()
    return float(loss), probs[0], dlogits[0]


def loss_text() -> str:
    loss, probs, dlogits = loss_worked()
    onehot = np.eye(LOGITS.shape[1])[LABELS[0]]
    return (matrices(("logits s", LOGITS), ("softmax p", probs), (f"one-hot of label {LABELS[0]}", onehot),
                     ("∂L/∂s = p − one-hot", dlogits))
            + f"\n\nloss = −log p[{LABELS[0]}] = −log {probs[LABELS[0]]:.4f} = **{loss:.4f}**\n")


@returns_printed
def loss_figure() -> None:
    """The loss −log p of the right class, and p itself, as its logit rises above the others."""
    from reference.loss import softmax_cross_entropy

    margin = np.linspace(-6, 6, 241)
    K = 10
    logits = np.zeros((margin.size, K))
    logits[:, 0] = margin  # the right class's logit; the nine others stay at 0
    losses = [float(softmax_cross_entropy(row[None], np.array([0]))[0]) for row in logits]
    fig, ax = new_figure(470, 270)
    ax.plot(margin, losses, label="loss −log p", color=C.blue)
    ax.plot(margin, np.exp(-np.array(losses)), ls="--", label="p of the right class", color=C.green)
    ax.axhline(np.log(K), color=C.orange, lw=1.5)
    ax.text(6, np.log(K) + 0.15, f"log {K} = {np.log(K):.3f}", color=C.orange, ha="right", va="bottom")
    ax.set_xlabel(f"right class's logit minus the other {K - 1}")
    ax.grid(alpha=0.5)
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.9))
    fig.tight_layout()
    print(figure_svg(fig, "softmax cross-entropy as a function of the right class's logit"))


#: Logits for the overflow example: the first is far beyond exp's range.
BIG_LOGITS = np.array([[1000.0, 0.0, -5.0]])
BIG_LABEL = 1


def overflow_values() -> tuple[float, float]:
    """(textbook formula, reference) for BIG_LOGITS: the first overflows."""
    from reference.loss import softmax_cross_entropy

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        naive = -np.log(np.exp(BIG_LOGITS[0, BIG_LABEL]) / np.exp(BIG_LOGITS[0]).sum())
    return float(naive), float(softmax_cross_entropy(BIG_LOGITS, np.array([BIG_LABEL]))[0])


# ----------------------------------------------------------------------------- Adam

#: The worked example: one parameter, three gradients of very different size.
GRADS = (1.0, 0.01, 100.0)


@lru_cache(maxsize=None)
def adam_worked():
    """Rows of (t, g, m, v, m̂, v̂, step) for the gradients of GRADS, from reference.adam.adam_step."""
    from cifar_alexnet.training.recipes import ORIGINAL
    from reference.adam import AdamState, adam_step

    beta1, beta2 = ORIGINAL.betas
    params, state, rows = {"theta": np.zeros(1)}, AdamState(), []
    for t, g in enumerate(GRADS, start=1):
        before = params["theta"].copy()
        adam_step(params, {"theta": np.array([g])}, state, lr=ORIGINAL.lr, betas=ORIGINAL.betas)
        m, v = state.exp_avg["theta"][0], state.exp_avg_sq["theta"][0]
        rows.append((t, g, m, v, m / (1 - beta1 ** t), v / (1 - beta2 ** t), float(params["theta"][0] - before[0])))
    return rows


@returns_printed
def adam_table() -> None:
    rows = [[t, f"{g:g}", f"{m:.4g}", f"{v:.4g}", f"{mh:.4g}", f"{vh:.4g}", f"{step:.6f}"]
            for t, g, m, v, mh, vh, step in adam_worked()]
    print(md_table(["t", "gradient g", "m", "v", "m̂ = m/(1−β₁ᵗ)", "v̂ = v/(1−β₂ᵗ)", "change of θ"], rows, "rrrrrrr"))


def bias_correction_text() -> str:
    """What the first step would be without the bias correction: m and √v too small, their ratio too large."""
    from cifar_alexnet.training.recipes import ORIGINAL

    beta1, beta2 = ORIGINAL.betas
    g = 1.0
    m, v = (1 - beta1) * g, (1 - beta2) * g * g  # the averages after one step from zero
    uncorrected = ORIGINAL.lr * m / (np.sqrt(v) + 1e-8)
    steps = np.arange(1, 1001)
    ratio = dict(zip(steps.tolist(), (1 - beta1 ** steps) / np.sqrt(1 - beta2 ** steps)))  # uncorrected step / lr
    peak = max(ratio, key=ratio.get)
    return (f"- $m_1 = (1-\\beta_1)\\,g_1$ is {1 / (1 - beta1):.0f} times too small "
            f"($\\beta_1 = {beta1:g}$);\n"
            f"- $\\sqrt{{v_1}} = \\sqrt{{1-\\beta_2}}\\,|g_1|$ is {1 / np.sqrt(1 - beta2):.1f} times too small "
            f"($\\beta_2 = {beta2:g}$);\n"
            f"- so the uncorrected first step $\\eta\\, m_1/\\sqrt{{v_1}} = \\eta\\,(1-\\beta_1)/\\sqrt{{1-\\beta_2}}$ "
            f"would be {uncorrected / ORIGINAL.lr:.1f} times the learning rate, where the corrected one is "
            f"exactly the learning rate (the table above). The two errors partly cancel: not "
            f"{1 / np.sqrt(1 - beta2):.0f} times too large, but {uncorrected / ORIGINAL.lr:.1f}. After that "
            f"$m$ fills up faster than $v$ (for a steady gradient the uncorrected step is "
            f"$\\eta\\,(1-\\beta_1^t)/\\sqrt{{1-\\beta_2^t}}$): it grows to {ratio[peak]:.1f} times the learning "
            f"rate at step {peak} and is still {ratio[100]:.1f} times at step 100 and {ratio[1000]:.1f} at step "
            "1000. Without the correction, the first hundreds of steps would be several times too large.\n")


@returns_printed
def adam_figure(steps: int = 60) -> None:
    """Gradient descent and Adam on a stretched bowl f = (x² + 25 y²)/2, from the same start."""
    from reference.adam import AdamState, adam_step

    scale = np.array([1.0, 25.0])
    grad = lambda p: scale * p  # noqa: E731  (gradient of the bowl)
    start = np.array([-4.0, 1.0])
    paths = {}
    p = start.copy()
    path = [p.copy()]
    for _ in range(steps):
        p = p - 0.075 * grad(p)
        path.append(p.copy())
    paths["gradient descent, lr 0.075"] = np.array(path)
    params, state = {"p": start.copy()}, AdamState()
    path = [start.copy()]
    for _ in range(steps):
        adam_step(params, {"p": grad(params["p"])}, state, lr=0.1)
        path.append(params["p"].copy())
    paths["Adam, lr 0.1"] = np.array(path)
    xs, ys = np.meshgrid(np.linspace(-4.5, 1.5, 200), np.linspace(-1.3, 1.3, 120))
    fig, ax = new_figure(470, 300)
    ax.contour(xs, ys, (xs ** 2 + 25 * ys ** 2) / 2, levels=12, colors=C.grid, linewidths=1)
    for (label, path), colour in zip(paths.items(), (C.orange, C.blue)):
        ax.plot(path[:, 0], path[:, 1], "o-", ms=3, lw=1.5, color=colour, label=label)
    ax.plot([0], [0], "*", ms=14, color=C.fg)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=1)
    ax.set_xlabel("x")
    ax.set_ylabel("y", rotation=0)
    ax.set_aspect("equal")
    fig.tight_layout()
    print(figure_svg(fig, "gradient descent and Adam on a stretched quadratic bowl"))


# ----------------------------------------------------------------------------- one training step

#: One image of each class from the committed samples, for the training-step lesson.
STEPS = 5


@lru_cache(maxsize=None)
def step_batch():
    """(images (N, 3, 32, 32) float32, labels) — one committed sample per class, normalised with their own statistics."""
    from data_pages import samples

    images, labels, classes, _ = samples()
    picks = [int(np.flatnonzero(labels == k)[0]) for k in range(len(classes))]
    x = images[picks].astype(np.float32) / 255.0
    x = (x - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2))
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), labels[picks].astype(np.int64)


@lru_cache(maxsize=None)
def step_run():
    """``STEPS`` training steps of reference.network on one batch: (losses, first step's result, shapes)."""
    from cifar_alexnet.training.recipes import ORIGINAL
    from reference.adam import AdamState
    from reference.network import init_params, train_step

    rng = np.random.default_rng(0)
    params = init_params(rng, np.float32)
    x, labels = step_batch()
    state, losses, first = AdamState(), [], None
    for _ in range(STEPS):
        result = train_step(params, state, x, labels, lr=ORIGINAL.lr, betas=ORIGINAL.betas, rng=rng)
        losses.append(result.loss)
        first = first or result
    return losses, first


@returns_printed
def step_shapes() -> None:
    """Forward and backward shapes for this batch, layer by layer, with each parameter's gradient norm."""
    from reference.counts import count_layers

    losses, first = step_run()
    N = step_batch()[0].shape[0]
    rows = []
    for c in count_layers():
        L = c.layer
        grads = [f"`{k.rsplit('.', 1)[1]}` {fmt(first.grads[k].size)}: ‖g‖ = {np.linalg.norm(first.grads[k]):.3g}"
                 for k in (f"{L.key}.weight", f"{L.key}.bias") if L.key and k in first.grads]
        rows.append([L.name, shape_text((N,) + c.in_shape), shape_text((N,) + c.out_shape), "<br>".join(grads) or "–"])
    print(md_table(["layer", "forward: in", "forward: out (= shape of ∂L/∂out)", "parameter gradients (first step)"],
                   rows, "llll"))


@returns_printed
def step_figure() -> None:
    losses, _ = step_run()
    fig, ax = new_figure(440, 250)
    ax.plot(range(1, len(losses) + 1), losses, "o-", color=C.blue)
    ax.set_xlabel("training step (the same batch each time)")
    ax.set_ylabel("loss")
    ax.set_xticks(range(1, len(losses) + 1))
    ax.set_ylim(0, None)
    ax.axhline(np.log(10), color=C.orange, lw=1.5)
    ax.text(len(losses), np.log(10) + 0.08, "log 10", color=C.orange, ha="right", va="bottom")
    ax.grid(alpha=0.5)
    fig.tight_layout()
    print(figure_svg(fig, "the loss of one batch over repeated training steps"))


def adam_step_on_bias_noise(layer_key: str = "features.0") -> float:
    """Median |first Adam step| / lr of a layer's biases, whose float32 gradient is rounding noise (before a BatchNorm)."""
    from cifar_alexnet.training.recipes import ORIGINAL
    from reference.adam import AdamState, adam_step

    _, first = step_run()
    name = f"{layer_key}.bias"
    bias = {name: np.zeros_like(first.grads[name])}
    adam_step(bias, {name: first.grads[name]}, AdamState(), lr=ORIGINAL.lr, betas=ORIGINAL.betas)
    return float(np.median(np.abs(bias[name]))) / ORIGINAL.lr


@lru_cache(maxsize=None)
def cache_sizes() -> list[tuple[str, int]]:
    """``[(layer name, numbers per image), ...]``: what each layer's forward keeps for its backward pass.

    Counted from the caches of ``reference.network.forward`` on the lesson's batch: the arrays
    that hold every image's values (at least 2-D). Per-channel statistics (1-D) and the layer's
    own parameters, which a cache refers to but does not copy, are left out.
    """
    from reference.network import forward, init_params

    params = init_params(np.random.default_rng(0), np.float32)
    x, _ = step_batch()
    _, cache, _ = forward(params, x, training=True, rng=np.random.default_rng(0))
    sizes = []
    for layer, layer_cache in zip(cache.layers, cache.layer_caches):
        parts = layer_cache if isinstance(layer_cache, tuple) else (layer_cache,)
        arrays = [a for a in parts if isinstance(a, np.ndarray) and a.ndim >= 2
                  and not any(np.shares_memory(a, p) for p in params.values())]
        sizes.append((layer.name, sum(a.size for a in arrays) // len(x)))
    return sizes


def bias_noise_step() -> str:
    """The median first Adam step of Conv1's biases, in learning rates, marked for the test that checks it."""
    from exercise_kit import marked

    return marked("adam-bias-noise-step", f"{adam_step_on_bias_noise():.2f}")
