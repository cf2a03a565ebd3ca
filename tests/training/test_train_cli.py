"""The trainer through its command line, end to end on the CPU, on tiny synthetic data sets (``tests/helpers.py``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cifar_alexnet.checkpoints.format import load_checkpoint
from cifar_alexnet.cli import build_parser, main
from helpers import REPO_ROOT, TINY, assert_sane_history, cli_env, read_history, run_cli, write_tiny_data

# --------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["official", "folder"])
def test_train_then_evaluate_plot_predict_summary(tmp_path, kind, capsys, monkeypatch):
    data = write_tiny_data(tmp_path / "data", kind)
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    extra = ["--no-verify"] if kind == "official" else []
    assert main(["train", "--data", str(data), "--out", str(run_dir), *TINY, *extra]) == 0

    for name in ("config.json", "history.csv", "history.json", "last.safetensors", "best.safetensors",
                 "curves.png"):
        assert (run_dir / name).is_file(), name
    history = read_history(run_dir)
    assert_sane_history(history, epochs=2)
    csv_lines = (run_dir / "history.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss,train_acc,test_loss,test_acc,lr") and len(csv_lines) == 3
    config = json.loads((run_dir / "config.json").read_text())
    assert config["recipe"] == "original" and config["epochs"] == 2 and config["hidden"] == 32
    assert config["optimizer"] == "adam" and config["lr"] == 1e-3  # the recipe's values, not overridden
    last = load_checkpoint(run_dir / "last.safetensors")
    assert last.meta.run.epoch == 2 and last.optimizer_state is not None and last.rng_state is not None
    best = load_checkpoint(run_dir / "best.safetensors")
    assert best.meta.metrics["test_acc"] == max(row["test_acc"] for row in history)
    out = capsys.readouterr().out
    assert "epoch   2/2" in out

    # The run directory is usable by every other subcommand.
    if kind == "folder":  # evaluate has no --no-verify, so it cannot read a home-made official-format archive
        assert main(["evaluate", str(run_dir), "--data", str(data), "--device", "cpu", "--json",
                     "--cache-dir", str(tmp_path / "cache")]) == 0
        assert json.loads(capsys.readouterr().out)["count"] == 10
    capsys.readouterr()
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = next((tmp_path / "data").rglob("*.png"), None) if kind == "folder" else None
    if image is None:
        from PIL import Image

        image = tmp_path / "x.png"
        Image.new("RGB", (32, 32), (200, 30, 30)).save(image)
    capsys.readouterr()
    assert main(["predict", str(run_dir), str(image), "--device", "cpu", "--json"]) == 0
    ranking = json.loads(capsys.readouterr().out)[0]["top_k"]
    assert len(ranking) == 3 and all(0.0 <= r["probability"] <= 1.0 for r in ranking)
    assert main(["summary", "--checkpoint", str(run_dir / "last.safetensors")]) == 0


def test_evaluate_agrees_with_the_trainers_last_test_accuracy(tmp_path, capsys, monkeypatch):
    """``evaluate`` on last.safetensors recomputes the test accuracy the trainer logged (same images, eval mode)."""
    data = write_tiny_data(tmp_path / "data", "folder")
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run_dir), *TINY, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run_dir / "last.safetensors"), "--data", str(data), "--device", "cpu",
                 "--json", "--cache-dir", str(tmp_path / "cache")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] * 100 == pytest.approx(read_history(run_dir)[-1]["test_acc"])


def test_recipe_values_and_overrides_land_in_config_json(tmp_path, monkeypatch):
    data = write_tiny_data(tmp_path / "data", "folder")
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    args = ["train", "--recipe", "fast", "--data", str(data), "--out", str(run_dir), *TINY, "--epochs", "1",
            "--amp", "off", "--lr", "0.05", "--no-drop-last", "--eval-train"]
    assert main(args) == 0
    config = json.loads((run_dir / "config.json").read_text())
    from cifar_alexnet.training.recipes import FAST

    assert config["recipe"] == "fast"
    assert config["optimizer"] == FAST.optimizer and config["schedule"] == "onecycle"
    assert config["label_smoothing"] == FAST.label_smoothing and config["channels_last"] is True
    assert config["tta_flip"] is True and config["eval_train"] is True
    assert config["lr"] == 0.05 and config["amp"] == "off" and config["drop_last"] is False
    history = read_history(run_dir)
    assert_sane_history(history, epochs=1)
    # --eval-train: the original's eval-mode pass over the augmented training images
    assert 0.0 <= history[0]["eval_train_acc"] <= 100.0 and history[0]["eval_train_loss"] > 0
    assert "eval_train_acc" in (run_dir / "history.csv").read_text().splitlines()[0]
    assert 0 < history[0]["lr"] <= 0.05


# --------------------------------------------------------------------------------------------
# Set-up failures leave nothing behind
# --------------------------------------------------------------------------------------------


def _bad_data(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "does-not-exist"
    if kind == "corrupt-archive":
        path = tmp_path / "bad" / "cifar-10-python.tar.gz"
        path.parent.mkdir()
        path.write_bytes(b"\x1f\x8b\x08\x00 this is not a gzip stream at all" * 10)
        return path.parent
    if kind == "wrong-image-size":
        from PIL import Image

        root = tmp_path / "bad"
        for split in ("train", "test"):
            for cls in ("airplane", "automobile"):
                (root / split / cls).mkdir(parents=True)
                Image.new("RGB", (31, 31)).save(root / split / cls / "0.png")
        return root
    raise AssertionError(kind)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["missing", "corrupt-archive", "wrong-image-size"])
def test_setup_failure_leaves_no_run_directory(tmp_path, kind):
    data = _bad_data(tmp_path, kind)
    result = run_cli(["train", "--data", data, "--out", tmp_path / "run", *TINY], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "error:" in result.stderr and str(data.name) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "runs").exists()  # nor a default one


def test_bad_option_values_are_refused_before_anything_is_written(tmp_path):
    data = write_tiny_data(tmp_path / "data", "folder")
    result = run_cli(["train", "--data", data, "--out", tmp_path / "run", *TINY, "--batch-size", "1",
                      "--lr", "-1"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid training configuration: "), lines
    assert "--batch-size 1" in lines[0] and "--lr -1" in lines[0]
    assert not (tmp_path / "run").exists()


def test_existing_run_directory_is_not_overwritten(tmp_path, monkeypatch):
    data = write_tiny_data(tmp_path / "data", "folder")
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *TINY]) == 2
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["keep.txt"]


# --------------------------------------------------------------------------------------------
# Help texts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "export", "plot", "summary"])
def test_every_option_has_help_with_its_default(command):
    parser = build_parser(command)
    sub = parser._subparsers._group_actions[0].choices[command]
    text = sub.format_help()
    options = [a for a in sub._actions if a.option_strings and a.dest != "help"]
    for action in options:
        # ArgumentDefaultsHelpFormatter (the CLI's default for subcommands) appends the default to
        # every option that has a help text; `train` writes its defaults out itself.
        if action.help and action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in sub._get_formatter()._expand_help(action) or "default" in action.help
    if command == "train":
        for action in options:
            assert action.help, f"{command} {action.option_strings} has no help"
        # every train option states its default explicitly
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert "default" in action.help, f"train {action.option_strings[0]}: no default in help"
        assert "examples:" in text and "GLOBAL" in text


def test_top_level_help_is_fast_and_lists_commands():
    """``cifar-alexnet --help`` must not import torch (only the chosen command's module is imported)."""
    code = ("import sys, cifar_alexnet.cli as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr
    for command in ("train", "evaluate", "predict", "export", "plot", "summary"):
        assert command in result.stdout
    assert result.stdout.strip().endswith("NO-TORCH")


# --------------------------------------------------------------------------------------------
# The GPU benchmark script keeps working (on the CPU, tiny)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bench_gpu_smoke(tmp_path):
    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=1, test_per_class=1)
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "gpu.py"), "--data", str(data), "--smoke",
                             "--smoke-images", "10", "--out", str(out)], env=cli_env(tmp_path), cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["smoke"] is True and report["environment"]["torch"] == torch.__version__
    assert report["data"]["train_images"] == 10
    assert report["training_flops_per_image"] > 1e9  # ~3 x 0.46 GFLOP forward
    for part in ("original_loop", "original_recipe_fast_loader", "fast_recipe"):
        assert report[part]["images_per_s"] > 0 and report[part]["epoch_time_s"] > 0
    assert report["fast_recipe"]["config"]["amp"] == "bf16"  # the fast recipe really ran (on the CPU)
    assert report["status"] == "complete"
    assert "x original" in result.stdout


