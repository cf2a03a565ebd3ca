"""What the trained network learned: its filters, feature maps, confusions, mistakes and where it looks.

Everything here comes from the weights that ship with the package (``site_kit.figure_model``)
and from the records ``scripts/ship_weights.py`` wrote beside the run (``docs/runs/<run>/``):
the build has no data set, so the test-set numbers are read from those records, and only the
committed sample images go through the network at build time.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np

from figure_kit import C, figure_svg, new_figure
from site_kit import DOCS_DIR, fmt, md_table, repo_file, returns_printed

#: The sample images of the occlusion figure (the first test image of these classes).
OCCLUDED = ("bird", "cat", "deer", "dog")
#: The grey square slid over the image: side and step, in pixels.
PATCH, STEP = 8, 4
#: Feature maps shown per stage.
MAPS_PER_STAGE = 6


def _weights():
    from cifar_alexnet.weights import AlexNetWeights

    return AlexNetWeights.DEFAULT


@functools.lru_cache(maxsize=None)
def record(name: str):
    """A file of the shipped run's record: ``evaluation.json`` (parsed) or an ``.npz`` (loaded)."""
    path = DOCS_DIR / "runs" / _weights().value.run / name
    if name.endswith(".json"):
        return json.loads(path.read_text(encoding="utf-8"))
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def weights_sentence() -> str:
    """One sentence naming the weights: recipe, epoch, data, measured accuracy, file."""
    meta = _weights().meta
    return (f"The weights are those of epoch {meta['epoch']} of the {meta['recipe']} recipe's "
            f"{meta['epochs_of_run']}, trained by this package on the {meta['data']} (the run is recorded in "
            f"{repo_file(meta['run'])}; its curves are on the [training page](training.md)); they score "
            f"**{meta['test_acc']:.2f} %** on its 10,000 test images. They ship with the package as "
            f"`{meta['file']}`: `cifar_alexnet.weights.alexnet(weights=\"DEFAULT\")` returns them.")


# ----------------------------------------------------------------------------- Conv1's filters


def conv1_weights() -> np.ndarray:
    """Conv1's weights ``(64, 3, 3, 3)`` as float64."""
    from site_kit import figure_model

    model, _ = figure_model()
    return model.features[0].weight.detach().double().numpy()


def filter_rgb(weight: np.ndarray) -> np.ndarray:
    """One filter ``(3, k, k)`` as an RGB picture ``(k, k, 3)`` in [0, 1]: 0.5 is a zero weight, the largest |w| reaches 0 or 1."""
    return 0.5 + 0.5 * weight.transpose(1, 2, 0) / np.abs(weight).max()


def mosaic(tiles: np.ndarray, columns: int = 8, gap: int = 1) -> np.ndarray:
    """Tiles ``(N, k, k, 4)`` RGBA on one transparent canvas, ``columns`` to a row, ``gap`` pixels apart.

    One image instead of a grid of small axes: the figure draws in a fraction of the time.
    """
    n, k = len(tiles), tiles.shape[1]
    rows = -(-n // columns)
    canvas = np.zeros((rows * (k + gap) - gap, columns * (k + gap) - gap, 4))
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        canvas[r * (k + gap):r * (k + gap) + k, c * (k + gap):c * (k + gap) + k] = tile
    return canvas


def _opaque(rgb: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb, np.ones(rgb.shape[:-1] + (1,))], axis=-1)


@returns_printed
def conv1_filters_figure() -> None:
    weights = conv1_weights()
    order = np.argsort(-np.linalg.norm(weights.reshape(len(weights), -1), axis=1), kind="stable")
    fig, ax = new_figure(470, 520)
    ax.imshow(mosaic(np.stack([_opaque(filter_rgb(weights[f])) for f in order])), interpolation="nearest")
    ax.axis("off")
    ax.set_title("the 64 filters of Conv1, strongest first")
    fig.text(0.5, 0.02, "each 3×3 square holds one filter's red, green and blue weights", ha="center")
    print(figure_svg(fig, "the 64 learned 3x3 colour filters of Conv1"))


#: A filter is called an edge detector when a plane (a straight ramp from dark to light) explains
#: at least this share of its brightness pattern.
EDGE_FIT = 0.7


def brightness(weights: np.ndarray) -> np.ndarray:
    """The part of each filter ``(F, 3, k, k)`` that weighs the three channels alike: ``(F, k, k)``."""
    return weights.mean(axis=1)


