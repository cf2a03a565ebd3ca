"""The network at a glance: the architecture diagram and AlexNet (2012) beside this network.

The 2012 network is written down here as a layer list in the vocabulary of
``reference.architecture`` and counted by ``reference.counts``, the same code that counts
this network; ``tests/docs/test_docs_glance.py`` pins the torchvision variant's count against
``torchvision.models.alexnet``. LRN layers have no parameters and no multiply-accumulates and
``reference`` has no kind for them, so the lists leave them out (the table says where they were).
"""

from __future__ import annotations

from reference.architecture import Layer
from site_kit import figure_html, fmt, md_table, returns_printed


def _conv(name, channels, kernel, stride, padding):
    return Layer(name, "conv", None, out_channels=channels, kernel=kernel, stride=stride, padding=padding)


def _classifier(n_in_label: str, p: float, classes: int = 1000):
    return (Layer("Flatten", "flatten", None), Layer("Drop1", "dropout", None, p=p),
            Layer("FC1", "linear", None, features=4096), Layer("ReLU6", "relu", None),
            Layer("Drop2", "dropout", None, p=p), Layer("FC2", "linear", None, features=4096),
            Layer("ReLU7", "relu", None), Layer("FC3", "linear", None, features=classes))


def _features(channels, first_padding):
    c1, c2, c3, c4, c5 = channels
    pool = {"kind": "maxpool", "key": None, "kernel": 3, "stride": 2}
    return (_conv("Conv1", c1, 11, 4, first_padding), Layer("ReLU1", "relu", None), Layer("Pool1", **pool),
            _conv("Conv2", c2, 5, 1, 2), Layer("ReLU2", "relu", None), Layer("Pool2", **pool),
            _conv("Conv3", c3, 3, 1, 1), Layer("ReLU3", "relu", None),
            _conv("Conv4", c4, 3, 1, 1), Layer("ReLU4", "relu", None),
            _conv("Conv5", c5, 3, 1, 1), Layer("ReLU5", "relu", None), Layer("Pool3", **pool))


#: AlexNet as the 2012 paper describes it, as one tower (the paper split conv2, conv4 and conv5
#: into two halves across two GPUs, which halves their weights; re-implementations do not).
#: Input 227×227: the paper says 224, but 11×11 windows of stride 4 give its 55×55 maps only from 227.
ALEXNET_2012 = _features((96, 256, 384, 384, 256), 0) + _classifier("9216", 0.5)
ALEXNET_2012_INPUT = (3, 227, 227)

#: torchvision.models.alexnet: the "one weird trick" variant (64/192/384/256/256 channels,
#: padding 2 on Conv1, no LRN), input 224×224; its adaptive average pool is the identity at 6×6.
ALEXNET_TORCHVISION = _features((64, 192, 384, 256, 256), 2) + _classifier("9216", 0.5)
ALEXNET_TORCHVISION_INPUT = (3, 224, 224)


def totals_of(layers, input_shape) -> dict:
    from reference.counts import count_layers, totals

    counts = count_layers(layers, input_shape)
    return {**totals(counts), "counts": counts}


