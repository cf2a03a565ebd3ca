"""Analytic receptive fields (:mod:`reference.receptive_field`) against measured ones.

The measured receptive field of an output unit is the *support* of its gradient with
respect to the input -- the pixels where ``d out[unit] / d input`` is non-zero -- computed
by torch autograd in eval mode.

Making that measurement honest takes care, because a gradient can be zero at a pixel the
unit *can* see:

* max-pooling sends the gradient only to the arg-max of each window;
* ReLU sends none through a negative pre-activation;
* with weights of both signs, contributions along different paths can cancel.

So the measurement uses a copy of the network with the same geometry but (1) every
max-pool replaced by an average pool of the same kernel and stride (gradient to every
element of the window), (2) positive conv weights and biases, BatchNorm in eval mode with
its default statistics (the identity up to ``1 / sqrt(1 + eps)``) and a positive input, so
every ReLU passes and nothing cancels. Then the support is exactly the set of pixels
connected to the unit by some path -- the receptive field. The input is large (64 x 64)
and the measured unit is the centre one, so the field does not reach the border and is
not clipped. :func:`test_max_pool_and_relu_hide_part_of_the_field` shows what the plain
network would measure instead.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from cifar_alexnet.model import AlexNet
from reference.architecture import LAYERS, Layer
from reference.receptive_field import receptive_field_of, receptive_fields

SIZE = 64  # input height and width for the measurements


def honest_copy(model: AlexNet) -> AlexNet:
    """Same geometry; average pools, positive weights, float64, eval mode (see the module docstring)."""
    model = copy.deepcopy(model).double().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for sequential in (model.features, model.classifier):
            for index, module in enumerate(sequential):
                if isinstance(module, nn.MaxPool2d):
                    sequential[index] = nn.AvgPool2d(module.kernel_size, module.stride)
                elif isinstance(module, (nn.Conv2d, nn.Linear)):
                    module.weight.copy_(torch.rand(module.weight.shape, generator=generator, dtype=torch.float64) + 0.1)
                    module.bias.copy_(torch.rand(module.bias.shape, generator=generator, dtype=torch.float64) + 0.1)
                elif isinstance(module, nn.ReLU):
                    module.inplace = False
    return model


def gradient_support(outputs: torch.Tensor, x: torch.Tensor, index: tuple) -> np.ndarray:
    """Boolean (H, W) map of the input pixels where d outputs[index] / d x is non-zero (any channel)."""
    (grad,) = torch.autograd.grad(outputs[index], x, retain_graph=True)
    return (grad[0] != 0).any(dim=0).numpy()


def rows_and_columns(support: np.ndarray, full: bool = True) -> tuple[tuple[int, int], tuple[int, int]]:
    """First and last row and column of a non-empty support; with ``full``, it must fill that rectangle."""
    rows = np.flatnonzero(support.any(axis=1))
    cols = np.flatnonzero(support.any(axis=0))
    if full:
        assert support[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all(), "support is not a full rectangle"
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


def test_conv_and_pool_outputs_match_the_measured_support():
    model = honest_copy(AlexNet())
    outputs = {}
    for index, module in enumerate(model.features):
        module.register_forward_hook(lambda m, i, o, index=index: outputs.__setitem__(index, o))
    x = (torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5)
    x.requires_grad_(True)
    model.features(x)
    fields = receptive_fields(LAYERS, SIZE)[1:]  # one per layer, in order
    checked = []
    for index, (layer, field) in enumerate(zip(LAYERS, fields)):
        if layer.kind not in ("conv", "maxpool"):
            continue
        out = outputs[index]
        assert out.shape[-1] == field.size, layer.name
        centre = field.size // 2
        low, high = field.span(centre)
        assert 0 < low and high < SIZE - 1, f"{layer.name}: the field must not touch the border"
        support = gradient_support(out, x, (0, 0, centre, centre))
        assert rows_and_columns(support) == ((low, high), (low, high)), layer.name
        assert high - low + 1 == field.r
        checked.append((layer.name, field.r))
    assert [name for name, _ in checked] == ["Conv1", "Pool1", "Conv2", "Pool2", "Conv3", "Conv4", "Conv5", "Pool3"]
    print("\n[receptive field] measured = analytic:", ", ".join(f"{name} {r}" for name, r in checked))


def test_the_classifier_sees_the_whole_image():
    """Every logit depends on every pixel of the 32 x 32 input (FC1 mixes all Pool3 positions)."""
    model = honest_copy(AlexNet())
    x = (torch.rand(1, 3, 32, 32, dtype=torch.float64) + 0.5).requires_grad_(True)
    logits = model(x)
    assert gradient_support(logits, x, (0, 3)).all()
    assert receptive_field_of("BN8").covers_whole_input(32)
    assert not receptive_field_of("Pool3").covers_whole_input(32)


def test_max_pool_and_relu_hide_part_of_the_field():
    """Why the honest copy is needed: in the plain network the support is a strict subset."""
    torch.manual_seed(0)
    model = AlexNet().double().eval()
    x = torch.randn(1, 3, SIZE, SIZE, dtype=torch.float64, requires_grad=True)
    out = model.features(x)  # (1, 256, 8, 8)
    field = receptive_fields(LAYERS, SIZE)[len(model.features)]  # Pool3's output
    centre = field.size // 2
    low, high = field.span(centre)
    support = gradient_support(out, x, (0, 0, centre, centre))
    analytic = np.zeros_like(support)
    analytic[low : high + 1, low : high + 1] = True
    assert not (support & ~analytic).any()  # nothing outside the receptive field ...
    assert support.sum() < analytic.sum()  # ... but only part of it inside
    print(f"\n[receptive field] plain network, one random input: {support.sum()} of {analytic.sum()} pixels")


@pytest.mark.parametrize("training", [False, True])
def test_train_mode_batchnorm_sees_the_whole_batch(training):
    """In training mode BatchNorm normalises with the batch mean and variance, which depend
    on every pixel of every image in the batch; so one output unit after a BatchNorm depends
    on all of them, and its "receptive field" is the whole batch. In eval mode the running
    statistics are constants and Conv1 -> BN1 sees its 3 x 3 window only."""
    torch.manual_seed(0)
    conv_bn = AlexNet().double().features[:2].train(training)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    out = conv_bn(x)  # (2, 64, 34, 34)
    (grad,) = torch.autograd.grad(out[0, 0, 17, 17], x)
    support = (grad != 0).any(dim=1)  # (2, 32, 32): per image of the batch
    if training:
        assert support.all()  # every pixel of both images
    else:
        low, high = receptive_field_of("Conv1", input_size=32).span(17)
        assert rows_and_columns(support[0].numpy()) == ((low, high), (low, high))
        assert not support[1].any()  # the other image does not matter at all


def test_known_values():
    """By hand: r grows by (k - 1) * j per layer, j multiplies by the stride."""
    expected = {"Conv1": (3, 1), "Pool1": (4, 2), "Conv2": (8, 2), "Pool2": (10, 4), "Conv3": (18, 4),
                "Conv4": (26, 4), "Conv5": (34, 4), "Pool3": (42, 8)}
    for name, (r, j) in expected.items():
        field = receptive_field_of(name)
        assert (field.r, field.j) == (r, j), name
    assert all(field.contiguous for field in receptive_fields())


windows = st.lists(
    st.tuples(st.sampled_from(["conv", "maxpool"]), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2)),
    min_size=1,
    max_size=5,
)


@given(windows)
def test_random_stacks_match_the_measured_support(stack):
    """Any stack of convolutions and pools (kernel 1-5, stride 1-3, conv padding 0-2).

    The extent always matches; the field is a full square exactly when the analytic
    ``contiguous`` flag says so (a stride larger than the field it steps over leaves holes).
    """
    layers = []
    modules = []
    for index, (kind, kernel, stride, padding) in enumerate(stack):
        if kind == "conv":
            layers.append(Layer(f"L{index}", "conv", f"{index}", out_channels=1, kernel=kernel, stride=stride,
                                padding=padding))
            conv = nn.Conv2d(1, 1, kernel, stride, padding).double()
            with torch.no_grad():
                conv.weight.uniform_(0.5, 1.5)
                conv.bias.fill_(0.1)
            modules.append(conv)
        else:
            layers.append(Layer(f"L{index}", "maxpool", f"{index}", kernel=kernel, stride=stride))
            modules.append(nn.AvgPool2d(kernel, stride))  # same geometry as the max-pool
    net = nn.Sequential(*modules)
    # An input big enough that the centre unit's field stays inside the image.
    last = receptive_fields(layers, 4096)[-1]
    size = 2 * last.r + 4 * last.j + 16
    field = receptive_fields(layers, size)[-1]
    x = (torch.rand(1, 1, size, size, dtype=torch.float64) + 0.5).requires_grad_(True)
    out = net(x)
    assert out.shape[-1] == field.size
    centre = field.size // 2
    low, high = field.span(centre)
    assert 0 <= low and high <= size - 1
    support = gradient_support(out, x, (0, 0, centre, centre))
    assert rows_and_columns(support, full=False) == ((low, high), (low, high))
    assert bool(support[low : high + 1, low : high + 1].all()) == field.contiguous
