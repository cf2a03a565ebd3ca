"""Every example under ``examples/`` runs end to end in its ``--smoke`` mode (CPU, seconds).

Each example is run as a user would run it (``python examples/NAME.py --smoke``, in a fresh
process from the repository root), once per test session, and its output is checked for the
result it promises, not only for a zero exit status.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tolerances import NETWORK_GRAD_F64, NETWORK_LOGITS_F64

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "examples"))  # the examples' shared helper, _smoke.py
EXAMPLES = sorted(p for p in (REPO_ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


def run_example(path: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(path), *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Run every example's ``--smoke`` mode once: name -> (CompletedProcess, run directory or None)."""
    runs = {}
    for path in EXAMPLES:
        out = None
        args = ["--smoke"]
        if path.name.startswith("train_"):
            out = tmp_path_factory.mktemp(path.stem) / "run"
            args += ["--out", str(out)]
        runs[path.name] = (run_example(path, *args), out)
    return runs


def test_every_example_is_documented_and_runs_on_a_gpu_by_default():
    """Each example's docstring shows its GPU command and its --smoke mode (the examples page prints that
    usage: docs/_helpers/examples_pages.py), and it reaches a GPU unless told otherwise."""
    import ast

    assert {p.name for p in EXAMPLES} >= {"train_original.py", "train_fast.py", "layer_by_layer.py",
                                           "receptive_field.py"}
    for path in EXAMPLES:
        source = path.read_text(encoding="utf-8")
        usage = (ast.get_docstring(ast.parse(source)) or "").partition("\n\n")[2]
        assert f"python examples/{path.name}" in usage, f"{path.name}: its docstring does not show how to run it"
        assert "--smoke" in usage, f"{path.name}: its docstring does not name the --smoke mode"
        runs = source + "".join((REPO_ROOT / "examples" / f"{name}.py").read_text(encoding="utf-8")
                                for name in re.findall(r"^from (\w+) import", source, re.M)
                                if (REPO_ROOT / "examples" / f"{name}.py").is_file())
        assert "pick_device" in runs, f"{path.name} does not choose its device with _smoke.pick_device"
    from _smoke import pick_device

    assert pick_device(None, smoke=True) == "cpu" and pick_device("cuda:1", smoke=False) == "cuda:1"
    if torch.cuda.is_available():
        assert pick_device(None, smoke=False) == "cuda"
    else:  # without a GPU the default refuses, with a message that names --smoke, instead of running for hours
        with pytest.raises(SystemExit, match="--smoke"):
            pick_device(None, smoke=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in EXAMPLES])
def test_smoke_mode_runs(smoke_runs, name):
    result, _ = smoke_runs[name]
    assert result.returncode == 0, f"{name} --smoke failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("name, recipe", [("train_original.py", "original"), ("train_fast.py", "fast")])
def test_train_examples_report_their_run(smoke_runs, name, recipe):
    """A smoke training run writes a complete run directory and reports its accuracy."""
    result, out = smoke_runs[name]
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(rf"recipe {recipe}: 1 epoch\(s\), best test accuracy [\d.]+ %", result.stdout)
    for file in ("config.json", "history.json", "best.safetensors", "last.safetensors"):
        assert (out / file).is_file(), f"{file} missing from the run directory of {name}"


@pytest.mark.slow
def test_layer_by_layer_agrees_within_the_tolerances(smoke_runs):
    """The example's printed differences are within the test suite's own tolerances."""
    result, _ = smoke_runs["layer_by_layer.py"]
    assert result.returncode == 0, result.stderr[-3000:]
    per_layer = [float(m) for m in re.findall(r"^\w+\s+\([\d, ]+\)\s+([\d.e+-]+)$", result.stdout, re.M)]
    assert len(per_layer) >= 29, result.stdout  # one line per layer of the network
    assert max(per_layer) <= NETWORK_LOGITS_F64
    relative = float(re.search(r"largest relative difference ([\d.e+-]+)", result.stdout).group(1))
    assert relative <= NETWORK_GRAD_F64


@pytest.mark.slow
def test_receptive_field_example_agrees_with_the_analytic_fields(smoke_runs):
    result, _ = smoke_runs["receptive_field.py"]
    assert result.returncode == 0, result.stdout[-3000:]
    assert result.stdout.strip().endswith("all agree")
    assert result.stdout.count("True") == 8  # every convolution and pooling output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where no CUDA GPU exists")
def test_without_a_gpu_the_examples_say_how_to_run_them():
    result = run_example(REPO_ROOT / "examples" / "receptive_field.py")
    assert result.returncode != 0
    assert "--smoke" in result.stderr and "--device cpu" in result.stderr
