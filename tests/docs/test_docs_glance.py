"""The AlexNet (2012) comparison of "The network at a glance" counts what torchvision and PyTorch count.

The page's layer lists live in ``docs/_helpers/glance_pages.py`` and are counted by
``reference.counts``; here the torchvision variant's parameter count is checked against
``torchvision.models.alexnet`` (built without weights, nothing downloaded) and this network's
against ``cifar_alexnet.model.AlexNet``. The paper's own list differs from torchvision's only in
the channel counts and Conv1's padding (and LRN, which has no parameters), so a mistake in the
shared helpers would show here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parents[2] / "docs" / "_helpers"


@pytest.fixture(scope="module")
def glance():
    sys.path.insert(0, str(HELPERS))
    try:
        import glance_pages
    finally:
        sys.path.remove(str(HELPERS))
    return glance_pages


def test_torchvision_alexnet_count_matches(glance):
    import torchvision

    model = torchvision.models.alexnet(weights=None)
    counted = glance.totals_of(glance.ALEXNET_TORCHVISION, glance.ALEXNET_TORCHVISION_INPUT)
    assert counted["weights"] == sum(p.numel() for p in model.parameters())
    import torch

    with torch.no_grad():
        features = model.features(torch.zeros(1, *glance.ALEXNET_TORCHVISION_INPUT))
    flat = next(c for c in counted["counts"] if c.layer.kind == "flatten")
    assert features.numel() == flat.out_shape[0]


def test_paper_alexnet_differs_from_torchvision_only_where_documented(glance):
    """96/256/384/384/256 channels and no padding on a 227-pixel input give the paper's 55×55 and 6×6 maps."""
    counted = glance.totals_of(glance.ALEXNET_2012, glance.ALEXNET_2012_INPUT)["counts"]
    shapes = {c.layer.name: c.out_shape for c in counted}
    assert shapes["Conv1"] == (96, 55, 55) and shapes["Pool3"] == (256, 6, 6)
    conv = [c for c in counted if c.layer.kind == "conv"]
    expected = [(96, 3, 11), (256, 96, 5), (384, 256, 3), (384, 384, 3), (256, 384, 3)]
    assert [c.weights for c in conv] == [f * c * k * k + f for f, c, k in expected]


def test_this_network_count_matches_the_model(glance):
    from cifar_alexnet.model import AlexNet
    from reference.architecture import INPUT_SHAPE, LAYERS

    counted = glance.totals_of(LAYERS, INPUT_SHAPE)
    assert counted["weights"] == sum(p.numel() for p in AlexNet().parameters())
