"""Where one training step's time goes: the project's step under ``torch.profiler``, by layer kind.

``bench/train_throughput.py`` says how far the training step is from the device's matmul rate;
this script says why. It runs the same step (``train_throughput.ProjectSide``: the trainer's
``train_step`` fed by the device-resident loader, channels-last, the original recipe) under
``torch.profiler`` and sorts every PyTorch operator's own time ("self time", so nested calls
are not counted twice) into the kinds of work the network does:

=====================  ===========================================================
kind                   operators
=====================  ===========================================================
convolution            ``convolution*``, ``mkldnn_convolution``, ``cudnn_convolution*``
matrix product         ``mm``, ``addmm``, ``bmm`` (the three linear layers)
batchnorm              ``*batch_norm*``
relu                   ``relu``, ``clamp_min``, ``threshold_backward``
max-pool               ``max_pool*``
dropout                ``bernoulli``, ``dropout*``, ``native_dropout*``
optimizer              everything called inside ``Optimizer.step``
memory                 ``fill_``, ``zero_``, ``copy_``, ``empty*``, ``to``, ``contiguous``
loss, data and other   the rest (cross-entropy, augmentation, bookkeeping)
=====================  ===========================================================

For the two kinds that do the arithmetic, the FLOPs of one step are counted with
``torch.utils.flop_counter.FlopCounterMode`` (forward and backward, per operator) and divided
by their time, next to a large matmul measured in the same run (as in ``train_throughput``).
The profiler adds a little overhead to every operator, so the step is also timed without it.

Usage::

    python bench/step_profile.py                   # batch 512, 3 profiled steps, float32
    python bench/step_profile.py --amp bf16        # bfloat16 autocast, bfloat16 matmul reference
    python bench/step_profile.py --smoke --out /tmp/p.json    # seconds; used by the tests
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run from a source checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: the sibling benchmark scripts

from train_throughput import ProjectSide, matmul_flops_per_s, synchronize  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "step_profile.json"

#: (kind, test on an operator name without its "aten::" prefix), first match wins.
KINDS: list[tuple[str, object]] = [
    ("convolution", lambda n: "convolution" in n),
    ("matrix product", lambda n: n in ("mm", "addmm", "bmm", "matmul")),
    ("batchnorm", lambda n: "batch_norm" in n),
    ("relu", lambda n: n in ("relu", "relu_", "clamp_min", "clamp_min_", "threshold_backward")),
    ("max-pool", lambda n: n.startswith("max_pool")),
    ("dropout", lambda n: n.startswith(("bernoulli", "dropout", "native_dropout"))),
    ("memory", lambda n: n in ("fill_", "zero_", "copy_", "empty", "empty_like", "empty_strided", "to",
                               "_to_copy", "contiguous", "clone", "zeros", "zeros_like")),
]
OPTIMIZER = "optimizer"
OTHER = "loss, data and other"
ARITHMETIC = ("convolution", "matrix product")


def kind_of_operator(name: str) -> str:
    """The kind of work of an operator named without its namespace (``"convolution_backward"``)."""
    for kind, matches in KINDS:
        if matches(name):
            return kind
    return OTHER


def kind_of(event) -> str:
    """The kind of work of one profiler event (see the module docstring)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("Optimizer.step"):
            return OPTIMIZER
        parent = parent.cpu_parent
    return kind_of_operator(event.name.removeprefix("aten::"))