@pytest.mark.slow
def test_bench_gpu_signal_keeps_what_was_measured(tmp_path):
    """SIGTERM (what a time limit sends) during the first part: the JSON says where it stopped."""
    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=1, test_per_class=1)
    out = tmp_path / "bench.json"
    process = subprocess.Popen([sys.executable, "-u", str(REPO_ROOT / "bench" / "gpu.py"), "--data", str(data),
                                "--smoke", "--smoke-images", "10", "--out", str(out)], env=cli_env(tmp_path),
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("1/3 "):
            process.send_signal(signal.SIGTERM)
            break
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["status"].startswith("stopped: "), report["status"]
    parts = [report[p] for p in ("fast_recipe", "original_loop", "original_recipe_fast_loader")]
    # The part running when the signal came is cut short ("stopped"), or -- when the signal's
    # KeyboardInterrupt is lost inside a library call -- completes, and the pending signal stops
    # the run at the next part boundary. Either way nothing after that part runs.
    first_cut = next(i for i, part in enumerate(parts) if "stopped" in part or "skipped" in part)
    assert first_cut <= 1, parts
    assert all("skipped" in part for part in parts[first_cut + 1:]), parts
    assert "status: stopped" in stdout


def test_bench_gpu_budget_expiring_during_set_up_is_reported(tmp_path):
    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=1, test_per_class=1)
    result = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "gpu.py"), "--data", str(data), "--smoke",
                             "--budget-s", "0.001", "--out", str(tmp_path / "bench.json")], env=cli_env(tmp_path),
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "time budget of 0.001 s (--budget-s) reached during set-up" in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_bench_gpu_refuses_to_run_for_hours_on_a_cpu(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "gpu.py"), "--data", str(tmp_path)],
                            env=cli_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "no CUDA device" in result.stderr and "--allow-cpu" in result.stderr
    assert not list(tmp_path.glob("*.json"))


