"""Receptive fields of the modified AlexNet: the analytic recurrence against autograd.

For every convolution and pooling output, the analytic field of the centre unit
(:mod:`reference.receptive_field`) is compared with the input pixels that unit's gradient
reaches. So that the gradient reaches *every* pixel the unit depends on, the measurement uses
a copy of the convolutional stack with max-pools replaced by average pools of the same window
(a max-pool passes the gradient to one pixel only), ReLUs by the identity (a ReLU blocks it
where its input was negative) and positive convolution weights (no cancellation). None of this
changes the geometry. Optionally saves a picture of the measured fields.

Usage::

    python examples/receptive_field.py                    # on a CUDA GPU, 96x96 input
    python examples/receptive_field.py --png fields.png   # also draw them
    python examples/receptive_field.py --smoke            # CPU: seconds
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch
from torch import nn

from _smoke import pick_device
from cifar_alexnet.model import AlexNet
from reference.architecture import LAYERS
from reference.receptive_field import receptive_fields


def measurable_stack(model: AlexNet, upto_index: int) -> nn.Sequential:
    """``model.features[: upto_index + 1]`` with avg-pools, identities and positive weights."""
    stack = copy.deepcopy(model.features[: upto_index + 1]).double().eval()
    for i, module in enumerate(stack):
        if isinstance(module, nn.MaxPool2d):
            stack[i] = nn.AvgPool2d(module.kernel_size, module.stride)
        elif isinstance(module, nn.ReLU):
            stack[i] = nn.Identity()
        elif isinstance(module, nn.Conv2d):
            with torch.no_grad():
                module.weight.abs_()
    return stack


def measured_span(stack: nn.Sequential, size: int, device: torch.device):
    """First and last input row and column the centre output unit depends on, and the gradient map."""
    x = torch.rand(1, 3, size, size, dtype=torch.float64, device=device, requires_grad=True)
    out = stack(x)  # (1, C, H', W')
    h, w = out.shape[-2:]
    out[0, :, (h - 1) // 2, (w - 1) // 2].sum().backward()
    support = x.grad[0].abs().sum(0).cpu()  # (size, size)
    nonzero = torch.nonzero(support)
    rows = (int(nonzero[:, 0].min()), int(nonzero[:, 0].max()))
    cols = (int(nonzero[:, 1].min()), int(nonzero[:, 1].max()))
    return rows, cols, support


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", help="cuda (default) or cpu")
    parser.add_argument("--size", type=int, default=96, help="input size; large enough to hold the fields")
    parser.add_argument("--png", help="save a picture of the measured fields here")
    parser.add_argument("--smoke", action="store_true", help="CPU, 64x64 input")
    args = parser.parse_args(argv)
    device = torch.device(pick_device(args.device, args.smoke))
    size = 64 if args.smoke else args.size

    torch.manual_seed(0)
    model = AlexNet().to(device)
    analytic = {f.name: f for f in receptive_fields(LAYERS, size)}
    print(f"input {size}x{size}, torch on {device}")
    print(f"{'layer':6} {'r':>4} {'jump':>5}  {'analytic span':>14}  {'measured rows':>14}  {'measured cols':>14}  agree")
    pictures, all_agree = [], True
    for layer in LAYERS:
        if layer.kind not in ("conv", "maxpool"):
            continue
        field = analytic[layer.name]
        span = field.span((field.size - 1) // 2)  # the centre unit's first and last input pixel
        rows, cols, support = measured_span(measurable_stack(model, int(layer.key.split(".")[1])), size, device)
        agree = rows == span and cols == span
        all_agree &= agree
        print(f"{layer.name:6} {field.r:4d} {field.j:5d}  {str(span):>14}  {str(rows):>14}  {str(cols):>14}  {agree}")
        pictures.append((layer.name, support, span))
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        fig, axes = plt.subplots(1, len(pictures), figsize=(2.2 * len(pictures), 2.6))
        for ax, (name, support, (low, high)) in zip(axes, pictures):
            ax.imshow((support > 0).numpy(), cmap="gray")
            ax.add_patch(Rectangle((low - 0.5, low - 0.5), high - low + 1, high - low + 1, fill=False, ec="red"))
            ax.set_title(name, fontsize=9)
            ax.axis("off")
        fig.savefig(args.png, dpi=120, bbox_inches="tight")
        print("saved", args.png)
    print("all agree" if all_agree else "MISMATCH")
    return 0 if all_agree else 1


if __name__ == "__main__":
    sys.exit(main())
