"""bench/step_profile.py: the smoke setting runs, every microsecond lands in one kind, FLOPs are exact.

Only the mechanics are tested (no timing assertions: performance claims come from the
benchmark's own printed table).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONVS = [(3, 64, 34), (64, 192, 19), (192, 384, 9), (384, 256, 9), (256, 256, 9)]  # (c_in, c_out, output side)
LINEARS = [(4096, 2048), (2048, 2048), (2048, 10)]


def _load():
    spec = importlib.util.spec_from_file_location("step_profile", REPO_ROOT / "bench" / "step_profile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_accounts_for_the_whole_step_and_counts_flops_exactly(tmp_path, capsys):
    bench = _load()
    out = tmp_path / "profile.json"
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    batch = result["batch_size"]
    kinds = result["kinds"]
    assert sum(k["share"] for k in kinds.values()) == pytest.approx(1.0)
    assert sum(k["ms_per_step"] for k in kinds.values()) == pytest.approx(result["profiled_ms_per_step"])
    for kind in ("convolution", "matrix product", "batchnorm", "relu", "max-pool", "optimizer"):
        assert kinds[kind]["ms_per_step"] > 0, kind  # each kind of work of the step was found
    # Forward, weight gradient and input gradient each cost one forward pass's MACs, except that
    # Conv1's input gradient is never computed (the images need none).
    conv_macs = [c_in * 9 * c_out * side * side for c_in, c_out, side in CONVS]
    assert kinds["convolution"]["flops_per_step"] == 2 * batch * (3 * sum(conv_macs) - conv_macs[0])
    assert kinds["matrix product"]["flops_per_step"] == 2 * batch * 3 * sum(i * o for i, o in LINEARS)
    assert "convolution" in capsys.readouterr().out


def test_kinds_follow_the_operator_names():
    bench = _load()

    class Event:
        def __init__(self, name, parent=None):
            self.name, self.cpu_parent = name, parent

    step = Event("Optimizer.step#Adam.step")
    assert bench.kind_of(Event("aten::convolution_backward")) == "convolution"
    assert bench.kind_of(Event("aten::native_batch_norm_backward")) == "batchnorm"
    assert bench.kind_of(Event("aten::threshold_backward")) == "relu"
    assert bench.kind_of(Event("aten::max_pool2d_with_indices")) == "max-pool"
    assert bench.kind_of(Event("aten::addmm")) == "matrix product"
    assert bench.kind_of(Event("aten::bernoulli_")) == "dropout"
    assert bench.kind_of(Event("aten::mul_", Event("aten::_foreach_mul_", step))) == "optimizer"
    assert bench.kind_of(Event("aten::nll_loss_forward")) == bench.OTHER