@returns_printed
def comparison_table() -> None:
    """AlexNet (2012), torchvision's AlexNet and this network, side by side; numbers from reference.counts."""
    from reference.architecture import INPUT_SHAPE, LAYERS, NUM_CLASSES

    nets = [("AlexNet (2012)", ALEXNET_2012, ALEXNET_2012_INPUT), ("torchvision `alexnet`", ALEXNET_TORCHVISION,
                                                                     ALEXNET_TORCHVISION_INPUT),
            ("this network", LAYERS, INPUT_SHAPE)]
    t = [totals_of(layers, shape) for _, layers, shape in nets]

    def convs(layers, attr):
        return "/".join(str(getattr(L, attr)) for L in layers if L.kind == "conv")

    def first(layers):
        L = next(x for x in layers if x.kind == "conv")
        return f"{L.kernel}×{L.kernel}, stride {L.stride}, padding {L.padding}"

    def pools(layers):
        return ", ".join(f"{L.kernel}/{L.stride}" for L in layers if L.kind == "maxpool")

    def hidden(layers):
        return "-".join(str(L.features) for L in layers if L.kind == "linear")

    def p(layers):
        return "/".join(sorted({f"{L.p:g}" for L in layers if L.kind == "dropout"}))

    def flat(result):
        return fmt(next(c for c in result["counts"] if c.layer.kind == "flatten").out_shape[0])

    rows = [["input", *("×".join(map(str, s)) for _, _, s in nets)],
            ["first convolution", *(first(layers) for _, layers, _ in nets)],
            ["conv channels", *(convs(layers, "out_channels") for _, layers, _ in nets)],
            ["conv kernels", *(convs(layers, "kernel") for _, layers, _ in nets)],
            ["normalisation", "LRN after Conv1, Conv2", "none", "BatchNorm after every conv and linear layer"],
            ["max-pools (window/stride)", *(pools(layers) for _, layers, _ in nets)],
            ["values into the classifier", *(flat(r) for r in t)],
            ["linear layers", *(hidden(layers) for _, layers, _ in nets)],
            ["dropout p", *(p(layers) for _, layers, _ in nets)],
            ["classes", "1000", "1000", str(NUM_CLASSES)],
            ["**learnable parameters**", *(f"**{fmt(r['weights'])}**" for r in t)],
            ["multiply-accumulates per image", *(fmt(r["macs"]) for r in t)]]
    print(md_table(["", *(name for name, _, _ in nets)], rows, "llll"))


def activations():
    """``[(label of the operation, output shape), ...]`` along LAYERS, one entry per conv/pool/flatten/linear."""
    from reference.counts import count_layers

    steps = []
    for c in count_layers():
        L = c.layer
        if L.kind in ("conv", "maxpool", "flatten", "linear"):
            steps.append([L.name, c.out_shape])
        elif L.kind in ("bn2d", "bn1d", "relu", "dropout") and steps:
            steps[-1][0] += {"bn2d": " + BN", "bn1d": " + BN", "relu": " + ReLU", "dropout": ""}[L.kind]
            if L.kind == "dropout":
                steps.append([f"dropout {L.p:g}", None])
    return steps


@returns_printed
def architecture_figure() -> None:
    """Every activation tensor as a box: height ∝ spatial size, width ∝ √channels; vectors as bars."""
    import math

    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from reference.architecture import INPUT_SHAPE

    fig, ax = plt.subplots(figsize=(13, 4.4))
    x = 0.0
    shapes = [("input", INPUT_SHAPE)] + [(label, shape) for label, shape in activations() if shape is not None]
    previous = None
    for label, shape in shapes:
        if len(shape) == 3:
            C, H, _ = shape
            w, h, colour = 0.35 * math.sqrt(C) / 2, H / 4, "#c5cae9"
            if previous is not None and len(previous) == 3 and previous[1] != H:
                colour = "#ffcc80" if H < previous[1] else "#a5d6a7"
            text = f"{C}×{H}×{H}"
        else:
            w, h, colour = 0.5, 2 + 6 * math.log10(shape[0]) / math.log10(4096), "#f8bbd0"
            text = fmt(shape[0])
        ax.add_patch(Rectangle((x, -h / 2), w, h, facecolor=colour, edgecolor="#3949ab", lw=1))
        ax.text(x + w / 2, -h / 2 - 0.4, text, ha="center", va="top", fontsize=7.5)
        ax.text(x + w / 2, h / 2 + 0.3, label.replace(" + ", "\n+ "), ha="center", va="bottom", fontsize=7)
        x += w + 0.9
        previous = shape
    ax.set_xlim(-0.3, x)
    ax.set_ylim(-6.5, 8.6)
    ax.axis("off")
    print(figure_html(fig, "the network's activations from input to logits"))
