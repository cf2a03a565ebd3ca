"""The site's four explorable figures: their data, computed when the site is built.

Each ``*_explorer()`` function returns one figure's HTML: a ``<div class="explorable">`` that
holds the figure's data as JSON and a static picture of its first view. The scripts under
``docs/assets/javascripts/`` (``explorable-kit.js`` and one ``explore-*.js`` per figure) replace
the picture with the interactive figure; a reader without JavaScript keeps the picture, under
the same caption, which the page writes after the block.

Where the numbers come from:

* convolution explorer: the inputs and filters are data; the script multiplies and adds the
  window the reader points at, for any padding and stride offered;
* max-pool routing: every output, winner and gradient is :mod:`reference.pool`'s;
* receptive fields: every unit's field is :mod:`reference.receptive_field`'s; the effective
  fields are autograd's, on :func:`site_kit.figure_model`;
* network explorer: shapes, parameters and FLOPs are :mod:`reference.counts`'s; feature maps
  come from :func:`site_kit.figure_model`.

``tests/docs/test_docs_explorables.py`` operates each figure in Chromium and compares the
numbers it shows with :mod:`reference` for the same case.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache

import numpy as np

from site_kit import UNTRAINED_LABEL, figure_html, figure_input, figure_model, samples

# --------------------------------------------------------------------------------------
# the container every figure shares
# --------------------------------------------------------------------------------------

#: Resolution of the static pictures, seen only without JavaScript: lower than the site's figures, to keep pages light.
STATIC_DPI = 80


def b64(array) -> str:
    """A uint8 array's bytes, C order, as base64 text (the scripts decode it with ``atob``)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"b64 takes uint8 arrays, got {array.dtype}")
    return base64.b64encode(array.tobytes()).decode("ascii")


def colormap(name: str) -> str:
    """A matplotlib colour map as 256 RGB triples, uint8, base64: the figures' heat-map colours."""
    import matplotlib

    rgb = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3]
    return b64(np.round(rgb * 255).astype(np.uint8))


def explorable_html(kind: str, data: dict, static_figure: str, label: str) -> str:
    """The figure's container: its data for the script, and the picture a reader without JavaScript sees.

    ``label`` names the interactive figure for screen readers (the script puts it on the figure it
    builds). ``<`` is escaped in the JSON, so no string in the data can end the ``<script>`` element early.
    """
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    return (f'<div class="explorable" data-explorable="{kind}" data-label="{label}" markdown="0">'
            f'<script type="application/json" class="explorable-data">{text}</script>'
            f'<div class="explorable-static">{static_figure}</div></div>')


def quantise(values, top: float | None = None, levels: int = 256) -> np.ndarray:
    """Non-negative values as uint8 ``0 .. levels - 1``, the last for ``top`` (default: their maximum)."""
    values = np.asarray(values, dtype=np.float64)
    top = float(values.max()) if top is None else top
    if top <= 0:
        return np.zeros(values.shape, np.uint8)
    return np.round(np.clip(values / top, 0, 1) * (levels - 1)).astype(np.uint8)


def dims(shape) -> str:
    """``(9, 9) -> '9×9'``: a size as the figures' menus write it."""
    return "×".join(str(n) for n in shape)


def pack4(levels) -> np.ndarray:
    """Values 0..15, two to a byte (the first in the high half), flattened in C order; halves a map's size."""
    flat = np.ravel(levels).astype(np.uint8)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    return (flat[0::2] << 4) | flat[1::2]


# --------------------------------------------------------------------------------------
# 1. the convolution explorer (lessons/convolution.md)
# --------------------------------------------------------------------------------------

