"""The NumPy reference network vs PyTorch on the CPU: whole-network forward and backward time.

What is measured, in one process, with the same float32 weights on both sides (the torch
model's ``state_dict`` converted to NumPy arrays):

* **forward**: training mode (batch statistics in BatchNorm, dropout with given keep-masks
  on both sides, see below), logits of a batch of ``--batch`` random images;
* **backward**: from a random upstream gradient of the logits to the gradient of every
  parameter (torch: ``logits.backward(G)``; NumPy: :func:`reference.network.backward`);
* **eval forward**: eval mode (running statistics, no dropout), for completeness.

Each phase runs once to warm up, then ``--repeats`` times; the median wall time is reported,
with the ratio NumPy / torch (> 1: NumPy is slower). The CPU time of the process (all its
threads, ``time.process_time``) is reported too: on a busy machine a process waits for a
core and its wall time grows, while its CPU time does not (spinning BLAS/OpenMP threads do
count, though, so neither number is perfect). The two sides alternate within each repeat so
that a change in machine load hits both. Both use all the threads they find (torch:
``torch.get_num_threads()``; NumPy: its BLAS); the JSON records the thread counts and the
load average: on a shared machine only quiet-machine numbers should be quoted.

The same dropout keep-masks are used on both sides (the torch model's dropout modules are
swapped for ones that apply a given mask), so the two compute the same function; the
script checks that the logits agree before timing.

``--profile`` also prints where the NumPy forward and backward spend their time
(``cProfile``, sorted by time spent inside each function).

Usage::

    python bench/reference_vs_torch.py                         # batch 64, 5 repeats
    python bench/reference_vs_torch.py --batch 128 --repeats 9 --profile
    python bench/reference_vs_torch.py --smoke --out /tmp/r.json   # batch 2, 1 repeat; used by the tests
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from cifar_alexnet.runtime.atomic import atomic_write_json  # noqa: E402
from cifar_alexnet.model import AlexNet  # noqa: E402
from reference import network  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "reference_vs_torch.json"
P_DROP = 0.2


class _MaskedDropout(nn.Module):
    """``nn.Dropout`` with a given keep-mask (so torch and NumPy drop the same values)."""

    def __init__(self, keep: torch.Tensor, p: float):
        super().__init__()
        self.keep, self.p = keep, p

    def forward(self, x):
        return x * (self.keep.to(x.dtype) / (1.0 - self.p)) if self.training else x


def _setup(batch: int, seed: int):
    torch.manual_seed(seed)
    model = AlexNet()
    params = {key: value.detach().numpy().copy() for key, value in model.state_dict().items()}
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    upstream = rng.standard_normal((batch, 10)).astype(np.float32)
    masks = {"classifier.0": rng.random((batch, 4096)) >= P_DROP, "classifier.4": rng.random((batch, 2048)) >= P_DROP}
    model.classifier[0] = _MaskedDropout(torch.from_numpy(masks["classifier.0"]), P_DROP)
    model.classifier[4] = _MaskedDropout(torch.from_numpy(masks["classifier.4"]), P_DROP)
    return model, params, x, upstream, masks


def _timed(function):
    """(wall seconds, CPU seconds of this process -- all threads, result)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = function()
    return (time.perf_counter() - start, time.process_time() - start_cpu), result


def _rel_error(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-300))