def flops_by_kind(side: ProjectSide, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """FLOPs of one forward + backward pass on ``x``, split into convolution and matrix product."""
    from torch.utils.flop_counter import FlopCounterMode

    from cifar_alexnet.runtime.device import autocast

    counter = FlopCounterMode(display=False)
    with counter:
        with autocast(side.device, side.amp):
            loss = side.criterion(side.model(x), y)
        loss.backward()
    side.optimizer.zero_grad(set_to_none=True)
    out = {kind: 0.0 for kind in ARITHMETIC}
    for op, flops in counter.get_flop_counts()["Global"].items():
        kind = kind_of_operator(str(op).removeprefix("aten.").split(".")[0])  # "aten.mm.default" -> "mm"
        if kind in out:
            out[kind] += flops
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 512 (the original)")
    parser.add_argument("--steps", type=int, default=None, help="profiled steps (default 3)")
    parser.add_argument("--amp", choices=("off", "bf16"), default="off",
                        help="off = float32 (the original recipe), bf16 = bfloat16 autocast (default off)")
    parser.add_argument("--matmul-size", type=int, default=None, help="n of the n x n matmul (default 2048)")
    parser.add_argument("--smoke", action="store_true", help="tiny setting (seconds) for the tests: batch 4, "
                        "1 step, 256 x 256 matmul")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON result (default {DEFAULT_OUT.relative_to(REPO_ROOT)}, or step_profile_bf16.json "
                        "with --amp bf16)")
    args = parser.parse_args(argv)
    defaults = dict(batch_size=4, steps=1, matmul_size=256) if args.smoke else dict(batch_size=512, steps=3,
                                                                                     matmul_size=2048)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.batch_size < 2 or args.steps < 1:
        parser.error("--batch-size must be >= 2 (BatchNorm in training mode) and --steps >= 1")
    if args.out is None:
        args.out = DEFAULT_OUT.with_name("step_profile_bf16.json") if args.amp == "bf16" else DEFAULT_OUT
    return args


def format_table(result: dict) -> str:
    scale = 1e9 if result["device"] == "cpu" else 1e12
    unit = "GFLOP/s" if scale == 1e9 else "TFLOP/s"
    rows = [("kind", "ms/step", "share", unit, "of matmul")]
    for kind, entry in result["kinds"].items():
        rate = entry.get("flops_per_s")
        rows.append((kind, f"{entry['ms_per_step']:.1f}", f"{100 * entry['share']:.1f} %",
                     f"{rate / scale:.1f}" if rate else "", f"{100 * entry['matmul_fraction']:.1f} %" if rate else ""))
    rows.append(("total (profiled)", f"{result['profiled_ms_per_step']:.1f}", "100 %", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines += ["",
              f"step without the profiler: {result['ms_per_step']:.1f} ms ({result['images_per_s']:.1f} images/s, "
              f"batch {result['batch_size']}, {result['precision']})",
              f"matmul {result['matmul_size']}^2 {result['matmul_dtype']}: {result['matmul_flops_per_s'] / scale:.1f} "
              f"{unit}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    from torch.profiler import ProfilerActivity, profile

    from cifar_alexnet.runtime.atomic import atomic_write_json

    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    n_images = args.batch_size * args.steps
    images = rng.integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n_images).astype(np.int64)
    side = ProjectSide(images, labels, [0.5] * 3, [0.25] * 3, device, args.batch_size, channels_last=True,
                       amp=args.amp)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{args.steps} profiled step(s), amp {args.amp}")

    side.epoch(max_batches=1)  # warm-up: allocations, kernel selection, optimizer state
    start = time.perf_counter()
    side.epoch()  # timed without the profiler
    seconds = time.perf_counter() - start

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        side.epoch()
    synchronize(device)
    self_us: dict[str, float] = {}
    for event in prof.events():
        kind = kind_of(event)
        own = event.self_device_time_total if device.type == "cuda" else event.self_cpu_time_total
        self_us[kind] = self_us.get(kind, 0.0) + own
    total_us = sum(self_us.values())

    x, y = next(iter(side.loader))
    flops = flops_by_kind(side, x, y)  # one batch
    matmul_dtype = torch.bfloat16 if args.amp == "bf16" else torch.float32
    matmul = matmul_flops_per_s(device, args.matmul_size, min_seconds=0.2 if args.smoke else 1.0, dtype=matmul_dtype)

    order = [kind for kind, _ in KINDS] + [OPTIMIZER, OTHER]
    kinds = {}
    for kind in order:
        ms = self_us.get(kind, 0.0) / 1000 / args.steps
        entry = {"ms_per_step": ms, "share": self_us.get(kind, 0.0) / total_us if total_us else 0.0}
        if kind in ARITHMETIC and ms > 0:
            entry["flops_per_step"] = flops[kind]
            entry["flops_per_s"] = flops[kind] / (ms / 1000)
            entry["matmul_fraction"] = entry["flops_per_s"] / matmul
        kinds[kind] = entry
    result = {
        "benchmark": "step_profile",
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["step_profile.py", *(sys.argv[1:] if argv is None else argv)]),
        "device": device.type,
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda" else
                        (platform.processor() or platform.machine())),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "smoke": args.smoke,
        "data_variant": "synthetic (uniform random uint8 pixels, random labels)",
        "batch_size": args.batch_size,
        "steps": args.steps,
        "precision": "float32" if args.amp == "off" else f"{args.amp} autocast",
        "ms_per_step": 1000 * seconds / args.steps,
        "images_per_s": n_images / seconds,
        "profiled_ms_per_step": total_us / 1000 / args.steps,
        "matmul_size": args.matmul_size,
        "matmul_dtype": str(matmul_dtype).removeprefix("torch."),
        "matmul_flops_per_s": matmul,
        "kinds": kinds,
    }
    atomic_write_json(args.out, result)
    print()
    print(format_table(result))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