#: Sample images offered as inputs (indices into docs/assets/cifar10_jpeg_samples.npz).
CONV_IMAGES = (3, 16)
#: Hand-made 3x3 kernels. On a colour image the same kernel is used on each of the three channels.
CONV_KERNELS = {
    "vertical edges (Sobel)": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "horizontal edges (Sobel)": [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
    "blur (1-2-1, sixteenths)": (np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16).tolist(),
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "centre pixel (identity)": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
}
CONV_PADDINGS = (0, 1, 2, 3)
CONV_STRIDES = (1, 2, 3)
#: How many learned Conv1 filters the explorer offers once figure_model() has trained weights.
LEARNED_CONV1_FILTERS = 8
#: The first view: the first image, vertical edges, Conv1's padding 2, stride 1, one output cell.
CONV_START = {"input": 1, "filter": "vertical edges (Sobel)", "padding": 2, "stride": 1, "cell": [12, 9]}


def learned_conv1_filters(model, count: int = LEARNED_CONV1_FILTERS) -> list[dict]:
    """The ``count`` Conv1 filters of ``model`` with the largest weights (3 channels, 3x3, and the bias).

    Rounded to 3 decimals. The convolution explorer offers them next to the hand-made kernels
    when :func:`site_kit.figure_model` has trained weights: the filters of a trained network,
    applied to pixel values. The strongest filters are the clearest edge and colour detectors.
    """
    weight = model.features[0].weight.detach().double().numpy()  # (64, 3, 3, 3)
    bias = model.features[0].bias.detach().double().numpy()
    strongest = np.argsort(-np.linalg.norm(weight.reshape(len(weight), -1), axis=1), kind="stable")[:count]
    return [{"name": f"learned Conv1 filter {f}", "weights": np.round(weight[f], 3).tolist(),
             "bias": round(float(bias[f]), 3)} for f in strongest]


def conv_filters(channels: int) -> list[dict]:
    """The filter choices for an input of ``channels`` channels: ``{"name", "weights" (C, k, k), "bias"}``."""
    filters = [{"name": name, "weights": [kernel] * channels, "bias": 0.0} for name, kernel in CONV_KERNELS.items()]
    if channels == 1:
        from lesson_conv import B, W

        filters.insert(0, {"name": "the worked example's 2×2 filter", "weights": [W.tolist()], "bias": float(B)})
    else:
        model, label = figure_model()
        if label != UNTRAINED_LABEL:
            filters += learned_conv1_filters(model)
    return filters


@lru_cache(maxsize=None)
def conv_data() -> dict:
    from lesson_conv import PADDING, STRIDE, X

    images, classes = samples()
    height, width = X.shape
    inputs = [{"name": f"the worked example ({dims(X.shape)}, one channel)", "channels": ["x"], "height": height,
               "width": width, "values": X.astype(int).ravel().tolist(), "filters": conv_filters(1),
               "first": {"filter": 0, "padding": PADDING, "stride": STRIDE, "cell": [1, 1]}}]
    for index in CONV_IMAGES:
        chw = images[index].transpose(2, 0, 1)
        channels, height, width = chw.shape
        article = "an" if classes[index][0] in "aeiou" else "a"
        inputs.append({"name": f"{article} {classes[index]} ({dims((height, width))}, red, green, blue)",
                       "channels": ["R", "G", "B"], "height": height, "width": width, "pixels": b64(chw),
                       "filters": conv_filters(channels)})
    return {"inputs": inputs, "paddings": list(CONV_PADDINGS), "strides": list(CONV_STRIDES),
            "start": CONV_START, "diverging": colormap("RdBu_r")}


def conv_case(input_index: int, filter_name: str, padding: int, stride: int):
    """``(x (C, H, W) float64, filter dict, y (H_out, W_out))`` of one case, y by reference.conv.conv2d_forward."""
    from reference.conv import conv2d_forward

    spec = conv_data()["inputs"][input_index]
    if "values" in spec:
        x = np.asarray(spec["values"], np.float64).reshape(1, spec["height"], spec["width"])
    else:
        shape = (len(spec["channels"]), spec["height"], spec["width"])
        x = np.frombuffer(base64.b64decode(spec["pixels"]), np.uint8).reshape(shape).astype(np.float64)
    filt = next(f for f in spec["filters"] if f["name"] == filter_name)
    w = np.asarray(filt["weights"], np.float64)[None]
    y, _ = conv2d_forward(x[None], w, np.array([filt["bias"]]), stride=stride, padding=padding)
    return x, filt, y[0, 0]


def conv_static_figure() -> str:
    """The first view as a picture: the padded channels with the window, and the output map."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.patches import Rectangle

    start = CONV_START
    x, filt, y = conv_case(start["input"], start["filter"], start["padding"], start["stride"])
    p, s, (i, j) = start["padding"], start["stride"], start["cell"]
    k = len(filt["weights"][0])
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.9))
    for c, (ax, name) in enumerate(zip(axes, ("red", "green", "blue"))):
        # each channel from black to its full colour, as the interactive figure draws it; the padding grey
        shades = LinearSegmentedColormap.from_list(name, ["black", name]).with_extremes(bad="#bdbdbd")
        padded = np.pad(x[c], p, constant_values=np.nan)
        ax.imshow(padded, cmap=shades, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{name}, zero-padded by {p}", fontsize=9)
    top = np.abs(y).max()
    axes[3].imshow(y, cmap="RdBu_r", vmin=-top, vmax=top, interpolation="nearest")
    axes[3].set_title(f"output {y.shape[0]}×{y.shape[1]}: y[{i},{j}] = {y[i, j]:g}", fontsize=9)
    for ax in axes[:3]:
        ax.add_patch(Rectangle((j * s - 0.5, i * s - 0.5), k, k, fill=False, edgecolor="#ff6d00", lw=2))
    axes[3].add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#ff6d00", lw=2))
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return figure_html(fig, dpi=STATIC_DPI,
                       alt=f"{start['filter']} on the three channels of a sample image, padding {p}, stride {s}")


def conv_explorer() -> str:
    return explorable_html("conv", conv_data(), conv_static_figure(), "convolution explorer")


# --------------------------------------------------------------------------------------
# 2. max-pool routing (lessons/max-pool.md)
# --------------------------------------------------------------------------------------

#: Window choices: (kernel, stride, words).
POOL_WINDOWS = ((2, 2, "2×2, stride 2 (Pool1, Pool2)"), (3, 2, "3×3, stride 2 (Pool3)"),
                (2, 1, "2×2, stride 1"), (3, 3, "3×3, stride 3"))
#: The input with ties: digits 0-9 drawn with a seed for which windows of both Pool1's and Pool3's
#: shape hold their maximum more than once (three and five of their nine windows), and the maxima differ.
POOL_TIES_SEED, POOL_TIES_SIZE, POOL_TIES_HIGH = 7, 7, 10
#: The sample image whose Conv5 feature map is the third input (index into the samples).
POOL_IMAGE = 14
#: The first view: the input with ties, Pool3's window, its first window that holds a tie (pool_data sets "cell").
POOL_START = {"input": 1, "window": 1, "backward": False}


def upstream_gradient(shape) -> np.ndarray:
    """The explorer's dL/dy: 10, 20, 30, ... in row-major order (the lesson's [[10, 20], [30, 40]] for 2×2)."""
    return (10.0 * np.arange(1, int(np.prod(shape)) + 1)).reshape(shape)


def conv5_map() -> tuple[np.ndarray, str]:
    """One channel of Conv5's output (after BatchNorm and ReLU) for sample POOL_IMAGE, and its words.

    The channel whose share of zeros is nearest one half: windows of zeros tie, others do not.
    Rounded so that its largest value keeps three significant digits (at most four decimals):
    rounding more would make ties that the network's values do not have.
    """
    _, classes = samples()
    maps = stage_outputs()[(POOL_IMAGE, "Conv5")]
    zero_share = (maps == 0).mean(axis=(1, 2))
    channel = int(np.argmin(np.abs(zero_share - 0.5)))
    values = maps[channel].astype(np.float64)
    top = float(values.max())
    decimals = 2 if top <= 0 else int(np.clip(2 - np.floor(np.log10(top)), 1, 4))
    _, label = figure_model()
    words = f"Conv5 channel {channel} of a {classes[POOL_IMAGE]} ({dims(values.shape)}, weights {label})"
    return np.round(values, decimals), words


@lru_cache(maxsize=None)
def pool_data() -> dict:
    from lesson_pool import DOUT, X

    from reference.pool import maxpool2d_backward, maxpool2d_forward

    ties = np.random.default_rng(POOL_TIES_SEED).integers(0, POOL_TIES_HIGH, (POOL_TIES_SIZE, POOL_TIES_SIZE))
    feature_map, feature_words = conv5_map()
    named = [(f"the worked example ({dims(X.shape)})", X),
             (f"small integers with ties ({dims(ties.shape)})", ties.astype(np.float64)),
             (feature_words, feature_map)]
    if not np.array_equal(upstream_gradient(DOUT.shape), DOUT):
        raise ValueError("the max-pool explorer's upstream gradient no longer matches the lesson's worked example")
    inputs = []
    for name, x in named:
        cases = []
        for kernel, stride, _ in POOL_WINDOWS:
            if kernel > x.shape[0]:
                cases.append(None)
                continue
            y, cache = maxpool2d_forward(x[None, None], kernel, stride)
            dout = upstream_gradient(y.shape[2:])
            dx = maxpool2d_backward(dout[None, None], cache)
            first = cache.argmax[0, 0]  # flat index u * kernel + v of the first maximum in each window
            rows, cols = np.indices(first.shape)
            winners = np.stack([rows * stride + first // kernel, cols * stride + first % kernel], -1)
            cases.append({"height": y.shape[2], "width": y.shape[3], "y": y.ravel().tolist(),
                          "winner": winners.reshape(-1, 2).tolist(), "dy": dout.ravel().tolist(),
                          "dx": dx.ravel().tolist()})
        inputs.append({"name": name, "height": x.shape[0], "width": x.shape[1], "x": x.ravel().tolist(),
                       "cases": cases})
    kernel, stride, _ = POOL_WINDOWS[POOL_START["window"]]
    start = {**POOL_START, "cell": first_tie(named[POOL_START["input"]][1], kernel, stride)}
    return {"inputs": inputs, "windows": [{"kernel": k, "stride": s, "name": words} for k, s, words in POOL_WINDOWS],
            "start": start}


def first_tie(x: np.ndarray, kernel: int, stride: int) -> list[int]:
    """The first output (row-major) whose window holds its maximum more than once; (0, 0) if none does."""
    from reference.conv import conv2d_output_size

    size = conv2d_output_size(x.shape[0], kernel, stride)
    for i in range(size):
        for j in range(size):
            window = x[i * stride: i * stride + kernel, j * stride: j * stride + kernel]
            if (window == window.max()).sum() > 1:
                return [i, j]
    return [0, 0]


def pool_static_figure() -> str:
    """The first view as a picture: x with the window and its winner, y, dL/dy and dL/dx."""
    import matplotlib.pyplot as plt
    from lesson_kit import draw_grid
    from matplotlib.patches import Rectangle

    data = pool_data()
    spec, window = data["inputs"][POOL_START["input"]], data["windows"][POOL_START["window"]]
    case = spec["cases"][POOL_START["window"]]
    (i, j), k, s = data["start"]["cell"], window["kernel"], window["stride"]
    x = np.reshape(spec["x"], (spec["height"], spec["width"]))
    shape = (case["height"], case["width"])
    a, b = case["winner"][i * shape[1] + j]
    winners = {tuple(w) for w in case["winner"]}
    fig, ax = plt.subplots(figsize=(10, 3.1))
    n = x.shape[1]
    draw_grid(ax, x, (0, 0), winners, title="x: first maximum of each window")
    ax.add_patch(Rectangle((j * s, -i * s - k), k, k, fill=False, edgecolor="#e65100", lw=2.5))
    ax.add_patch(Rectangle((b, -a - 1), 1, 1, fill=False, edgecolor="#b71c1c", lw=2.5))
    gap = n + 1
    draw_grid(ax, np.reshape(case["y"], shape), (gap, 0), {(i, j)}, title="y")
    draw_grid(ax, np.reshape(case["dy"], shape), (gap + shape[1] + 1, 0), (), colour="#c8e6c9", title="dL/dy")
    draw_grid(ax, np.reshape(case["dx"], x.shape), (gap + 2 * shape[1] + 2, 0), winners, title="dL/dx")
    ax.set_xlim(-0.3, gap + 2 * shape[1] + 2 + n + 0.3)
    ax.set_ylim(-x.shape[0] - 0.3, 1.0)
    ax.set_aspect("equal")
    ax.axis("off")
    return figure_html(fig, dpi=STATIC_DPI,
                       alt=f"max-pool, {window['name']}, forward and backward on a {n}×{n} input with ties")


def pool_explorer() -> str:
    return explorable_html("pool", pool_data(), pool_static_figure(), "max-pool routing explorer")


# --------------------------------------------------------------------------------------
# shared by 3 and 4: activations of the figure model on sample images
# --------------------------------------------------------------------------------------

#: The stages of the network explorer: (name, words, layers of reference.architecture.LAYERS).
#: A stage's output is its last layer's; dropout (the identity when evaluating) joins the layer it feeds.
NETWORK_STAGES = (
    ("Conv1", "Conv1 + BN + ReLU", ("Conv1", "BN1", "ReLU1")),
    ("Pool1", "max-pool 2×2", ("Pool1",)),
    ("Conv2", "Conv2 + BN + ReLU", ("Conv2", "BN2", "ReLU2")),
    ("Pool2", "max-pool 2×2", ("Pool2",)),
    ("Conv3", "Conv3 + BN + ReLU", ("Conv3", "BN3", "ReLU3")),
    ("Conv4", "Conv4 + BN + ReLU", ("Conv4", "BN4", "ReLU4")),
    ("Conv5", "Conv5 + BN + ReLU", ("Conv5", "BN5", "ReLU5")),
    ("Pool3", "max-pool 3×3, stride 2", ("Pool3",)),
    ("Flatten", "Pool3's maps, one after another", ("Flatten",)),
    ("FC1", "dropout + FC1 + BN + ReLU", ("Drop1", "FC1", "BN6", "ReLU6")),
    ("FC2", "dropout + FC2 + BN + ReLU", ("Drop2", "FC2", "BN7", "ReLU7")),
    ("FC3", "FC3 + BN: the ten logits", ("FC3", "BN8")),
)
#: The sample images of the network explorer (indices into the samples).
NETWORK_IMAGES = (3, 14, 16)


def check_network_stages() -> None:
    """NETWORK_STAGES lists every layer of LAYERS once, in order (fails the build otherwise)."""
    from reference.architecture import LAYERS

    listed = [name for _, _, names in NETWORK_STAGES for name in names]
    if listed != [L.name for L in LAYERS]:
        raise ValueError(f"NETWORK_STAGES do not match reference.architecture.LAYERS: {listed}")


@lru_cache(maxsize=None)
def _all_stage_outputs() -> dict:
    """``{(sample index, stage name): float32 array}``: every stage's output for every sample used."""
    import torch

    from reference.architecture import layer

    check_network_stages()
    model, _ = figure_model()
    wanted = sorted({*NETWORK_IMAGES, POOL_IMAGE, RF_IMAGE})
    images, _ = samples()
    modules = dict(model.named_modules())
    captured = {}
    hooks = [modules[layer(names[-1]).key].register_forward_hook(
        lambda module, inputs, output, name=name: captured.__setitem__(name, output.detach().clone()))
        for name, _, names in NETWORK_STAGES if layer(names[-1]).key]
    try:
        with torch.no_grad():
            model(figure_input(images[wanted]))
    finally:
        for hook in hooks:
            hook.remove()
    captured["Flatten"] = torch.flatten(captured["Pool3"], 1)
    return {(index, name): captured[name][row].numpy() for row, index in enumerate(wanted) for name in captured}


