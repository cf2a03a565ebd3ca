"""The NumPy reference and the PyTorch model, side by side, layer by layer.

1. Copy the weights of a PyTorch :class:`~cifar_alexnet.model.AlexNet` into a NumPy parameter
   dict (same keys as its ``state_dict``), in float64.
2. Eval mode: push one batch through both, one layer at a time, walking
   :data:`reference.architecture.LAYERS`, and print the largest difference after each layer.
3. Training mode: the whole network (:func:`reference.network.forward` / ``backward``) against
   autograd, with the same dropout masks on both sides and a cross-entropy loss: the loss, the
   updated BatchNorm statistics and the gradient of every parameter.

Usage::

    python examples/layer_by_layer.py            # the torch side on a CUDA GPU, batch 8
    python examples/layer_by_layer.py --smoke    # CPU, batch 2: seconds
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from torch import nn

from _smoke import pick_device
from cifar_alexnet.model import AlexNet
from reference import network
from reference.architecture import LAYERS
from reference.batchnorm import batchnorm_forward
from reference.conv import conv2d_forward
from reference.counts import count_layers
from reference.dropout import dropout_forward
from reference.flatten import flatten_forward
from reference.linear import linear_forward
from reference.pool import maxpool2d_forward
from reference.relu import relu_forward


def numpy_params(model: nn.Module) -> dict[str, np.ndarray]:
    """The model's state_dict as NumPy arrays: floats in float64, the BatchNorm counters as they are."""
    out = {}
    for key, value in model.state_dict().items():
        array = value.detach().cpu().numpy()
        out[key] = array.astype(np.float64) if np.issubdtype(array.dtype, np.floating) else array
    return out


def numpy_layer(layer, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """One layer of the reference, eval mode."""
    p = lambda name: params[f"{layer.key}.{name}"]  # noqa: E731 - a short accessor reads best here
    if layer.kind == "conv":
        return conv2d_forward(x, p("weight"), p("bias"), stride=layer.stride, padding=layer.padding)[0]
    if layer.kind in ("bn2d", "bn1d"):
        return batchnorm_forward(x, p("weight"), p("bias"), p("running_mean"), p("running_var"), training=False)[0]
    if layer.kind == "relu":
        return relu_forward(x)[0]
    if layer.kind == "maxpool":
        return maxpool2d_forward(x, layer.kernel, layer.stride)[0]
    if layer.kind == "flatten":
        return flatten_forward(x)[0]
    if layer.kind == "dropout":
        return dropout_forward(x, layer.p, training=False)[0]
    if layer.kind == "linear":
        return linear_forward(x, p("weight"), p("bias"))[0]
    raise ValueError(f"unknown layer kind {layer.kind}")


def torch_layer(layer, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The same layer of the PyTorch model (flatten is not a module there)."""
    if layer.key is None:
        return torch.flatten(x, 1)
    return model.get_submodule(layer.key)(x)


class FixedMaskDropout(nn.Module):
    """Dropout with a given keep-mask, so torch drops exactly what the NumPy side drops."""

    def __init__(self, keep: torch.Tensor, p: float):
        super().__init__()
        self.keep, self.p = keep, p

    def forward(self, x):
        return x * self.keep / (1 - self.p)


def max_diff(a: np.ndarray, b: torch.Tensor) -> float:
    return float(np.abs(a - b.detach().cpu().numpy()).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", help="device of the torch side (default cuda)")
    parser.add_argument("--batch", type=int, default=8, help="images per batch (>= 2)")
    parser.add_argument("--smoke", action="store_true", help="CPU, batch 2")
    args = parser.parse_args(argv)
    device = torch.device(pick_device(args.device, args.smoke))
    batch = 2 if args.smoke else args.batch

    torch.manual_seed(0)
    model = AlexNet().double().to(device)
    rng = np.random.default_rng(0)
    # Give BatchNorm non-trivial running statistics, so eval mode is not just the identity.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.5, module.num_features)))
                module.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, module.num_features)))
    params = numpy_params(model)
    x = rng.standard_normal((batch, 3, 32, 32))

    print(f"eval mode, float64, batch {batch}, torch on {device}")
    print(f"{'layer':8} {'output shape':18} max |numpy - torch|")
    model.eval()
    a, t = x, torch.from_numpy(x).to(device)
    with torch.no_grad():
        for layer in LAYERS:
            a, t = numpy_layer(layer, params, a), torch_layer(layer, model, t)
            print(f"{layer.name:8} {str(a.shape):18} {max_diff(a, t):.2e}")

    print("\ntraining mode, whole network: loss, BatchNorm statistics, every parameter gradient")
    model.train()
    labels = rng.integers(0, 10, batch)
    masks = {c.layer.key: rng.random((batch,) + c.in_shape) >= c.layer.p   # boolean keep-masks
             for c in count_layers() if c.layer.kind == "dropout"}
    for key, mask in masks.items():  # the same masks on the torch side
        index = int(key.split(".")[1])
        model.classifier[index] = FixedMaskDropout(torch.from_numpy(mask).to(device), model.classifier[index].p)
    logits, cache, new_buffers = network.forward(params, x, training=True, dropout_masks=masks)
    loss, dlogits = network.softmax_cross_entropy(logits, labels)
    grads = network.backward(dlogits, cache)

    torch_logits = model(torch.from_numpy(x).to(device))
    torch_loss = nn.functional.cross_entropy(torch_logits, torch.from_numpy(labels).to(device))
    torch_loss.backward()
    print(f"loss: numpy {loss:.12f}  torch {torch_loss.item():.12f}")
    worst_buffer = max(max_diff(v, model.state_dict()[k]) for k, v in new_buffers.items()
                       if k.endswith(("running_mean", "running_var")))
    print(f"max |running statistics numpy - torch| = {worst_buffer:.2e}")
    named = dict(model.named_parameters())
    # A bias right before a BatchNorm cannot change the output (the BatchNorm subtracts the
    # batch mean): its gradient is exactly zero in exact arithmetic, and both sides compute
    # round-off noise. A relative error of noise is meaningless, so those
    # biases are reported apart.
    before_bn = {f"{a.key}.bias" for a, b in zip(LAYERS, LAYERS[1:]) if b.kind in ("bn2d", "bn1d")}
    relative = {k: max_diff(g, named[k].grad) / np.abs(g).max() for k, g in grads.items() if k not in before_bn}
    worst = max(relative, key=relative.get)
    print(f"{len(relative)} parameter gradients: largest relative difference {relative[worst]:.2e} ({worst})")
    noise = max(max(np.abs(grads[k]).max(), named[k].grad.abs().max().item()) for k in before_bn)
    print(f"{len(before_bn)} biases followed by a BatchNorm: gradient zero up to round-off, largest |value| "
          f"{noise:.1e} on either side")
    return 0


if __name__ == "__main__":
    sys.exit(main())
