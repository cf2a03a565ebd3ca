"""The trained weights that ship with the package: what they record, what they predict, what they score.

The expected values come from the records ``scripts/ship_weights.py`` wrote when the weights
were shipped (``docs/runs/<run>/``), never from this machine. Another CPU rounds float32
differently, which can only change the answer where the two largest logits are almost equal:
those images (logit margin under :data:`NEAR_TIE`) are left out of the comparisons.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from cifar_alexnet.cli import main
from cifar_alexnet.data.arrays import CIFAR10_CLASSES
from cifar_alexnet.errors import DataError, OptionsError
from cifar_alexnet.inference.evaluate import normalize_uint8_images
from cifar_alexnet.weights import AlexNetWeights, alexnet
from helpers import REPO_ROOT

WEIGHTS = AlexNetWeights.DEFAULT
RECORD = REPO_ROOT / "docs" / "runs" / WEIGHTS.value.run
SAMPLE_PREDICTIONS = json.loads((RECORD / "sample_predictions.json").read_text())
#: Logit margins below this are near-ties whose answer may differ between CPUs.
NEAR_TIE = 1e-2


def test_the_file_is_float16_package_data_of_at_most_30_mb():
    assert WEIGHTS.path.parent.name == "weights" and WEIGHTS.path.parent.parent.name == "cifar_alexnet"
    assert WEIGHTS.path.stat().st_size <= 30_000_000
    with safe_open(str(WEIGHTS.path), "pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys() if not key.endswith("num_batches_tracked")}
    assert dtypes == {"F16"}


def test_the_weights_know_their_classes_normalisation_recipe_data_and_accuracy():
    meta = WEIGHTS.meta
    assert meta["categories"] == list(CIFAR10_CLASSES)
    assert meta["recipe"] == "original" and "JPEG" in meta["data"]
    assert 1 <= meta["epoch"] <= meta["epochs_of_run"] == 100
    evaluation = json.loads((RECORD / "evaluation.json").read_text())
    assert meta["test_acc"] == evaluation["weights"]["measured"]["test_acc"]
    confusion = np.array(evaluation["confusion"])
    assert meta["test_acc"] == round(100 * np.trace(confusion) / confusion.sum(), 2)
    assert all(0.0 < m < 1.0 for m in meta["mean"]) and all(0.0 < s < 1.0 for s in meta["std"])


def _sample_images() -> np.ndarray:
    return np.stack([np.asarray(Image.open(REPO_ROOT / s["image"]).convert("RGB")) for s in SAMPLE_PREDICTIONS])


def _clear(records: list[dict]) -> list[int]:
    return [i for i, r in enumerate(records) if r["margin"] >= NEAR_TIE]


def test_the_python_entry_point_predicts_the_recorded_classes_of_the_samples():
    model = alexnet(weights="DEFAULT")
    assert not model.training
    with torch.no_grad():
        predicted = model(WEIGHTS.transforms()(_sample_images())).argmax(dim=1)
    clear = _clear(SAMPLE_PREDICTIONS)
    assert len(clear) >= len(SAMPLE_PREDICTIONS) - 2
    assert [CIFAR10_CLASSES[int(predicted[i])] for i in clear] == [SAMPLE_PREDICTIONS[i]["predicted"] for i in clear]


def test_predict_without_a_checkpoint_uses_the_shipped_weights_and_says_so(capsys):
    images = [str(REPO_ROOT / s["image"]) for s in SAMPLE_PREDICTIONS]
    assert main(["predict", *images, "--json", "--top-k", "1", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "no checkpoint given: using the shipped weights" in captured.err and WEIGHTS.name in captured.err
    answers = [r["top_k"][0]["class"] for r in json.loads(captured.out)]
    clear = _clear(SAMPLE_PREDICTIONS)
    assert [answers[i] for i in clear] == [SAMPLE_PREDICTIONS[i]["predicted"] for i in clear]
    assert main(["predict", str(WEIGHTS.path), images[0], "--device", "cpu"]) == 0  # the same file, named
    assert "shipped weights" not in capsys.readouterr().err


def test_predict_refuses_a_checkpoint_without_images(capsys):
    assert main(["predict", str(WEIGHTS.path)]) == 2
    assert "name the image files to classify after it" in capsys.readouterr().err


def test_transforms_take_arrays_and_pil_images_and_refuse_other_sizes():
    images = _sample_images()
    preprocess = WEIGHTS.transforms()
    expected = normalize_uint8_images(images, WEIGHTS.meta["mean"], WEIGHTS.meta["std"])
    assert torch.equal(preprocess(images), expected)
    assert torch.equal(preprocess(images[0]), expected[:1])
    assert torch.equal(preprocess([Image.fromarray(im) for im in images[:2]]), expected[:2])
    assert torch.equal(preprocess(Image.fromarray(images[0]).convert("L").convert("RGB")),
                       normalize_uint8_images(np.asarray(Image.fromarray(images[0]).convert("L").convert("RGB"))[None],
                                              WEIGHTS.meta["mean"], WEIGHTS.meta["std"]))
    with pytest.raises(DataError, match=r"32x32 RGB.*\(1, 64, 64, 3\)"):
        preprocess(np.zeros((1, 64, 64, 3), np.uint8))


def test_alexnet_without_weights_is_untrained_and_unknown_names_are_refused():
    assert alexnet().training
    with pytest.raises(OptionsError, match="DEFAULT"):
        alexnet(weights="IMAGENET1K_V1")


@pytest.mark.slow
@pytest.mark.realdata
def test_the_recorded_accuracy_and_predictions_are_reproduced_on_the_jpeg_test_set(jpeg_archive, tmp_path, capsys,
                                                                                   monkeypatch):
    """``cifar-alexnet evaluate`` with no checkpoint scores what the file records, image for image."""
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    assert main(["evaluate", "--data", str(jpeg_archive), "--json", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "no checkpoint given: using the shipped weights" in captured.err
    result = json.loads(captured.out)
    recorded = np.load(RECORD / "test_predictions.npz")
    near_ties = int((recorded["margin"].astype(np.float32) < NEAR_TIE).sum())
    # every image off the diagonal that is not a near-tie is where the record says it is
    assert abs(100 * result["accuracy"] - WEIGHTS.meta["test_acc"]) <= 100 * near_ties / result["count"] + 1e-9
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (recorded["labels"], recorded["predicted"]), 1)
    assert np.abs(np.array(result["confusion_matrix"]) - confusion).sum() <= 2 * near_ties