# --------------------------------------------------------------------------------------------
# The learning-rate schedule (a pure function of the step)
# --------------------------------------------------------------------------------------------


from hypothesis import given, strategies as st  # noqa: E402


@given(epochs=st.integers(1, 100), steps_per_epoch=st.integers(1, 200), warmup_epochs=st.floats(0.0, 10.0),
       warmup_start=st.floats(0.0, 1.0), lr=st.floats(1e-5, 1.0))
def test_onecycle_rises_then_falls_towards_zero(epochs, steps_per_epoch, warmup_epochs, warmup_start, lr):
    from cifar_alexnet.training.recipes import config_from_recipe
    from cifar_alexnet.training.optim import learning_rate

    config = config_from_recipe("fast", epochs=epochs, lr=lr, warmup_epochs=warmup_epochs,
                                     warmup_start=warmup_start)
    total = epochs * steps_per_epoch
    rates = [learning_rate(config, step, total) for step in range(total)]
    peak = max(range(total), key=lambda i: (rates[i], i))  # the last step at the top (a flat warm-up is a plateau)
    assert rates[peak] <= lr * (1 + 1e-12)
    assert all(a <= b + 1e-15 for a, b in zip(rates[:peak], rates[1:peak + 1]))  # non-decreasing warm-up
    assert all(a >= b - 1e-15 for a, b in zip(rates[peak:], rates[peak + 1:]))  # non-increasing decay
    assert all(r >= 0 for r in rates)
    if total >= 4:
        assert peak <= total // 2  # the warm-up never takes more than half the run
        assert rates[-1] <= lr / (total - peak) * (1 + 1e-9)  # one step before reaching 0
    if warmup_epochs == 0:
        assert rates[0] == lr