def edge_fit(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per filter: how well a ramp fits its brightness pattern (R², 0..1), the brightness part's share
    of the filter's squared weights, and the ramp's direction in degrees (0: dark left, light right)."""
    k = weights.shape[-1]
    xs, ys = np.meshgrid(np.arange(k) - (k - 1) / 2, np.arange(k) - (k - 1) / 2)
    ramp = np.stack([xs.ravel(), ys.ravel()], axis=1)  # (k*k, 2)
    fits, angles = [], []
    for pattern in brightness(weights):
        z = (pattern - pattern.mean()).ravel()
        coef, *_ = np.linalg.lstsq(ramp, z, rcond=None)
        fits.append(1 - ((z - ramp @ coef) ** 2).sum() / max(float((z ** 2).sum()), 1e-12))
        angles.append(float(np.degrees(np.arctan2(coef[1], coef[0]))))
    share = weights.shape[1] * (brightness(weights) ** 2).sum(axis=(1, 2)) / (weights ** 2).sum(axis=(1, 2, 3))
    return np.array(fits), share, np.array(angles)


def edge_filters() -> tuple[int, int]:
    """The learned filters most like a vertical-edge and a horizontal-edge detector (as the Sobel pair)."""
    fits, share, angles = edge_fit(conv1_weights())
    score = fits * share
    vertical = score * np.abs(np.cos(np.radians(angles)))  # a left-right ramp finds vertical edges
    horizontal = score * np.abs(np.sin(np.radians(angles)))
    return int(np.argmax(vertical)), int(np.argmax(horizontal))


@returns_printed
def brightness_figure() -> None:
    from matplotlib.patches import Rectangle

    weights = conv1_weights()
    fits, share, _ = edge_fit(weights)
    order = np.argsort(-fits * share, kind="stable")
    patterns = brightness(weights)
    grey = [0.5 + 0.5 * patterns[f] / np.abs(patterns[f]).max() for f in order]  # (3, 3) in [0, 1]
    fig, ax = new_figure(470, 520)
    ax.imshow(mosaic(np.stack([_opaque(np.repeat(g[..., None], 3, axis=-1)) for g in grey])), interpolation="nearest")
    k, gap = patterns.shape[-1], 1
    for index, f in enumerate(order):
        if fits[f] >= EDGE_FIT:
            r, c = divmod(index, 8)
            ax.add_patch(Rectangle((c * (k + gap) - 0.5, r * (k + gap) - 0.5), k, k, fill=False, edgecolor=C.orange,
                                   linewidth=3))
    ax.axis("off")
    ax.set_title("the brightness part of each filter, most edge-like first")
    fig.text(0.5, 0.02, f"orange frame: a ramp explains ≥ {100 * EDGE_FIT:.0f} % of the pattern", ha="center")
    print(figure_svg(fig, "the brightness pattern of each Conv1 filter, edge detectors framed"))


def edge_count() -> str:
    fits, _, _ = edge_fit(conv1_weights())
    return f"{int((fits >= EDGE_FIT).sum())} of the {len(fits)}"


@returns_printed
def learned_filter_at_work() -> None:
    """The two learned filters most like the Sobel pair, on the convolution lesson's image, with their maps."""
    from lesson_conv import EDGE_IMAGE
    from reference.conv import conv2d_forward
    from site_kit import figure_input, figure_model, samples

    model, _ = figure_model()
    images, classes = samples()
    image = images[EDGE_IMAGE]
    chosen = edge_filters()
    weights, bias = conv1_weights(), model.features[0].bias.detach().double().numpy()
    x = figure_input(image[None]).double().numpy()  # (1, 3, 32, 32), normalised as in training
    maps = [conv2d_forward(x, weights[f:f + 1], bias[f:f + 1], stride=1, padding=1)[0][0, 0] for f in chosen]
    limit = max(float(np.abs(m).max()) for m in maps)
    fig, axes = new_figure(470, 330, nrows=2, ncols=3)
    axes[0, 0].imshow(image)
    axes[0, 0].set_title(f"input: a {classes[EDGE_IMAGE]}")
    axes[1, 0].axis("off")
    _, _, angles = edge_fit(weights)
    for row, f, m in zip(axes, chosen, maps):
        row[1].imshow(filter_rgb(weights[f]), interpolation="nearest")
        row[1].set_title(f"filter {f}: ramp {angles[f]:.0f}°")
        shown = row[2].imshow(m, cmap="RdBu_r", vmin=-limit, vmax=limit)
        row[2].set_title("its feature map")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.subplots_adjust(0, 0.04, 1, 0.93, wspace=0.1, hspace=0.3)
    bar = fig.colorbar(shown, cax=fig.add_axes([0.03, 0.2, 0.28, 0.04]), orientation="horizontal")
    bar.set_label("filter response")
    print(figure_svg(fig, "two learned Conv1 filters applied to a sample image, and their feature maps"))


# ----------------------------------------------------------------------------- feature maps


def sample(name: str) -> np.ndarray:
    """The committed test image ``docs/assets/samples/<name>.png`` as uint8 ``(32, 32, 3)``."""
    from PIL import Image

    return np.asarray(Image.open(DOCS_DIR / "assets" / "samples" / f"{name}.png").convert("RGB"))


#: Where the feature maps are read: the index of the stage's last module in ``model.features``.
STAGES = (("Pool1", 3), ("Pool2", 7), ("Conv3", 10), ("Conv4", 13), ("Pool3", 17))


def stage_maps(image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``[(stage, maps (C, H, W))]`` after each stage (ReLU applied), for one image."""
    import torch

    from site_kit import figure_input, figure_model

    model, _ = figure_model()
    x, out = figure_input(image[None]), []
    with torch.no_grad():
        for index, module in enumerate(model.features):
            x = module(x)
            for name, last in STAGES:
                if index == last:
                    out.append((name, x[0].numpy()))
    return out


@returns_printed
def feature_maps_figure() -> None:
    image = sample("horse")
    stages = stage_maps(image)
    fig, axes = new_figure(470, 92 * len(stages) + 30, nrows=len(stages), ncols=MAPS_PER_STAGE + 1)
    for row, (name, maps) in zip(axes, stages):
        strongest = np.argsort(-maps.std(axis=(1, 2)), kind="stable")[:MAPS_PER_STAGE]  # the most contrast
        row[0].imshow(image)
        row[0].set_ylabel(f"{name}\n{maps.shape[1]}×{maps.shape[2]}", rotation=0, ha="right", va="center")
        for ax, c in zip(row[1:], strongest):
            ax.imshow(maps[c], cmap="magma", vmin=0, interpolation="nearest")
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
    fig.subplots_adjust(0.15, 0.02, 1, 0.93, wspace=0.08, hspace=0.12)
    fig.suptitle(f"the {MAPS_PER_STAGE} maps of most contrast at each stage")
    print(figure_svg(fig, "feature maps of a sample image after each stage of the trained network"))


# ----------------------------------------------------------------------------- the test set


def confusion() -> tuple[np.ndarray, list[str]]:
    evaluation = record("evaluation.json")
    return np.array(evaluation["confusion"]), evaluation["classes"]


@returns_printed
def confusion_figure() -> None:
    matrix, classes = confusion()
    rows = matrix / matrix.sum(axis=1, keepdims=True)
    fig, ax = new_figure(560, 500)
    shown = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for t in range(len(classes)):
        for p in range(len(classes)):
            if matrix[t, p]:
                ax.text(p, t, str(matrix[t, p]), ha="center", va="center",
                        color=C.on_dark if rows[t, p] > 0.5 else C.on_light)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("fraction of the true class")
    print(figure_svg(fig, "confusion matrix of the shipped weights on the test set", scroll=True))


def per_class_table() -> str:
    matrix, classes = confusion()
    rows = sorted(zip(classes, np.diag(matrix), matrix.sum(axis=1)), key=lambda row: row[1] / row[2])
    return md_table(["class", "test images", "correct", "accuracy"],
                    [[name, fmt(int(total)), fmt(int(right)), f"{100 * right / total:.1f} %"]
                     for name, right, total in rows], "lrrr")


def confused_pairs_table() -> str:
    matrix, classes = confusion()
    pairs = record("evaluation.json")["confused_pairs"]
    return md_table(["true class", "taken for", "test images", "share of the true class"],
                    [[p["true"], p["predicted"], p["count"],
                      f"{100 * p['count'] / matrix[classes.index(p['true'])].sum():.1f} %"] for p in pairs], "llrr")


def worst_pair() -> str:
    pair = record("evaluation.json")["confused_pairs"][0]
    return f"{pair['true']} taken for {pair['predicted']} ({pair['count']} of 1,000)"


@returns_printed
def mistakes_figure() -> None:
    """One row per confused pair: the misclassified test images the network was surest of."""
    mistakes = record("mistakes.npz")
    classes = [str(c) for c in mistakes["classes"]]
    pairs = list(dict.fromkeys(zip(mistakes["true"].tolist(), mistakes["predicted"].tolist())))
    columns = max(sum(1 for pair in zip(mistakes["true"], mistakes["predicted"]) if tuple(pair) == p) for p in pairs)
    fig, axes = new_figure(440, 96 * len(pairs), nrows=len(pairs), ncols=columns, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for row, (t, p) in zip(axes, pairs):
        row[0].set_ylabel(f"{classes[t]}\n→ {classes[p]}", rotation=0, ha="right", va="center")
        chosen = [i for i in range(len(mistakes["images"])) if (mistakes["true"][i], mistakes["predicted"][i]) == (t, p)]
        for ax, i in zip(row, chosen):
            ax.imshow(mistakes["images"][i])
            ax.set_title(probability_label(float(mistakes["confidence"][i])), pad=2)
    fig.subplots_adjust(0.24, 0, 1, 1, wspace=0.08, hspace=0.32)
    print(figure_svg(fig, "test images of the most confused pairs, with the wrong answer and its probability"))


def probability_label(p: float) -> str:
    """A probability as a percentage that is never rounded up to a certain "100 %": ``> 99.9 %`` above 0.999."""
    return "> 99.9 %" if p > 0.999 else f"{math.floor(1000 * p) / 10:.1f} %"


# ----------------------------------------------------------------------------- where it looks


def confident_share(threshold: float) -> float:
    """The percentage of the test images the shipped weights answer with a probability above ``threshold``
    (from the recorded per-image confidences)."""
    return 100 * float((record("test_predictions.npz")["confidence"].astype(np.float64) > threshold).mean())


def log_odds(logits, c: int):
    """The log-odds of class ``c``, ``log p_c / (1 - p_c)``, from logits of shape ``(..., classes)``."""
    import torch

    others = torch.cat([logits[..., :c], logits[..., c + 1:]], dim=-1)
    return logits[..., c] - torch.logsumexp(others, dim=-1)


def occlusion_maps(image: np.ndarray) -> tuple[int, np.ndarray]:
    """``(predicted class, drop)``: how much the log-odds of the predicted class fall when a
    ``PATCH``×``PATCH`` square of the training images' mean colour covers each position (steps of
    ``STEP``); ``drop[i, j]`` for the square whose top-left corner is at ``(STEP*i, STEP*j)``.

    Log-odds, not probabilities: the network answers most test images at over 99.9 %, where a
    probability (and its logarithm) hardly moves even when the evidence for the answer halves;
    the log-odds move with that evidence."""
    import torch

    from site_kit import figure_input, figure_model

    model, _ = figure_model()
    positions = range(0, image.shape[0] - PATCH + 1, STEP)
    grey = np.array(_weights().meta["mean"]) * 255  # the training images' mean colour: "no information"
    covered = np.repeat(image[None], len(positions) ** 2, axis=0).astype(np.float64)
    for k, (i, j) in enumerate((i, j) for i in positions for j in positions):
        covered[k, i:i + PATCH, j:j + PATCH] = grey
    with torch.no_grad():
        base = model(figure_input(image[None]))[0]
        covered_logits = model(figure_input(np.round(covered).astype(np.uint8)))
    c = int(base.argmax())
    drop = float(log_odds(base, c)) - log_odds(covered_logits, c).numpy()
    return c, drop.reshape(len(positions), len(positions))


@returns_printed
def occlusion_figure() -> None:
    """Each sample image beside its occlusion map, two pairs a row, on one colour scale."""
    classes = _weights().meta["categories"]
    maps = [(sample(name), *occlusion_maps(sample(name))) for name in OCCLUDED]
    limit = max(float(np.abs(drop).max()) for *_, drop in maps)
    half = PATCH / 2 - 0.5  # the centre of the first square, in pixels
    fig, axes = new_figure(440, 300, nrows=2, ncols=4)
    for k, (image, c, drop) in enumerate(maps):
        picture, heat = axes[k // 2, 2 * (k % 2)], axes[k // 2, 2 * (k % 2) + 1]
        picture.imshow(image)
        picture.set_title(f"{OCCLUDED[k]} → “{classes[c]}”")
        extent = (half - STEP / 2, half + STEP * (drop.shape[1] - 0.5), half + STEP * (drop.shape[0] - 0.5),
                  half - STEP / 2)
        shown = heat.imshow(drop, cmap="RdBu_r", vmin=-limit, vmax=limit, extent=extent)
        heat.set_xlim(-0.5, 31.5)
        heat.set_ylim(31.5, -0.5)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.subplots_adjust(0, 0.2, 1, 0.93, wspace=0.06, hspace=0.3)
    bar = fig.colorbar(shown, cax=fig.add_axes([0.1, 0.08, 0.8, 0.04]), orientation="horizontal")
    bar.set_label("fall of the answer's log-odds when covered")
    print(figure_svg(fig, "occlusion maps: where covering the image costs the network its answer"))
