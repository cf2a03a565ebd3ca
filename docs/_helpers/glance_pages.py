"""The network at a glance: the architecture diagram and AlexNet (2012) beside this network.

The 2012 network is written down here as a layer list in the vocabulary of
``reference.architecture`` and counted by ``reference.counts``, the same code that counts
this network; ``tests/docs/test_docs_glance.py`` pins the torchvision variant's count against
``torchvision.models.alexnet``. LRN layers have no parameters and no multiply-accumulates and
``reference`` has no kind for them, so the lists leave them out (the table says where they were).
"""

from __future__ import annotations

from reference.architecture import Layer
from site_kit import fmt, md_table, returns_printed


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
    """Every activation tensor of one image as a box (height ∝ spatial size, width ∝ √channels); vectors as bars.

    Two rows: the convolutional part, then the classifier. Drawn for the desktop column; on a
    phone it keeps a readable size and scrolls sideways.
    """
    import math

    from matplotlib.patches import Patch, Rectangle

    from figure_kit import C, figure_svg, new_figure
    from reference.architecture import INPUT_SHAPE

    steps = [("Input", INPUT_SHAPE)] + [(label.split(" + ")[0], shape) for label, shape in activations()]
    maps = [(name, shape) for name, shape in steps if shape is not None and len(shape) == 3]
    rest = [(name, shape) for name, shape in steps[len(maps):]]
    width, font = 680, 13
    fig, ax = new_figure(width, 430, font=font)
    px = 3.0  # pixels per unit of spatial size
    slot = width / len(maps)
    previous, right = None, None
    for k, (name, (channels, size, _)) in enumerate(maps):
        x = slot * (k + 0.5)
        w, h = 2.2 * math.sqrt(channels), px * size
        colour = C.cell
        if previous is not None and previous != size:
            colour = C.hi if size < previous else C.hi2
        ax.add_patch(Rectangle((x - w / 2, -h / 2), w, h, facecolor=colour, edgecolor=C.fg, lw=1))
        ax.text(x, 62, name, ha="center", va="bottom")
        ax.text(x, -62, f"{channels}×{size}×{size}", ha="center", va="top")
        if right is not None:
            ax.annotate("", xy=(x - w / 2 - 3, 0), xytext=(right + 3, 0),
                        arrowprops=dict(arrowstyle="->", color=C.muted, lw=1.2))
        previous, right = size, x + w / 2
    y2, slot2 = -210, width / len(rest)
    for k, (name, shape) in enumerate(rest):
        x = slot2 * (k + 0.5)
        if shape is None:  # dropout
            ax.text(x, y2, name.replace("dropout ", "dropout\np = "), ha="center", va="center", color=C.muted)
            continue
        h = 14 * math.log2(shape[0]) / 2
        ax.add_patch(Rectangle((x - 7, y2 - h / 2), 14, h, facecolor=C.vector, edgecolor=C.fg, lw=1))
        ax.text(x, y2 + 62, name, ha="center", va="bottom")
        ax.text(x, y2 - 62, fmt(shape[0]), ha="center", va="top")
    for k in range(1, len(rest)):
        ax.annotate("", xy=(slot2 * (k + 0.5) - 26, y2), xytext=(slot2 * (k - 0.5) + 26, y2),
                    arrowprops=dict(arrowstyle="->", color=C.muted, lw=1.2))
    ax.legend(handles=[Patch(facecolor=C.hi2, edgecolor=C.fg, label="larger than its input"),
                       Patch(facecolor=C.hi, edgecolor=C.fg, label="smaller"),
                       Patch(facecolor=C.cell, edgecolor=C.fg, label="same size"),
                       Patch(facecolor=C.vector, edgecolor=C.fg, label="vector")],
              loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, handlelength=1.2, columnspacing=1.2)
    ax.set_xlim(0, width)
    ax.set_ylim(y2 - 90, 90)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.subplots_adjust(0, 0.08, 1, 1)
    print(figure_svg(fig, "the network's activations from input to logits", scroll=True))