def test_constant_schedule_is_the_original():
    from cifar_alexnet.training.recipes import config_from_recipe
    from cifar_alexnet.training.optim import learning_rate

    config = config_from_recipe("original")
    assert {learning_rate(config, step, 9800) for step in range(0, 9800, 97)} == {1e-3}


@pytest.mark.parametrize("capability, expected", [((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_bf16_falls_back_to_fp16_on_gpus_without_bfloat16_units(monkeypatch, capability, expected):
    """V100 (7.0) and T4 (7.5) only emulate bfloat16; A100 (8.0) and H100 (9.0) compute in it.

    The hardware query is replaced (no GPU here); the decision under test is resolve_amp's.
    """
    from cifar_alexnet.runtime.device import resolve_amp

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert resolve_amp("bf16", torch.device("cuda:0")) == expected
    assert resolve_amp("fp16", torch.device("cuda:0")) == "fp16"
    assert resolve_amp("off", torch.device("cuda:0")) == "off"


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_bfloat16_units_trains_in_float32(monkeypatch, native):
    """Emulated bfloat16 on a CPU is many times slower than float32; native bf16 is used as asked.

    The oneDNN query is replaced so both answers are tested on whatever CPU runs the suite.
    """
    from cifar_alexnet.runtime import device as device_module
    from cifar_alexnet.runtime.device import resolve_amp

    monkeypatch.setattr(device_module, "cpu_computes_bf16", lambda: native)
    assert resolve_amp("bf16", torch.device("cpu")) == ("bf16" if native else "off")
    assert resolve_amp("off", torch.device("cpu")) == "off"
    assert resolve_amp("fp16", torch.device("cpu")) == "fp16"


# --------------------------------------------------------------------------------------------
# The configuration, written once
# --------------------------------------------------------------------------------------------


def test_every_config_field_has_help_and_a_reason_and_is_the_train_option_of_its_name():
    from dataclasses import MISSING, fields

    from cifar_alexnet.training.config import TrainConfig
    from cifar_alexnet.training.options import config_from_args
    from cifar_alexnet.training.recipes import RECIPES

    sub = build_parser("train")._subparsers._group_actions[0].choices["train"]
    options = {a.dest: a for a in sub._actions if a.option_strings and a.dest != "help"}
    for f in fields(TrainConfig):
        meta = f.metadata
        assert meta["help"], f.name
        if meta["kind"] == "run":
            assert meta["why"] and f.default is not MISSING, f.name  # a default, and the reason for it
        else:  # a hyperparameter: every recipe gives it, the command line defaults to "the recipe's"
            assert f.default is MISSING and all(getattr(r, f.name) is not None for r in RECIPES.values())
        if meta["cli"]:
            assert f.name in options, f"--{f.name.replace('_', '-')} is not generated"
            # left out of the namespace unless typed, so that --resume can tell "given" from "default"
            assert options.pop(f.name).default is argparse.SUPPRESS, f.name
    assert not options, f"options without a TrainConfig field: {sorted(options)}"
    # ... and a command line without options is the original recipe with every run option's default
    assert config_from_args(build_parser("train").parse_args(["train"])) == RECIPES["original"]