def stage_outputs() -> dict:
    return _all_stage_outputs()


# --------------------------------------------------------------------------------------
# 3. the receptive-field explorer (receptive-fields.md)
# --------------------------------------------------------------------------------------

#: The sample image the fields are drawn on and the effective fields are measured with.
RF_IMAGE = 14
#: The layers whose units the reader picks.
RF_STAGES = ("Conv1", "Pool1", "Conv2", "Pool2", "Conv3", "Conv4", "Conv5", "Pool3")
#: The first view: Conv3's unit (4, 4).
RF_START = {"stage": "Conv3", "unit": [4, 4]}


def erf_units(n: int) -> list[int]:
    """Unit indices along one axis whose effective field is computed: first, middle, last."""
    return sorted({0, (n - 1) // 2, n - 1})


@lru_cache(maxsize=None)
def effective_fields() -> dict:
    """``{stage: {(i, j): |d(sum over channels of the stage's output at (i, j)) / d input|, (32, 32)}}``.

    The gradient is summed over the three colours. For the units :func:`erf_units` picks in each
    stage of :data:`RF_STAGES`, on sample :data:`RF_IMAGE`, with autograd on the eval-mode
    :func:`site_kit.figure_model` (a convolution's stage ends after its BatchNorm and ReLU).

    One forward pass serves every stage: a batch of one copy of the image per unit of the 3×3
    choice goes through the convolutional part once, and each stage's gradients are taken from
    that one graph.
    """
    import torch

    from reference.architecture import layer

    model, _ = figure_model()
    images, _ = samples()
    ends = {int(layer(names[-1]).key.split(".")[1]): name for name, _, names in NETWORK_STAGES if name in RF_STAGES}
    batch = figure_input(images[[RF_IMAGE]]).repeat(9, 1, 1, 1).requires_grad_(True)
    outputs, h = {}, batch
    for index, module in enumerate(model.features[: max(ends) + 1]):
        h = module(h)
        if index in ends:
            outputs[ends[index]] = h
    fields = {}
    for stage in RF_STAGES:
        out = outputs[stage]
        units = [(i, j) for i in erf_units(out.shape[-1]) for j in erf_units(out.shape[-1])]
        if len(units) != len(batch):
            raise ValueError(f"{stage}: {len(units)} units for a batch of {len(batch)} copies")
        rows, cols = [i for i, _ in units], [j for _, j in units]
        picked = out[torch.arange(len(units)), :, rows, cols]  # (units, channels)
        (gradient,) = torch.autograd.grad(picked.sum(), batch, retain_graph=True)
        magnitude = gradient.abs().sum(1).numpy()
        fields[stage] = {unit: magnitude[b].astype(np.float64) for b, unit in enumerate(units)}
    return fields


@lru_cache(maxsize=None)
def rf_data() -> dict:
    from reference.receptive_field import receptive_fields

    images, classes = samples()
    fields = {f.name: f for f in receptive_fields()}
    size = fields["Input"].size
    stages = []
    for name in RF_STAGES:
        f = fields[name]
        spans = [list(f.span(i)) for i in range(f.size)]
        erfs = []
        for (i, j), gradient in effective_fields()[name].items():
            (r0, r1), (c0, c1) = spans[i], spans[j]
            rows, cols = slice(max(r0, 0), min(r1, size - 1) + 1), slice(max(c0, 0), min(c1, size - 1) + 1)
            nonzero = np.argwhere(gradient > 0)
            support = ([int(nonzero[:, 0].min()), int(nonzero[:, 0].max()), int(nonzero[:, 1].min()),
                        int(nonzero[:, 1].max())] if len(nonzero) else None)
            erfs.append({"unit": [i, j], "origin": [rows.start, cols.start],
                         "height": rows.stop - rows.start, "width": cols.stop - cols.start,
                         "data": b64(quantise(gradient[rows, cols], gradient.max())), "support": support})
        stages.append({"name": name, "size": f.size, "r": f.r, "jump": f.j, "start": f.start, "spans": spans,
                       "effective": erfs})
    low = min(span[0] for s in stages for span in s["spans"])
    high = max(span[1] for s in stages for span in s["spans"])
    _, label = figure_model()
    return {"image": b64(images[RF_IMAGE].transpose(2, 0, 1)), "imageName": classes[RF_IMAGE], "size": size,
            "view": [low, high], "stages": stages, "start": RF_START, "weights": label,
            "heat": colormap("magma")}


def rf_static_figure() -> str:
    """The first view as a picture: the theoretical field on the image, and the effective field."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    data = rf_data()
    stage = next(s for s in data["stages"] if s["name"] == RF_START["stage"])
    i, j = RF_START["unit"]
    (r0, r1), (c0, c1) = stage["spans"][i], stage["spans"][j]
    erf = next(e for e in stage["effective"] if e["unit"] == [i, j])
    size, (low, high) = data["size"], data["view"]
    image = np.frombuffer(base64.b64decode(data["image"]), np.uint8).reshape(3, size, size).transpose(1, 2, 0)
    heat = np.zeros((size, size))
    part = np.frombuffer(base64.b64decode(erf["data"]), np.uint8).reshape(erf["height"], erf["width"])
    heat[erf["origin"][0]:erf["origin"][0] + erf["height"], erf["origin"][1]:erf["origin"][1] + erf["width"]] = part
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    extent = (-0.5, size - 0.5, size - 0.5, -0.5)
    axes[0].imshow(image, extent=extent, interpolation="nearest")
    axes[1].imshow(heat, cmap="magma", vmin=0, vmax=255, extent=extent, interpolation="nearest")
    for ax, title in zip(axes, ("theoretical field on the image", "effective field |∂ unit / ∂ input|")):
        ax.add_patch(Rectangle((low - 0.5, low - 0.5), high - low + 1, high - low + 1, facecolor="#bdbdbd",
                               hatch="//", edgecolor="#9e9e9e", zorder=-1))
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False, edgecolor="#ff6d00", lw=2))
        ax.set_xlim(low - 0.5, high + 0.5)
        ax.set_ylim(high + 0.5, low - 0.5)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"{stage['name']}, unit ({i}, {j}): rows {r0}…{r1}, columns {c0}…{c1} (r = {stage['r']})",
                 fontsize=10)
    fig.tight_layout()
    return figure_html(fig, dpi=STATIC_DPI, alt=f"receptive field of {stage['name']} unit ({i}, {j}) on a sample image")


def rf_explorer() -> str:
    return explorable_html("rf", rf_data(), rf_static_figure(), "receptive-field explorer")


# --------------------------------------------------------------------------------------
# 4. the network explorer (at-a-glance.md)
# --------------------------------------------------------------------------------------

#: How many channels of a stage's output are shown as feature maps.
NETWORK_CHANNELS = 8
#: The first view: Conv1 of the first image.
NETWORK_START = {"stage": "Conv1", "image": 0}


def network_stage_maps(index: int, stage: str) -> dict:
    """One stage's output for one sample: the first channels (or the vector), each scaled to its maximum.

    Maps are stored with 16 grey levels, two to a byte (:func:`pack4`): three images' maps of
    every stage fit in a few tens of kilobytes.
    """
    output = stage_outputs()[(index, stage)].astype(np.float64)
    if output.ndim == 3:
        shown = output[:NETWORK_CHANNELS]
        tops = shown.max(axis=(1, 2))
        return {"channels": len(shown), "height": output.shape[1], "width": output.shape[2],
                "max": [float(f"{t:.4g}") for t in tops],
                "data": b64(pack4(np.stack([quantise(m, t, 16) for m, t in zip(shown, tops)])))}
    if stage == "FC3":
        return {"logits": [float(f"{v:.4g}") for v in output]}
    width = 64
    run = {"Flatten": int(np.prod(stage_outputs()[(index, "Pool3")].shape[1:]))}.get(stage)
    return {"vector": len(output), "height": len(output) // width, "width": width, "run": run,
            "max": [float(f"{output.max():.4g}")], "data": b64(pack4(quantise(output, levels=16)))}


@lru_cache(maxsize=None)
def network_data() -> dict:
    from reference.counts import count_layers

    check_network_stages()
    counts = {c.layer.name: c for c in count_layers()}
    images, classes = samples()
    stages = [{"name": "Input", "words": "the image, 3 colour channels", "layers": [],
               "shape": list(counts["Conv1"].in_shape), "weights": 0, "macs": 0, "flops": 0}]
    for name, words, names in NETWORK_STAGES:
        rows = [{"name": n, "kind": counts[n].layer.kind, "shape": list(counts[n].out_shape),
                 "weights": counts[n].weights, "macs": counts[n].macs, "flops": counts[n].torchstat_flops}
                for n in names]
        stages.append({"name": name, "words": words, "layers": rows, "shape": rows[-1]["shape"],
                       "weights": sum(r["weights"] for r in rows), "macs": sum(r["macs"] for r in rows),
                       "flops": sum(r["flops"] for r in rows),
                       "maps": [network_stage_maps(i, name) for i in NETWORK_IMAGES]})
    _, label = figure_model()
    return {"stages": stages, "weights": label, "classes": list(dict.fromkeys(classes)),
            "images": [{"name": classes[i], "pixels": b64(images[i].transpose(2, 0, 1))} for i in NETWORK_IMAGES],
            "start": NETWORK_START, "heat": colormap("magma")}


def network_static_figure() -> str:
    """The first view as a picture: the image and the first feature maps of the first stage."""
    import matplotlib.pyplot as plt

    data = network_data()
    stage = next(s for s in data["stages"] if s["name"] == NETWORK_START["stage"])
    maps = stage["maps"][NETWORK_START["image"]]
    h, w = maps["height"], maps["width"]
    packed = np.frombuffer(base64.b64decode(maps["data"]), np.uint8)
    tiles = np.stack([packed >> 4, packed & 15], -1).ravel()[: maps["channels"] * h * w].reshape(-1, h, w)
    columns = 4
    mosaic = np.full((2 * (h + 2), columns * (w + 2)), np.nan)
    for c, tile in enumerate(tiles):
        r, q = divmod(c, columns)
        mosaic[r * (h + 2) + 1: r * (h + 2) + 1 + h, q * (w + 2) + 1: q * (w + 2) + 1 + w] = tile
    images, _ = samples()
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), gridspec_kw={"width_ratios": [1, 2.1]})
    axes[0].imshow(images[NETWORK_IMAGES[NETWORK_START["image"]]], interpolation="nearest")
    axes[0].set_title(f"input {dims(data['stages'][0]['shape'])}", fontsize=9)
    axes[1].imshow(mosaic, cmap="magma", vmin=0, vmax=15, interpolation="nearest")
    axes[1].set_title(f"{stage['words']}: channels 0–{maps['channels'] - 1} of {stage['shape'][0]} "
                      f"({data['weights']})", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return figure_html(fig, dpi=STATIC_DPI, alt=f"feature maps of {stage['name']} for a sample image")


def network_explorer() -> str:
    return explorable_html("network", network_data(), network_static_figure(), "network explorer")