def measure(batch: int, repeats: int, seed: int = 0) -> dict:
    """Time forward / backward / eval forward of both sides; returns the result document."""
    model, params, x, upstream, masks = _setup(batch, seed)
    x_torch, upstream_torch = torch.from_numpy(x), torch.from_numpy(upstream)

    def numpy_train_forward():
        return network.forward(params, x, training=True, dropout_masks=masks)

    def torch_train_forward():
        model.zero_grad(set_to_none=True)
        return model.train()(x_torch)

    def numpy_eval_forward():
        return network.forward(params, x, training=False)

    def torch_eval_forward():
        with torch.no_grad():
            return model.eval()(x_torch)

    # Same function on both sides? (float32: agreement to ~1e-5 relative)
    logits, _, _ = numpy_train_forward()
    logits_error = _rel_error(logits, torch_train_forward().detach().numpy())

    times = {phase: {"numpy": [], "torch": [], "numpy_cpu": [], "torch_cpu": []}
             for phase in ("forward", "backward", "eval_forward")}
    for repeat in range(repeats + 1):  # repeat 0 is the warm-up
        t_np_fwd, (_, cache, _) = _timed(numpy_train_forward)
        t_np_bwd, _ = _timed(lambda: network.backward(upstream, cache))
        t_t_fwd, torch_logits = _timed(torch_train_forward)
        t_t_bwd, _ = _timed(lambda: torch_logits.backward(upstream_torch))
        t_np_eval, _ = _timed(numpy_eval_forward)
        t_t_eval, _ = _timed(torch_eval_forward)
        if repeat == 0:
            continue
        for phase, t_np, t_t in (("forward", t_np_fwd, t_t_fwd), ("backward", t_np_bwd, t_t_bwd),
                                 ("eval_forward", t_np_eval, t_t_eval)):
            times[phase]["numpy"].append(t_np[0])
            times[phase]["torch"].append(t_t[0])
            times[phase]["numpy_cpu"].append(t_np[1])
            times[phase]["torch_cpu"].append(t_t[1])

    results = {}
    for phase, sides in times.items():
        numpy_s, torch_s = statistics.median(sides["numpy"]), statistics.median(sides["torch"])
        numpy_cpu, torch_cpu = statistics.median(sides["numpy_cpu"]), statistics.median(sides["torch_cpu"])
        results[phase] = {"numpy_s": numpy_s, "torch_s": torch_s, "ratio_numpy_over_torch": numpy_s / torch_s,
                          "numpy_cpu_s": numpy_cpu, "torch_cpu_s": torch_cpu,
                          "cpu_ratio_numpy_over_torch": numpy_cpu / torch_cpu,
                          "numpy_all_s": sides["numpy"], "torch_all_s": sides["torch"]}
    return {
        "benchmark": "reference_vs_torch",
        "batch": batch,
        "repeats": repeats,
        "dtype": "float32",
        "device": "cpu",
        "statistic": "median",
        "logits_rel_error_float32": logits_error,
        "results": results,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "numpy_version": np.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
    }


def format_table(document: dict) -> str:
    lines = [
        f"NumPy reference vs torch, CPU, float32, batch {document['batch']}, median of {document['repeats']} "
        f"(torch threads {document['torch_threads']}, {document['cpu_count']} CPUs, load {document['load_average']})",
        f"logits agree to {document['logits_rel_error_float32']:.1e} (relative, float32)",
        "",
        "| phase | NumPy (ms) | torch (ms) | NumPy / torch | NumPy CPU (ms) | torch CPU (ms) | CPU ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase, r in document["results"].items():
        lines.append(f"| {phase} | {r['numpy_s'] * 1e3:.1f} | {r['torch_s'] * 1e3:.1f} | "
                     f"{r['ratio_numpy_over_torch']:.2f}x | {r['numpy_cpu_s'] * 1e3:.1f} | {r['torch_cpu_s'] * 1e3:.1f} | "
                     f"{r['cpu_ratio_numpy_over_torch']:.2f}x |")
    return "\n".join(lines) + "\n"


def profile(batch: int, seed: int = 0, top: int = 15) -> str:
    """cProfile of one NumPy forward + backward (training mode), top functions by own time."""
    _, params, x, upstream, masks = _setup(batch, seed)
    network.forward(params, x, training=True, dropout_masks=masks)  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    _, cache, _ = network.forward(params, x, training=True, dropout_masks=masks)
    network.backward(upstream, cache)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats after one warm-up (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON result file (default {DEFAULT_OUT})")
    parser.add_argument("--smoke", action="store_true", help="batch 2, 1 repeat: checks the mechanics in seconds")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the NumPy side")
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch, args.repeats = 2, 1
    if args.batch < 2 or args.repeats < 1:
        parser.error("--batch must be >= 2 (training-mode BatchNorm1d) and --repeats >= 1")
    document = measure(args.batch, args.repeats, args.seed)
    document["smoke"] = bool(args.smoke)
    sys.stdout.write(format_table(document))
    if args.profile:
        sys.stdout.write("\nWhere the NumPy forward + backward spend their time:\n" + profile(args.batch, args.seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, document)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
