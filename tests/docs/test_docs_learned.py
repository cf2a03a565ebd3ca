"""The "what the network learned" page and the records it is built from."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "docs" / "_helpers"))

import learned_pages  # noqa: E402

RECORD = REPO_ROOT / "docs" / "runs" / "original-bf16"


def test_the_recorded_predictions_add_up_to_the_recorded_confusion_matrix():
    """test_predictions.npz and evaluation.json come from one evaluation: recount the matrix from the images."""
    evaluation = json.loads((RECORD / "evaluation.json").read_text())
    predictions = np.load(RECORD / "test_predictions.npz")
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (predictions["labels"], predictions["predicted"]), 1)
    assert confusion.tolist() == evaluation["confusion"]
    assert np.bincount(predictions["labels"]).tolist() == [1000] * 10
    wrong = predictions["predicted"] != predictions["labels"]
    mistakes = np.load(RECORD / "mistakes.npz")
    for t, p, confidence in zip(mistakes["true"], mistakes["predicted"], mistakes["confidence"]):
        candidates = wrong & (predictions["labels"] == t) & (predictions["predicted"] == p)
        assert confidence in predictions["confidence"][candidates]  # each example is one of the recorded mistakes


def test_the_confused_pairs_are_the_largest_off_diagonal_counts():
    evaluation = json.loads((RECORD / "evaluation.json").read_text())
    matrix, classes = np.array(evaluation["confusion"]), evaluation["classes"]
    np.fill_diagonal(matrix, 0)
    counts = [p["count"] for p in evaluation["confused_pairs"]]
    assert counts == sorted(matrix.ravel(), reverse=True)[:len(counts)]
    for pair in evaluation["confused_pairs"]:
        assert matrix[classes.index(pair["true"]), classes.index(pair["predicted"])] == pair["count"]


def test_the_page_shows_the_recorded_per_class_accuracy(site):
    out, result, _ = site
    if result.returncode != 0:
        pytest.fail("the site did not build (test_site_builds_strictly says why)")
    html = (out / "learned" / "index.html").read_text(encoding="utf-8")
    evaluation = json.loads((RECORD / "evaluation.json").read_text())
    for name, accuracy in zip(evaluation["classes"], evaluation["per_class_acc"]):
        assert re.search(rf"<td[^>]*>{name}</td>.*?<td[^>]*>{accuracy:.1f} %</td>", html, re.S), name
    assert html.count("<svg") >= 6  # filters, brightness, feature maps, confusion, mistakes, occlusion


def test_edge_fit_finds_a_ramp_and_its_direction():
    """The measure behind the page's edge detectors: a pure ramp fits perfectly, noise does not."""
    ramp = np.broadcast_to(np.array([[-1.0, 0.0, 1.0]] * 3), (1, 3, 3, 3)).copy()  # dark left, light right
    fits, share, angles = learned_pages.edge_fit(ramp)
    assert fits[0] == pytest.approx(1.0) and share[0] == pytest.approx(1.0) and angles[0] == pytest.approx(0.0)
    down = ramp.transpose(0, 1, 3, 2)  # dark on top, light below
    assert learned_pages.edge_fit(down)[2][0] == pytest.approx(90.0)
    checker = np.broadcast_to(np.array([[1.0, -1, 1], [-1, 1, -1], [1, -1, 1]]), (1, 3, 3, 3)).copy()
    assert learned_pages.edge_fit(checker)[0][0] < 0.1
    colour_only = np.zeros((1, 3, 3, 3))
    colour_only[0, 0], colour_only[0, 1] = 1.0, -1.0  # red against green, no brightness pattern
    assert learned_pages.edge_fit(colour_only)[1][0] == pytest.approx(0.0)


@pytest.mark.parametrize("name", learned_pages.OCCLUDED)
def test_occlusion_map_entries_are_the_fall_in_log_odds(name):
    """Three squares of each occlusion map against the model run on the covered image here, in float64 odds.

    The expected value uses the package's own entry point and computes the odds from probabilities,
    not with the page's ``log_odds``; both sides run on this CPU, so no machine's rounding is baked in.
    """
    import torch

    from cifar_alexnet.weights import AlexNetWeights, alexnet

    image = learned_pages.sample(name)
    answer, drop = learned_pages.occlusion_maps(image)
    weights = AlexNetWeights.DEFAULT
    model, preprocess = alexnet(weights=weights), weights.transforms()
    grey = np.round(np.array(weights.meta["mean"]) * 255).astype(np.uint8)

    def odds(picture):
        with torch.no_grad():
            p = model(preprocess(picture[None]))[0].double().softmax(0)
        return float(torch.log(p[answer]) - torch.log(p.sum() - p[answer]))

    with torch.no_grad():
        assert answer == int(model(preprocess(image[None]))[0].argmax())
    last = drop.shape[0] - 1
    for i, j in ((0, 0), (last // 2, last // 2), (last, 1)):
        covered = image.copy()
        top, left = learned_pages.STEP * i, learned_pages.STEP * j
        covered[top:top + learned_pages.PATCH, left:left + learned_pages.PATCH] = grey
        assert drop[i, j] == pytest.approx(odds(image) - odds(covered), abs=0.05), (name, i, j)


@pytest.mark.parametrize("p, label", [(0.9996, "> 99.9 %"), (0.999, "99.9 %"), (0.99949, "> 99.9 %"), (0.9989, "99.8 %"),
                                      (0.5, "50.0 %"), (0.12345, "12.3 %"), (0.0, "0.0 %")])
def test_a_mistakes_probability_is_never_rounded_up_to_100(p, label):
    assert learned_pages.probability_label(p) == label
