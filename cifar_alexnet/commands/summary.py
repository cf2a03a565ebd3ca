"""The layer table of the PyTorch model, measured, next to the analytic one (``cifar-alexnet summary``).

Two independent sources of the same numbers:

* **measured** on :class:`cifar_alexnet.model.AlexNet` -- one forward pass of a single
  ``3 x 32 x 32`` zero image in eval mode with a forward hook on every module (output
  shape), ``numel`` of each module's parameters and buffers, and the multiply-accumulates
  that ``torch.utils.flop_counter.FlopCounterMode`` counts per module (it reports FLOPs
  as 2 per multiply-accumulate, so the table shows half of its count);
* **analytic** from the NumPy side: :func:`reference.counts.count_layers` and
  :func:`reference.receptive_field.receptive_fields`, derived from the layer list
  :data:`reference.architecture.LAYERS` alone.

Each layer row shows both and whether they agree; the exit status is 0 only if every row
agrees. torchstat's FLOPs (the convention of the original write-up) and the receptive
field come from the analytic side only.

Usage::

    cifar-alexnet summary                         # Markdown
    cifar-alexnet summary --format json
    cifar-alexnet summary --checkpoint runs/<run>/best.safetensors
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cifar_alexnet.checkpoints.format import model_from_checkpoint
from cifar_alexnet.model import AlexNet
from reference.architecture import INPUT_SHAPE, Layer, build_layers
from reference.counts import count_layers, totals
from reference.receptive_field import receptive_fields

__all__ = ["MeasuredLayer", "SummaryRow", "measure_model", "compare", "format_rows", "add_arguments", "run"]


@dataclass(frozen=True)
class MeasuredLayer:
    """What the torch model says about one module, for one input sample.

    Attributes:
        key: the module's name in the model (``"features.0"``).
        module: its class name (``"Conv2d"``).
        out_shape: output shape without the batch axis.
        weights: ``numel`` of its parameters.
        buffers: ``numel`` of its floating-point buffers (running mean and variance).
        macs: multiply-accumulates, ``FlopCounterMode``'s count / 2.
    """

    key: str
    module: str
    out_shape: tuple[int, ...]
    weights: int
    buffers: int
    macs: int


@dataclass(frozen=True)
class SummaryRow:
    """One layer: analytic and measured numbers side by side."""

    name: str
    key: str
    kind: str
    module: str
    analytic_shape: tuple[int, ...]
    measured_shape: tuple[int, ...]
    analytic_weights: int
    measured_weights: int
    analytic_macs: int
    measured_macs: int
    torchstat_flops: int
    receptive_field: int
    agree: bool


def measure_model(model: nn.Module, input_shape: Sequence[int] = INPUT_SHAPE) -> list[MeasuredLayer]:
    """Measure every leaf module of ``model`` with forward hooks and ``FlopCounterMode``.

    The model runs once in eval mode on a zero batch of one image (BatchNorm1d needs eval
    mode for a batch of one); its training/eval mode is restored afterwards.

    Args:
        model: an :class:`~cifar_alexnet.model.AlexNet` (or any module whose leaves are named
            like the layer list's keys).
        input_shape: per-sample input shape ``(C, H, W)``.

    Returns:
        One :class:`MeasuredLayer` per leaf module, in forward order.
    """
    parameter = next(model.parameters())
    x = torch.zeros((1, *input_shape), dtype=parameter.dtype, device=parameter.device)  # (1, C, H, W)
    shapes: dict[str, tuple[int, ...]] = {}
    order: list[str] = []

    def remember(name):
        def hook(module, inputs, output):
            order.append(name)
            shapes[name] = tuple(output.shape[1:])  # drop the batch axis

        return hook

    leaves = {name: module for name, module in model.named_modules() if name and not list(module.children())}
    handles = [module.register_forward_hook(remember(name)) for name, module in leaves.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()

    prefix = type(model).__name__
    flop_counts = counter.get_flop_counts()
    measured = []
    for name in order:
        module = leaves[name]
        flops = sum(flop_counts.get(f"{prefix}.{name}", {}).values())
        measured.append(
            MeasuredLayer(
                key=name,
                module=type(module).__name__,
                out_shape=shapes[name],
                weights=sum(p.numel() for p in module.parameters(recurse=False)),
                buffers=sum(b.numel() for b in module.buffers(recurse=False) if b.is_floating_point()),
                macs=int(flops) // 2,  # FlopCounterMode: 2 FLOPs per multiply-accumulate
            )
        )
    return measured


def compare(measured: Sequence[MeasuredLayer], layers: Sequence[Layer]) -> list[SummaryRow]:
    """Pair each layer of ``layers`` (except flatten, not a module in torch) with its measurement.

    Raises:
        ValueError: a layer has no measured module of the same key (the model and the layer
            list do not describe the same network).
    """
    by_key = {m.key: m for m in measured}
    fields = receptive_fields(layers)[1:]
    rows = []
    for layer, counts, field in zip(layers, count_layers(layers), fields):
        if layer.key is None:  # flatten: torch.flatten in forward(), no module
            continue
        if layer.key not in by_key:
            raise ValueError(f"summary: layer {layer.name} ({layer.key}) has no module in the model; "
                             f"modules: {', '.join(by_key)}")
        m = by_key[layer.key]
        agree = (counts.out_shape == m.out_shape and counts.weights == m.weights and counts.macs == m.macs
                 and counts.buffers == m.buffers)
        rows.append(SummaryRow(layer.name, layer.key, layer.kind, m.module, counts.out_shape, m.out_shape,
                               counts.weights, m.weights, counts.macs, m.macs, counts.torchstat_flops, field.r,
                               agree))
    return rows


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def format_rows(rows: Sequence[SummaryRow], fmt: str, layers: Sequence[Layer]) -> str:
    """The comparison as Markdown (with totals and a verdict), CSV or JSON."""
    analytic_totals = totals(count_layers(layers))
    measured_weights = sum(r.measured_weights for r in rows)
    measured_macs = sum(r.measured_macs for r in rows)
    agreeing = sum(r.agree for r in rows)
    if fmt == "json":
        return json.dumps({
            "rows": [asdict(r) for r in rows],
            "analytic_totals": analytic_totals,
            "measured_totals": {"weights": measured_weights, "macs": measured_macs},
            "agree": agreeing == len(rows),
        }, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        names = list(SummaryRow.__dataclass_fields__)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_shape(v).replace("×", "x") if isinstance(v, tuple) else v for v in asdict(row).values()])
        return buffer.getvalue()
    header = ("Layer", "Module", "Output (analytic)", "Output (measured)", "Weights (analytic)", "Weights (measured)",
              "MACs (analytic)", "MACs (measured)", "FLOPs (torchstat, analytic)", "Receptive field", "Agree")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join((
            f"{r.name} ({r.key})", r.module, _shape(r.analytic_shape), _shape(r.measured_shape),
            f"{r.analytic_weights:,}", f"{r.measured_weights:,}", f"{r.analytic_macs:,}", f"{r.measured_macs:,}",
            f"{r.torchstat_flops:,}", str(r.receptive_field), "yes" if r.agree else "**NO**")) + " |")
    lines += [
        "",
        f"Totals: analytic {analytic_totals['weights']:,} weights, {analytic_totals['macs']:,} MACs, "
        f"{analytic_totals['torchstat_flops']:,} torchstat FLOPs, {analytic_totals['torchstat_madd']:,} torchstat MAdd; "
        f"measured {measured_weights:,} weights, {measured_macs:,} MACs (FlopCounterMode / 2).",
        f"Agreement: {agreeing} of {len(rows)} layers agree on output shape, weights, buffers and MACs"
        + (" -- all agree." if agreeing == len(rows) else " -- MISMATCH."),
    ]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar-alexnet summary``."""
    parser.add_argument("--format", choices=("md", "csv", "json"), default="md", help="output format")
    parser.add_argument("--checkpoint", default=None,
                        help="measure the model a checkpoint describes (a .safetensors file, a run directory or "
                             "an original .pth); default: a fresh AlexNet()")


def run(args: argparse.Namespace) -> int:
    """Measure, compare, print. Exit status 0 if every layer agrees, 1 otherwise."""
    checkpoint: Optional[str] = getattr(args, "checkpoint", None)
    if checkpoint:
        model, _ = model_from_checkpoint(checkpoint)
    else:
        model = AlexNet()
    layers = build_layers(hidden=model.hidden, num_classes=model.num_classes, p=model.dropout)
    rows = compare(measure_model(model), layers)
    sys.stdout.write(format_rows(rows, getattr(args, "format", "md"), layers))
    return 0 if all(r.agree for r in rows) else 1


if __name__ == "__main__":  # pragma: no cover
    _parser = argparse.ArgumentParser(prog="python -m cifar_alexnet.commands.summary")
    add_arguments(_parser)
    raise SystemExit(run(_parser.parse_args()))
