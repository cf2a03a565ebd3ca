"""Numbers of the stage pages (Conv1 block ... classifier): shapes, parameters, MACs, FLOPs.

Each stage page keeps its own layers' numbers and links to the lesson of each kind of layer
for the generic material (equations, derivations, implementations). The formulas are written
once on the pages; here they are only evaluated, as plain text with the layer's numbers.
"""

from __future__ import annotations

from functools import lru_cache

from site_kit import fmt, md_table, repo_file, returns_printed, shape_text  # noqa: F401  (used by the pages)

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

#: layer kind -> (words, the lesson page that teaches it, relative to docs/).
LESSONS = {
    "conv": ("convolution", "lessons/convolution.md"),
    "bn2d": ("BatchNorm2d", "lessons/batchnorm.md"),
    "bn1d": ("BatchNorm1d", "lessons/batchnorm.md"),
    "relu": ("ReLU", "lessons/relu.md"),
    "maxpool": ("max-pool", "lessons/max-pool.md"),
    "flatten": ("flatten", "lessons/linear.md"),
    "dropout": ("dropout", "lessons/dropout.md"),
    "linear": ("linear (fully connected)", "lessons/linear.md"),
}


def check_stages_cover_network() -> None:
    """Every layer of LAYERS is on exactly one stage page (fails the build otherwise)."""
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


def model():
    """The PyTorch model (seed 0), for the module names and reprs shown on the pages."""
    from site_kit import initial_model

    return initial_model()


@returns_printed
def stage_overview(slug: str) -> None:
    """A table of the layers on a stage page: shapes, weights, MACs, torchstat FLOPs."""
    _, names = STAGES[slug]
    rows = []
    for name in names:
        lc = counts()[name]
        key = f"`{lc.layer.key}`" if lc.layer.key else "–"
        rows.append([f"[{name}](#{name.lower()})", key, "×".join(map(str, lc.in_shape)),
                     "×".join(map(str, lc.out_shape)), fmt(lc.weights), fmt(lc.macs), fmt(lc.torchstat_flops)])
    print(md_table(["layer", "module", "input", "output", "weights", "MACs", "FLOPs¹"], rows, "llllrrr"))


def _product(shape, value: int) -> str:
    """``"256 × 9 × 9 = 20,736"``, or just ``"2,048"`` for a one-axis shape (nothing to multiply)."""
    return fmt(value) if len(shape) == 1 else f"{shape_text(shape)} = {fmt(value)}"


def _steps(name: str) -> list[tuple[str, str, str]]:
    """``[(quantity, formula, this layer's numbers = value), ...]`` for layer ``name``, as plain text."""
    lc = counts()[name]
    L, ins, outs = lc.layer, lc.in_shape, lc.out_shape
    rows = []
    if L.kind in ("conv", "maxpool"):
        p = L.padding or 0
        rows.append(("output size", "⌊(H + 2p − k) / s⌋ + 1",
                     f"⌊({ins[1]} + 2·{p} − {L.kernel}) / {L.stride}⌋ + 1 = {outs[1]}"))
    if L.kind == "conv":
        C, F, k = ins[0], outs[0], L.kernel
        rows += [("parameters", "F·C·k² + F", f"{F}·{C}·{k}² + {F} = {fmt(lc.weights)}"),
                 ("MACs", "(F·H_out·W_out)·(C·k²)", f"{fmt(lc.out_elements)} · {fmt(C * k * k)} = {fmt(lc.macs)}"),
                 ("torchstat FLOPs", "MACs + outputs (bias)",
                  f"{fmt(lc.macs)} + {fmt(lc.out_elements)} = {fmt(lc.torchstat_flops)}")]
    elif L.kind in ("bn2d", "bn1d"):
        rows += [("parameters", "2C (γ and β)", f"2·{ins[0]} = {fmt(lc.weights)}"),
                 ("buffers", "2C (running mean, variance)", f"2·{ins[0]} = {fmt(lc.buffers)}")]
        rows.append(("torchstat FLOPs", "2 per element" if L.kind == "bn2d" else "no rule: 0",
                     f"2·{shape_text(ins)} = {fmt(lc.torchstat_flops)}" if L.kind == "bn2d"
                     else fmt(lc.torchstat_flops)))
    elif L.kind == "relu":
        rows.append(("torchstat FLOPs", "1 per element", _product(ins, lc.torchstat_flops)))
    elif L.kind == "maxpool":
        rows += [("torchstat FLOPs", "1 per input element", f"{shape_text(ins)} = {fmt(lc.torchstat_flops)}"),
                 ("comparisons (torchstat MAdd)", "(k² − 1) per output",
                  f"{L.kernel ** 2 - 1}·{shape_text(outs)} = {fmt(lc.torchstat_madd)}")]
    elif L.kind == "linear":
        rows += [("parameters", "in·out + out", f"{fmt(ins[0])}·{fmt(outs[0])} + {fmt(outs[0])} = {fmt(lc.weights)}"),
                 ("MACs = torchstat FLOPs", "in·out", f"{fmt(ins[0])}·{fmt(outs[0])} = {fmt(lc.macs)}")]
    elif L.kind == "dropout":
        rows.append(("drop probability", "p", f"{L.p}"))
    elif L.kind == "flatten":
        rows.append(("output length", "C·H·W", f"{'·'.join(map(str, ins))} = {fmt(outs[0])}"))
    return rows


@returns_printed
def layer_section(name: str) -> None:
    """One layer of a stage page: what it is (a link to its lesson) and its numbers.

    Convolutions, pools and linear layers get their derivation as a table; the layers with
    nothing to derive (BatchNorm, ReLU, dropout, flatten) one line with their counts.
    """
    from reference.architecture import layer

    L, lc = layer(name), counts()[name]
    words, lesson = LESSONS[L.kind]
    where = f"`{L.key}`" if L.key else "`torch.flatten(x, 1)` in `AlexNet.forward`"
    print(f"## {name}\n")
    if L.kind in ("conv", "maxpool", "linear"):
        print(f"A [{words}](../{lesson}) layer, module {where}: {shape_text(lc.in_shape)} in, "
              f"{shape_text(lc.out_shape)} out.\n")
        print(md_table(["quantity", "formula", "with this layer's numbers"], _steps(name), "lll"))
    else:
        numbers = "; ".join(f"{q} {v}" for q, _, v in _steps(name))
        print(f"[{words}](../{lesson}) on {shape_text(lc.in_shape)}, {where}: {numbers}.")
    print()


@returns_printed
def conv_cost_table(highlight: str) -> None:
    """Outputs, MACs per output and MACs of every convolution; the row ``highlight`` in bold."""
    rows = []
    for lc in counts().values():
        if lc.layer.kind != "conv":
            continue
        per_output = lc.in_shape[0] * lc.layer.kernel ** 2
        cells = [lc.layer.name, shape_text(lc.out_shape), fmt(lc.out_elements), f"{lc.in_shape[0]}·{lc.layer.kernel}² = "
                 f"{fmt(per_output)}", fmt(lc.macs)]
        rows.append([f"**{c}**" for c in cells] if lc.layer.name == highlight else cells)
    print(md_table(["layer", "output", "outputs F·H·W", "MACs per output C·k²", "MACs"], rows, "llrrr"))
