"""The analytic layer table (:mod:`reference.counts`, :mod:`reference.table`, :mod:`reference.errata`).

Two independent sources check the analytic numbers:

* the PyTorch model itself: output shapes from forward hooks, ``numel`` of parameters and
  buffers, multiply-accumulates from ``torch.utils.flop_counter.FlopCounterMode``;
* the ``torchstat`` output printed in the original write-up, transcribed below
  (:data:`TORCHSTAT_TRANSCRIBED`) from ``../shared/original/000_e87e2e1067e7d35c.txt``.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cifar_alexnet.model import AlexNet
from reference.architecture import LAYERS, TABLE_ROWS, build_layers
from reference.counts import count_layers, totals
from reference.errata import ORIGINAL_TABLE_MARKDOWN, ORIGINAL_TORCHSTAT_TOTALS, find_errata, parse_original_table
from reference.table import layer_table, to_csv, to_json, to_markdown

# Transcribed from the torchstat output in the original write-up (``stat(net, (3, 32, 32))``):
# module name -> (output shape, params, MAdd, Flops). Module names renamed features2 -> features,
# classifier2 -> classifier as in cifar_alexnet.model.
TORCHSTAT_TRANSCRIBED = {
    "features.0": ((64, 34, 34), 1792, 3_995_136, 2_071_552),
    "features.1": ((64, 34, 34), 128, 295_936, 147_968),
    "features.2": ((64, 34, 34), 0, 73_984, 73_984),
    "features.3": ((64, 17, 17), 0, 55_488, 73_984),
    "features.4": ((192, 19, 19), 110_784, 79_847_424, 39_993_024),
    "features.5": ((192, 19, 19), 384, 277_248, 138_624),
    "features.6": ((192, 19, 19), 0, 69_312, 69_312),
    "features.7": ((192, 9, 9), 0, 46_656, 69_312),
    "features.8": ((384, 9, 9), 663_936, 107_495_424, 53_778_816),
    "features.9": ((384, 9, 9), 768, 124_416, 62_208),
    "features.10": ((384, 9, 9), 0, 31_104, 31_104),
    "features.11": ((256, 9, 9), 884_992, 143_327_232, 71_684_352),
    "features.12": ((256, 9, 9), 512, 82_944, 41_472),
    "features.13": ((256, 9, 9), 0, 20_736, 20_736),
    "features.14": ((256, 9, 9), 590_080, 95_551_488, 47_796_480),
    "features.15": ((256, 9, 9), 512, 82_944, 41_472),
    "features.16": ((256, 9, 9), 0, 20_736, 20_736),
    "features.17": ((256, 4, 4), 0, 32_768, 20_736),
    "classifier.0": ((4096,), 0, 0, 0),
    "classifier.1": ((2048,), 8_390_656, 16_775_168, 8_388_608),
    "classifier.2": ((2048,), 4096, 0, 0),
    "classifier.3": ((2048,), 0, 2048, 2048),
    "classifier.4": ((2048,), 0, 0, 0),
    "classifier.5": ((2048,), 4_196_352, 8_386_560, 4_194_304),
    "classifier.6": ((2048,), 4096, 0, 0),
    "classifier.7": ((2048,), 0, 2048, 2048),
    "classifier.8": ((10,), 20_490, 40_950, 20_480),
    "classifier.9": ((10,), 20, 0, 0),
}
#: The write-up's table (b) Total row: number of neurons (transcribed).
ORIGINAL_TOTAL_NEURONS = 219_978


def measure_torch(model: nn.Module, input_shape=(3, 32, 32)):
    """Per module: output shape (hooks) and FlopCounterMode's FLOPs, for one sample in eval mode."""
    shapes = {}
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
        for name, module in model.named_modules()
        if name and not list(module.children())
    ]
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape))
    for handle in handles:
        handle.remove()
    flops = {name.split(".", 1)[1]: sum(c.values()) for name, c in counter.get_flop_counts().items() if "." in name}
    return shapes, flops


def test_every_layer_matches_the_torch_model():
    model = AlexNet()
    shapes, flops = measure_torch(model)
    counts = count_layers()
    for layer, c in zip(LAYERS, counts):
        if layer.key is None:  # flatten is torch.flatten inside forward(); FC1's input checks it
            assert c.out_shape == (4096,)
            continue
        module = model.get_submodule(layer.key)
        assert c.out_shape == shapes[layer.key], layer.name
        assert c.weights == sum(p.numel() for p in module.parameters()), layer.name
        assert c.buffers == sum(b.numel() for b in module.buffers() if b.is_floating_point()), layer.name
        if layer.kind in ("conv", "linear"):
            assert c.macs * 2 == flops[layer.key], layer.name
        else:
            assert c.macs == 0 and flops.get(layer.key, 0) == 0, layer.name
    assert totals(counts)["macs"] * 2 == sum(v for k, v in flops.items() if k.count(".") == 1)


def test_every_layer_matches_the_transcribed_torchstat_output():
    for layer, c in zip(LAYERS, count_layers()):
        if layer.key is None:
            continue
        shape, params, madd, flops = TORCHSTAT_TRANSCRIBED[layer.key]
        assert (c.out_shape, c.weights, c.torchstat_madd, c.torchstat_flops) == (shape, params, madd, flops), layer.name


