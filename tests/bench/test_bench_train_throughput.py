"""bench/train_throughput.py: the smoke setting runs both sides and writes a complete result.

Only the mechanics are tested here (no timing assertions: performance claims come from the
benchmark's own printed table, never from unit tests).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _analytic_forward_macs() -> int:
    """Conv and linear multiply-accumulates of the network, from the layer shapes of the write-up."""
    convs = [  # (c_in, c_out, output side)
        (3, 64, 34), (64, 192, 19), (192, 384, 9), (384, 256, 9), (256, 256, 9)]
    linears = [(4096, 2048), (2048, 2048), (2048, 10)]
    return sum(c_in * 3 * 3 * c_out * side * side for c_in, c_out, side in convs) + sum(i * o for i, o in linears)


@pytest.mark.slow
def test_smoke_run_writes_a_complete_result(tmp_path, capsys):
    bench = _load("train_throughput")
    out = tmp_path / "results" / "tt.json"
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    printed = capsys.readouterr().out

    assert result["forward_macs_per_image"] == _analytic_forward_macs()
    assert result["train_flops_per_image"] == 6 * _analytic_forward_macs()
    for key in ("device", "torch_version", "cpu_count", "cpu_model", "command", "data_variant", "matmul_flops_per_s"):
        assert result[key] not in (None, "")
    assert result["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(result["cpu_bf16_units"], bool)
    assert "--smoke" in result["command"]
    for name in ("original", "project"):
        side = result["sides"][name]
        assert side["images_per_s"] > 0 and len(side["images_per_s_each_repeat"]) == 1
        assert side["images_per_s"] == max(side["images_per_s_each_repeat"])  # the best repeat is reported
        # the FLOP rate rests on the analytic count of this test, not on the benchmark's own
        assert side["flops_per_s"] == pytest.approx(side["images_per_s"] * 6 * _analytic_forward_macs())
    speedup_line = next(line for line in printed.splitlines() if "project / original" in line)
    assert f"{result['speedup_project_over_original']:.3f}x" in speedup_line  # the ratio printed is the one stored
    assert "of matmul" in printed
    assert [p.name for p in out.parent.iterdir()] == ["tt.json"]


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Treat this CPU as one with bfloat16 units, so the bf16 code path runs (emulated, slowly) on any CPU."""
    from cifar_alexnet.runtime import device

    monkeypatch.setattr(device, "cpu_computes_bf16", lambda: True)


def test_bf16_on_a_cpu_without_bfloat16_units_is_refused(tmp_path, monkeypatch):
    """The trainer would run float32 there, so a "bf16" result would be mislabelled: nothing is measured."""
    from cifar_alexnet.runtime import device

    monkeypatch.setattr(device, "cpu_computes_bf16", lambda: False)
    bench = _load("train_throughput")
    out = tmp_path / "tt_bf16.json"
    with pytest.raises(SystemExit, match="no bf16 units"):
        bench.main(["--smoke", "--amp", "bf16", "--out", str(out)])
    assert not out.exists()


@pytest.mark.slow
def test_bf16_smoke_run_uses_bf16_on_the_project_side_only(tmp_path, capsys, bf16_cpu):
    """--amp bf16: the project trains under bfloat16 autocast and the matmul reference is bfloat16."""
    bench = _load("train_throughput")
    out = tmp_path / "tt_bf16.json"
    assert bench.main(["--smoke", "--amp", "bf16", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["project_amp"] == "bf16" and result["matmul_dtype"] == "bfloat16"
    assert "bf16 autocast" in capsys.readouterr().out
    assert bench.parse_args(["--amp", "bf16"]).out == bench.DEFAULT_OUT_BF16
    assert bench.parse_args([]).out == bench.DEFAULT_OUT


def test_project_side_in_bf16_really_runs_bfloat16_kernels(bf16_cpu):
    """The --amp bf16 side runs the model's convolutions in bfloat16 (not float32 with a label)."""
    import numpy as np
    import torch

    bench = _load("train_throughput")
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    side = bench.ProjectSide(images, np.arange(4) % 10, [0.5] * 3, [0.25] * 3, torch.device("cpu"), batch_size=2,
                             channels_last=True, amp="bf16")
    seen = []
    hook = side.model.features[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    assert side.epoch() == 4
    hook.remove()
    assert seen == [torch.bfloat16, torch.bfloat16]


def test_both_sides_train_on_every_image():
    """One epoch of each side consumes exactly the images given (the original's loop and the trainer's step)."""
    import numpy as np
    import torch

    bench = _load("train_throughput")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 6)
    mean, std = [0.5] * 3, [0.25] * 3
    original = bench.OriginalSide(images, labels, mean, std, torch.device("cpu"), batch_size=3, workers=0)
    project = bench.ProjectSide(images, labels, mean, std, torch.device("cpu"), batch_size=3, channels_last=True)
    before = {k: v.clone() for k, v in project.model.state_dict().items()}
    assert original.epoch() == 6
    assert project.epoch() == 6
    after = project.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the step really updated the weights
    assert project.optimizer.state_dict()["state"][0]["step"].item() == 2


def test_bad_sizes_are_refused(capsys):
    bench = _load("train_throughput")
    with pytest.raises(SystemExit):
        bench.parse_args(["--images", "100", "--batch-size", "64"])
    assert "multiple of --batch-size" in capsys.readouterr().err


def test_the_docs_name_each_cpu_results_machine_and_the_hours_its_rate_implies():
    """The throughput table's machine column and the CPU warning's hours, recomputed from the committed results."""
    sys.path.insert(0, str(REPO_ROOT / "docs" / "_helpers"))
    try:
        import training_pages
    finally:
        sys.path.pop(0)
    from cifar_alexnet.training.recipes import ORIGINAL

    table, warning = training_pages.throughput_section(), training_pages.cpu_warning()
    results = [json.loads(p.read_text()) for p in sorted((REPO_ROOT / "bench" / "results").glob("train_throughput*.json"))]
    results = [r for r in results if not r.get("smoke") and r["device"] == "cpu"]
    assert results
    for result in results:
        if "cpu_model" in result:
            assert f"CPU ({result['cpu_model']}, {result['cpu_count']} cores, {result['cpu_capability']}, " in table
        if result["project_amp"] == "off":
            hours = ORIGINAL.epochs * 50_000 / result["sides"]["project"]["images_per_s"] / 3600
            assert f"**{hours:.0f} hours** of training steps" in warning
