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
