"""``cifar-alexnet summary``: the torch model measured with hooks, compared with the analytic table."""

from __future__ import annotations

import csv
import io
import json

from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.checkpoints.format import save_checkpoint
from cifar_alexnet.cli import main
from cifar_alexnet.model import AlexNet
from cifar_alexnet.commands.summary import compare, measure_model
from reference.architecture import LAYERS, build_layers


def test_summary_json_reports_agreement(capsys):
    assert main(["summary", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["agree"] is True
    assert document["measured_totals"] == {"weights": 14_869_598, "macs": 227_711_744}
    assert document["analytic_totals"]["torchstat_flops"] == 228_743_360
    assert len(document["rows"]) == len([layer for layer in LAYERS if layer.key is not None])


def test_summary_markdown_and_csv(capsys):
    assert main(["summary"]) == 0
    text = capsys.readouterr().out
    assert "all agree" in text and "14,869,598" in text
    assert main(["summary", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["key"] == "features.0" and rows[0]["measured_shape"] == "64x34x34"
    assert all(row["agree"] == "True" for row in rows)


def test_mismatch_is_reported():
    """Measured against the wrong layer list (FC width 1024 instead of 2048), rows disagree."""
    rows = compare(measure_model(AlexNet()), build_layers(hidden=1024))
    disagreeing = {row.name for row in rows if not row.agree}
    assert {"FC1", "BN6", "FC2", "BN7", "FC3"} <= disagreeing
    assert "Conv1" not in disagreeing


def test_summary_of_a_checkpoint(tmp_path, capsys):
    model = AlexNet(num_classes=3, hidden=64)
    path = save_checkpoint(tmp_path / "small.safetensors", model,
                           meta=CheckpointMeta(classes=("a", "b", "c"), mean=(0.5,) * 3, std=(0.25,) * 3))
    assert main(["summary", "--checkpoint", str(path), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["agree"] is True
    assert document["measured_totals"]["weights"] == sum(p.numel() for p in model.parameters())
