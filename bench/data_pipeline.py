"""Images per second: the original torchvision/PIL DataLoader vs the batched on-device pipeline.

Both sides produce the same thing -- shuffled batches of augmented (crop, flip, grayscale),
normalised float32 images on ``--device`` -- from the same uint8 images, in one run:

* ``torchvision``: the original notebook's pipeline: :class:`cifar_alexnet.data.torchvision_pipeline.TorchvisionDataset`
  with :func:`cifar_alexnet.data.torchvision_pipeline.original_train_transform` in a ``DataLoader`` with
  ``--workers`` worker processes (default: the number of CPUs this process may use), batches
  moved to the device;
* ``device``: :class:`cifar_alexnet.data.device_loader.DeviceLoader` on the device.

Images: the JPEG copy of CIFAR-10 (``../shared/data/cifar10-jpeg.tar.gz`` or ``--data``)
when present, decoded once into the cache; otherwise random images (noted in the output).
The two sides alternate ``--repeats`` times, so both see the same machine load, and the best
time of each is reported. Each timed run starts a fresh pass: ``--warmup`` untimed batches
(worker start-up, caches), then ``--batches`` timed ones; on CUDA the clock stops after a
synchronisation. The DataLoader's workers are shut down before the batched side runs.

    python bench/data_pipeline.py                     # full setting
    python bench/data_pipeline.py --device cuda
    python bench/data_pipeline.py --smoke             # seconds; used by the test suite

Writes a JSON report (``--out``, default ``bench/results/data_pipeline.json``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from cifar_alexnet.runtime.atomic import atomic_write_json  # noqa: E402
from cifar_alexnet.data.torchvision_pipeline import TorchvisionDataset, original_train_transform
from cifar_alexnet.data.cifar10 import channel_stats, load_cifar10
from cifar_alexnet.data.device_loader import DeviceLoader  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="data set for load_cifar10 (default: the JPEG copy in ../shared/data; random images if absent)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache for decoded image folders")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=512, help="the original's 512")
    parser.add_argument("--batches", type=int, default=30, help="timed batches per side (the loaders must hold "
                        "warmup + batches full batches)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches per side before timing")
    parser.add_argument("--workers", type=int, default=available_cpus(), help="DataLoader workers (default: CPUs available)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per side; the best is reported")
    parser.add_argument("--device-threads", default=None,
                        help="comma-separated torch intra-op thread counts to time the batched pipeline with "
                             "(default on CPU: 1 and torch's default; on CUDA: torch's default)")
    parser.add_argument("--smoke", action="store_true", help="tiny setting, random images, for the test suite")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "data_pipeline.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch_size, args.batches, args.warmup, args.repeats, args.workers = 32, 3, 1, 1, 0
    return args


def load_images(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    """Training images and labels, and a label of the data variant."""
    if not args.smoke and args.data is not None and Path(args.data).exists():
        train, _ = load_cifar10(args.data, cache_dir=args.cache_dir)
        return train.images, train.labels, train.source
    n = max(args.batch_size * (args.batches + args.warmup), 1024)
    rng = np.random.default_rng(0)
    note = "random uint8 images (no real data found" + (", --smoke)" if args.smoke else f" at {args.data})")
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n), note


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batches(iterator, device: torch.device, warmup: int, timed: int) -> tuple[float, int]:
    """Seconds for ``timed`` batches after ``warmup`` untimed ones, and the images they held."""
    for _ in range(warmup):
        x, _ = next(iterator)
    _sync(device)
    images = 0
    started = time.perf_counter()
    for _ in range(timed):
        x, y = next(iterator)
        images += len(x)
    _sync(device)
    return time.perf_counter() - started, images


def torchvision_batches(images, labels, mean, std, args, device: torch.device):
    """A function that starts a fresh pass of the original pipeline (new workers each time)."""
    from torch.utils.data import DataLoader

    from cifar_alexnet.data.arrays import ArrayDataset, CIFAR10_CLASSES

    ds = TorchvisionDataset(ArrayDataset(images, labels.astype(np.int64), CIFAR10_CLASSES, "bench"),
                            original_train_transform(mean, std))
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        drop_last=True, generator=torch.Generator().manual_seed(0),
                        pin_memory=device.type == "cuda")

    def one_pass():
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    return one_pass


def device_batches(images, labels, mean, std, args, device: torch.device):
    """A function that starts a fresh pass (epoch) of the batched pipeline."""
    loader = DeviceLoader(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)),
                          batch_size=args.batch_size, mean=mean, std=std, train=True, augment=True, device=device,
                          generator=torch.Generator(device=device).manual_seed(0), drop_last=True)
    return lambda: iter(loader)


def bench_both(images, labels, mean, std, args, device: torch.device) -> tuple[dict, dict[int, dict]]:
    """Alternate the sides ``--repeats`` times (so all see the same machine load); best time of each.

    Sides: the DataLoader, and the batched pipeline once per thread count in ``--device-threads``
    (on a shared CPU two threads can lose badly to one: every parallel operation waits for its
    slowest thread). Every timed run starts a fresh pass: for the DataLoader that means new
    worker processes, started during the warm-up and shut down (prefetched batches discarded)
    before the next side runs, so no worker keeps computing while the batched pipeline is timed.
    """
    default_threads = torch.get_num_threads()
    sides = {"torchvision": (torchvision_batches(images, labels, mean, std, args, device), default_threads)}
    for threads in args.device_threads:
        sides[f"device@{threads}"] = (device_batches(images, labels, mean, std, args, device), threads)
    best: dict[str, tuple[float, int]] = {}
    for _ in range(args.repeats):
        for name, (start_pass, threads) in sides.items():
            torch.set_num_threads(threads)
            batches = start_pass()
            seconds, count = time_batches(batches, device, args.warmup, args.batches)
            del batches  # for the DataLoader: stops its workers
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, count)
    torch.set_num_threads(default_threads)
    results = {name: {"seconds": s, "images": n, "images_per_s": n / s} for name, (s, n) in best.items()}
    results["torchvision"]["workers"] = args.workers
    by_threads = {t: dict(results[f"device@{t}"], threads=t) for t in args.device_threads}
    return results["torchvision"], by_threads


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.device_threads is None:
        default = torch.get_num_threads()
        args.device_threads = [default] if device.type == "cuda" or default == 1 else [1, default]
    else:
        args.device_threads = [int(t) for t in str(args.device_threads).split(",")]
    images, labels, variant = load_images(args)
    if len(images) // args.batch_size < args.warmup + args.batches:
        raise SystemExit(f"{len(images)} images hold fewer than --warmup + --batches = "
                         f"{args.warmup + args.batches} batches of {args.batch_size}")
    mean, std = (tuple(float(v) for v in s) for s in channel_stats(images))
    print(f"data: {variant}, {len(images)} images; batch {args.batch_size}; {args.batches} timed batches "
          f"(best of {args.repeats}) after {args.warmup} warm-up; device {device}; batched pipeline with "
          f"{args.device_threads} torch threads; load average {os.getloadavg()[0]:.1f}")

    torchvision_result, device_by_threads = bench_both(images, labels, mean, std, args, device)
    device_result = max(device_by_threads.values(), key=lambda r: r["images_per_s"])
    ratio = device_result["images_per_s"] / torchvision_result["images_per_s"]

    rows = [(f"torchvision/PIL DataLoader ({args.workers} workers)", torchvision_result)]
    rows += [(f"batched tensor pipeline (DeviceLoader, {t} torch thread{'s' if t > 1 else ''})", r)
             for t, r in device_by_threads.items()]
    print(f"\n| pipeline | images/s | time for {args.batches} batches | vs torchvision |\n|---|---:|---:|---:|")
    for name, result in rows:
        print(f"| {name} | {result['images_per_s']:,.0f} | {result['seconds']:.3f} s | "
              f"{result['images_per_s'] / torchvision_result['images_per_s']:.1f}x |")
    print(f"\nratio (best batched / torchvision): {ratio:.1f}x")

    report = {
        "benchmark": "data_pipeline",
        "command": " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]),
        "smoke": args.smoke,
        "data_variant": variant,
        "num_images": int(len(images)),
        "batch_size": args.batch_size,
        "timed_batches": args.batches,
        "warmup_batches": args.warmup,
        "repeats": args.repeats,
        "device_name": str(device),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "cpus_available": available_cpus(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "python": platform.python_version(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "torchvision": torchvision_result,
        "device": device_result,
        "device_by_threads": {str(t): r for t, r in device_by_threads.items()},
        "ratio": ratio,
    }
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