def test_totals_are_the_published_totals():
    total = totals(count_layers())
    assert total["weights"] == ORIGINAL_TORCHSTAT_TOTALS["weights"] == 14_869_598
    assert total["torchstat_flops"] == ORIGINAL_TORCHSTAT_TOTALS["torchstat_flops"] == 228_743_360
    assert total["torchstat_madd"] == ORIGINAL_TORCHSTAT_TOTALS["torchstat_madd"] == 456_637_750
    assert total["neurons"] == ORIGINAL_TOTAL_NEURONS
    rows = layer_table()
    assert rows[-1].name == "Total" and rows[-1].weights == total["weights"]


def test_table_rows_are_the_original_rows():
    rows = layer_table()
    assert [r.name for r in rows] == ["Input", *TABLE_ROWS, "Total"]
    assert [r.name for r in rows] == [r.name for r in parse_original_table()]


@given(hidden=st.integers(1, 4096), num_classes=st.integers(1, 1000))
def test_counts_for_other_widths_match_torch(hidden, num_classes):
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        model = AlexNet(num_classes=num_classes, hidden=hidden)
        out = model.classifier(torch.empty(2, 4096))
    counts = count_layers(build_layers(hidden=hidden, num_classes=num_classes))
    assert totals(counts)["weights"] == sum(p.numel() for p in model.parameters())
    assert counts[-1].out_shape == tuple(out.shape[1:])


@given(size=st.integers(7, 96))
def test_conv_stack_shapes_for_other_input_sizes(size):
    """``features`` accepts any input of at least 7x7; the analytic shapes follow it layer by layer."""
    with torch.device("meta"):
        features = AlexNet().features
        x = torch.empty(1, 3, size, size)
        expected = []
        for module in features:
            x = module(x)
            expected.append(tuple(x.shape[1:]))
    counts = count_layers(LAYERS[: len(features)], (3, size, size))
    assert [c.out_shape for c in counts] == expected


def test_output_shape_errors_name_the_layer():
    with pytest.raises(ValueError, match="Pool3"):
        count_layers(LAYERS, (3, 4, 4))


# ----------------------------------------------------------------------------- errata


def test_errata_are_the_known_mistakes():
    """The comparison finds exactly the mistakes one finds by reading the printed table."""
    errata = find_errata(layer_table())
    found = {(e.row, e.column) for e in errata}
    expected = {("(header)", "# of Conv Ops (FLOPS)"), ("Pool3", "Stride / Zero Padding"),
                ("Total", "# of Conv Ops (FLOPS)"), ("Total", "Receptive Field")}
    expected |= {(name, "Receptive Field") for name in ("Conv2", "Conv3", "Conv4", "Conv5", "Pool1", "Pool2", "Pool3")}
    expected |= {(name, "# of Conv Ops (FLOPS)") for name in ("BN6", "BN7", "BN8")}
    assert found == expected
    by_cell = {(e.row, e.column): e for e in errata}
    assert by_cell[("Conv5", "Receptive Field")].printed == "11"
    assert by_cell[("Conv5", "Receptive Field")].correct == "34"
    assert by_cell[("Pool3", "Stride / Zero Padding")].correct == "2 / 0"
    assert "219,968" in by_cell[("Total", "# of Conv Ops (FLOPS)")].reason  # the ReLU FLOPs


def test_errata_catch_a_wrong_cell():
    """A printed value changed on purpose is reported (the comparison can fail)."""
    tampered = ORIGINAL_TABLE_MARKDOWN.replace("$663,936$", "$663,963$").replace("$9\\times9\\times384$", "$9\\times9\\times348$", 1)
    errata = find_errata(layer_table(), parse_original_table(tampered))
    cells = {(e.row, e.column) for e in errata}
    assert ("Conv3", "# of Weights") in cells
    assert ("Conv3", "Feature Map Size") in cells
    assert ("Total", "# of Weights") in cells  # the Total no longer is the sum of the rows


# ----------------------------------------------------------------------------- output formats


def run_cli(fmt: str) -> str:
    result = subprocess.run([sys.executable, "-m", "reference.table", "--format", fmt],
                            capture_output=True, text=True, check=True)
    return result.stdout


def test_cli_markdown_has_the_totals_and_errata():
    text = run_cli("md")
    for number in ("14,869,598", "219,978", "228,743,360", "456,637,750"):
        assert number in text
    assert "Errata" in text and "Pool3" in text
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + len(TABLE_ROWS) + 2  # header, rule, Input, rows, Total


def test_cli_csv_parses():
    rows = list(csv.DictReader(io.StringIO(run_cli("csv"))))
    assert [r["name"] for r in rows] == ["Input", *TABLE_ROWS, "Total"]
    total = rows[-1]
    assert int(total["weights"]) == 14_869_598 and int(total["torchstat_flops"]) == 228_743_360
    assert next(r for r in rows if r["name"] == "Conv1")["feature_map"] == "64x34x34"


def test_cli_json_parses():
    document = json.loads(run_cli("json"))
    assert document["totals"]["neurons"] == 219_978
    assert document["totals"]["torchstat_madd"] == 456_637_750
    assert document["rows"][1]["name"] == "Conv1" and document["rows"][1]["receptive_field"] == 3
    assert len(document["errata"]) == len(find_errata(layer_table()))


def test_formatters_agree_with_each_other():
    rows = layer_table()
    from_csv = list(csv.DictReader(io.StringIO(to_csv(rows))))
    from_json = json.loads(to_json(rows))["rows"]
    for row, c, j in zip(rows, from_csv, from_json):
        assert int(c["macs"]) == j["macs"] == row.macs
        assert f"{row.torchstat_flops:,}" in to_markdown(rows) or row.torchstat_flops == 0
