"""``cifar-alexnet export``: float16 weights that predict and evaluate as the float32 ones do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.checkpoints.format import load_checkpoint, model_from_checkpoint, save_checkpoint
from cifar_alexnet.cli import main
from cifar_alexnet.data.arrays import CIFAR10_CLASSES
from cifar_alexnet.model import AlexNet
from cifar_alexnet.inference.predict import predict_probabilities
from helpers import REPO_ROOT, TINY, read_history, write_tiny_data

SAMPLES = REPO_ROOT / "docs" / "assets" / "cifar10_jpeg_samples.npz"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(data, run directory) of a two-epoch tiny run."""
    root = tmp_path_factory.mktemp("export")
    data = write_tiny_data(root / "data", "folder", train_per_class=2, seed=4)
    run_dir = root / "run"
    assert main(["train", "--data", str(data), "--out", str(run_dir), *TINY]) == 0
    return data, run_dir


def test_export_writes_float16_weights_with_the_metadata_a_prediction_needs(trained, tmp_path, capsys):
    data, run_dir = trained
    out = tmp_path / "weights.safetensors"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert f"wrote {out} (" in capsys.readouterr().out.replace("\n", " ")
    with safe_open(str(out), "pt") as handle:
        dtypes = {key: handle.get_slice(key).get_dtype() for key in handle.keys()}
    assert all(key.startswith("model.") for key in dtypes)  # no optimizer, no random states
    assert {dtype for key, dtype in dtypes.items() if not key.endswith("num_batches_tracked")} == {"F16"}
    source = load_checkpoint(run_dir / "best.safetensors")
    meta = load_checkpoint(out).meta
    for key in ("mean", "std", "classes", "arch", "data_source", "config"):
        assert getattr(meta, key) == getattr(source.meta, key), key
    best_row = read_history(run_dir)[source.meta.run.epoch - 1]
    assert meta.weights == {"epoch": best_row["epoch"], "epochs_of_run": 2, "test_acc": best_row["test_acc"],
                            "tta_flip": False}
    assert meta.run is None  # no history, no resume state
    assert "history" not in meta.to_json() and "mid_epoch" not in meta.to_json()


def test_exporting_the_last_checkpoint_of_a_finished_run_says_final(trained, tmp_path, capsys):
    _, run_dir = trained
    out = tmp_path / "last.safetensors"
    assert main(["export", str(run_dir / "last.safetensors"), "--out", str(out)]) == 0
    final = read_history(run_dir)[-1]
    assert f"these weights: test accuracy {final['test_acc']:.2f} % (the run's final epoch)" in capsys.readouterr().out
    assert load_checkpoint(out).meta.weights["epoch"] == 2


def test_exported_weights_predict_as_the_float32_ones(trained, tmp_path):
    _, run_dir = trained
    out = tmp_path / "weights.safetensors"
    assert main(["export", str(run_dir / "best.safetensors"), "--out", str(out)]) == 0
    images = np.load(SAMPLES)["images"]  # (N, 32, 32, 3) uint8, the JPEG copy's sample images
    full, meta = model_from_checkpoint(run_dir / "best.safetensors")
    half, half_meta = model_from_checkpoint(out)
    assert next(half.parameters()).dtype == torch.float32  # loading casts back
    p_full = predict_probabilities(full, images, meta.mean, meta.std)
    p_half = predict_probabilities(half, images, half_meta.mean, half_meta.std)
    assert np.abs(p_full - p_half).max() < 5e-3
    top2 = np.sort(p_full, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-2  # where float32's answer is not a near-tie
    assert clear.any()
    assert (p_full.argmax(1) == p_half.argmax(1))[clear].all()


def test_evaluate_and_predict_accept_the_exported_file(trained, tmp_path, capsys):
    data, run_dir = trained
    out = tmp_path / "weights.safetensors"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(data), "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 10
    images = np.load(SAMPLES)["images"][:2]
    paths = []
    for i, image in enumerate(images):
        from PIL import Image

        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    assert main(["predict", str(out), *map(str, paths), "--device", "cpu", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in records] == list(map(str, paths))


def test_the_full_network_exports_to_at_most_30_mb(tmp_path):
    torch.manual_seed(0)
    source = tmp_path / "full.safetensors"
    save_checkpoint(source, AlexNet(), meta=CheckpointMeta(classes=CIFAR10_CLASSES, mean=(0.5,) * 3, std=(0.25,) * 3))
    out = tmp_path / "full-fp16.safetensors"
    assert main(["export", str(source), "--out", str(out)]) == 0
    assert out.stat().st_size <= 30_000_000
    assert out.stat().st_size < 0.51 * source.stat().st_size


def test_export_refuses_an_existing_file_and_weights_beyond_float16(trained, tmp_path, capsys):
    _, run_dir = trained
    existing = tmp_path / "taken.safetensors"
    existing.write_bytes(b"mine")
    assert main(["export", str(run_dir), "--out", str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err and existing.read_bytes() == b"mine"

    model, meta = model_from_checkpoint(run_dir)
    with torch.no_grad():
        model.classifier[8].weight[0, 0] = 1e6  # fine in float32, infinite in float16
    wide = tmp_path / "wide.safetensors"
    save_checkpoint(wide, model, meta=meta)
    out = tmp_path / "out.safetensors"
    assert main(["export", str(wide), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "['classifier.8.weight']" in err and "beyond float16's range" in err
    assert not out.exists()


def test_the_summary_says_when_the_epoch_was_chosen_on_the_test_set():
    from cifar_alexnet.checkpoints.export import describe_weights

    best = describe_weights({"epoch": 12, "epochs_of_run": 30, "test_acc": 88.123, "tta_flip": True})
    assert best == ("; these weights: test accuracy 88.12 % with flip TTA (epoch 12 of 30, chosen as the best on "
                    "the test set, so its accuracy is optimistic)")
    assert describe_weights({"epoch": 30, "epochs_of_run": 30, "test_acc": 89.0, "tta_flip": False}).endswith(
        "89.00 % (the run's final epoch)")
    assert describe_weights(None) == ""
