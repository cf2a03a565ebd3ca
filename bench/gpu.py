"""GPU benchmark: the original notebook's loop against this package's trainer, in one run.

What it measures, on one device, in this order (each part is timed on its own; the part
that answers the main question comes first, so a run cut short still answers it):

1. **fast recipe** -- ``cifar_alexnet.training.loop`` with ``--recipe fast`` (bf16, channels-last,
   SGD-Nesterov one-cycle, flip TTA) for its full schedule: per-epoch time, images/s, test
   accuracy per epoch and the **time to 90.34 %** test accuracy (the original's best), the
   cumulative training + evaluation time up to the first epoch at or above it (``null`` if
   never reached). Its first epoch includes the one-off warm-up (cuDNN autotuning, memory
   pool growth); the time to target counts it.
2. **original loop** -- ``bench/original_loop.py``: the notebook's PIL + ``DataLoader`` pipeline
   (4 workers), float32, ``.to(device)`` per batch, cuDNN autotuner off (PyTorch's default,
   which the notebook kept); one full training epoch after a short warm-up. Per-epoch time
   and training images/s.
3. **original recipe, fast data path** -- ``cifar_alexnet.training.loop`` with ``--recipe original``
   (float32, Adam 1e-3, batch 512) but the device-resident loader, 2 epochs (the second is the
   steady state). What the data path, plus the trainer's cuDNN autotuner, is worth.

For each: peak GPU memory (``torch.cuda.max_memory_allocated``) and the model FLOP
utilisation (MFU): training FLOPs per image (forward + backward, counted with
``torch.utils.flop_counter.FlopCounterMode``) x images/s, divided by the device's dense peak
for the precision used (bf16 tensor cores for the fast recipe, TF32 for float32 -- cuDNN
convolutions use TF32 by default). Peaks are the data-sheet numbers of the table below;
unknown devices get ``null``.

The JSON result records the device name, driver, CUDA and torch versions, the data set
variant (e.g. "CIFAR-10 (JPEG q75 copy)") and the command line. Speed ratios are printed
side by side (fast path / original loop) -- the only way this project states a speed-up.

Sized for one call of at most 10 minutes on an H100 (fast recipe: 30 epochs). Built for a
machine lent for a few minutes: the JSON result is rewritten after every part (``"status"``
says how far it got); ``--budget-s`` (default 540) stops the run by itself -- the trainer
finishes its step, the epochs done so far are kept -- and so does SIGTERM/SIGINT from outside;
a part that fails (NaN loss, out of memory) is recorded and the next part runs. Without a
CUDA device it refuses to start (the full run would take hours on a CPU) unless
``--allow-cpu`` is given. ``--smoke`` runs every part on the CPU on a tiny subset (the test
suite does) to keep the script working.

Usage::

    # on a lent GPU machine, the data carried there in the git-ignored folder shared_data/:
    python3 bench/gpu.py --data shared_data/cifar10-jpeg.tar.gz --out "$OUT/gpu-h100.json"
    python bench/gpu.py --data tests-folder --smoke

Exit status: 0 when every part completed, 1 when the run was stopped or a part failed (the
JSON says which), 2 for bad arguments or no CUDA device.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: the sibling benchmark scripts

from cifar_alexnet.errors import CifarAlexnetError  # noqa: E402
from cifar_alexnet.runtime.atomic import atomic_write_json  # noqa: E402
from train_throughput import import_original_loop, synchronize  # noqa: E402

#: The original's best test accuracy (epoch 60 of 100), the target of "time to accuracy".
TARGET_ACCURACY = 90.34

#: Dense peak FLOP/s from the vendors' data sheets (SXM parts), by a substring of the device name.
PEAK_FLOPS = {
    "H200": {"bf16": 989e12, "tf32": 494e12},
    "H100": {"bf16": 989e12, "tf32": 494e12},
    "A100": {"bf16": 312e12, "tf32": 156e12},
    "L4": {"bf16": 121e12, "tf32": 60e12},
}


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def environment(device: torch.device) -> dict[str, Any]:
    """Device name, driver, CUDA/cuDNN/torch versions."""
    info: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
                            "host": platform.node()}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            info["driver"] = None
    else:
        info["device_name"] = platform.processor() or platform.machine()
        info["driver"] = None
    return info


def training_flops_per_image(device: torch.device, batch: int = 8) -> float:
    """FLOPs of one forward + backward pass of the AlexNet per image (FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    from cifar_alexnet.model import AlexNet

    model = AlexNet().to(device).train()
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        nn.functional.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / batch


def mfu(flops_per_image: float, images_per_s: float, device_name: str, precision: str) -> float | None:
    for key, peaks in PEAK_FLOPS.items():
        if key in device_name:
            return flops_per_image * images_per_s / peaks[precision]
    return None


# ------------------------------------------------------------------------------------ stopping


def smoke_size(split, wanted: int) -> int:
    """The largest class-balanced subset of ``split`` with at most ``wanted`` images (at least one per class)."""
    classes = len(split.classes)
    return classes * max(1, min(wanted // classes, int(split.class_counts().min())))


class Stopped(Exception):
    """A part was cut short (time budget or a signal); ``partial`` holds what it measured."""

    def __init__(self, reason: str, partial: dict[str, Any]):
        super().__init__(reason)
        self.partial = partial


class Budget:
    """Interrupt this process with SIGINT after ``seconds`` (None: never).

    SIGINT is what a user's Ctrl-C sends: the trainer then finishes its current step, saves a
    checkpoint and raises ``TrainingInterrupted``; outside the trainer Python raises
    ``KeyboardInterrupt``. Either way the part ends and the results so far are written.
    """

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.expired = threading.Event()
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        if self.seconds is not None:
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        self.expired.set()
        os.kill(os.getpid(), signal.SIGINT)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def reason(self, exc: BaseException) -> str:
        if self.expired.is_set():
            return f"stopped: time budget of {self.seconds:g} s (--budget-s) reached"
        return f"stopped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'signal'}"


class Interrupts:
    """SIGINT/SIGTERM handling outside the trainer: interrupt only code that is ready for it.

    A signal raises ``KeyboardInterrupt`` only while :attr:`armed` (inside a ``try`` that
    records the part as stopped), and disarms on raising, so it cannot land between two
    statements of the bookkeeping that writes the results. Any other time it is remembered in
    :attr:`pending` and the next part is skipped. The same holds when the ``KeyboardInterrupt``
    is swallowed inside a library call (seen once in four smoke runs on a 2-core CPU): the part
    completes, and :attr:`pending` stops the run at the next part boundary. (Inside ``cifar_alexnet.training.loop.train`` the
    trainer's own handler takes over: it finishes the step and saves a checkpoint.)
    """

    def __init__(self) -> None:
        self.armed = False
        self.pending: str | None = None

    def handle(self, signum, frame) -> None:
        self.pending = signal.Signals(signum).name
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt(self.pending)


# ------------------------------------------------------------------------------------ parts


def bench_original_loop(train_set, test_set, mean, std, device: torch.device, args) -> dict[str, Any]:
    """One epoch of the notebook's own loop (after a 2-batch warm-up), cuDNN autotuner off as in 2020."""
    original = import_original_loop()
    batch = max(2, min(32, args.smoke_images // 2)) if args.smoke else 512
    trainloader, _ = original.make_original_loaders(train_set, test_set, mean, std, batch_size=batch,
                                                    num_workers=0 if args.smoke else 4)
    torch.manual_seed(0)
    net = original.AlexNet_SukJoon().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.001)
    original.original_train_epoch(net, trainloader, criterion, optimizer, device, max_batches=2)  # warm-up
    synchronize(device)
    reset_peak_memory(device)
    start = time.perf_counter()
    seen = original.original_train_epoch(net, trainloader, criterion, optimizer, device,
                                         max_batches=args.original_batches)
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"what": "bench/original_loop.py: PIL DataLoader (4 workers), float32, batch 512",
            "batch_size": batch, "images": seen, "epoch_time_s": seconds, "images_per_s": seen / seconds,
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "peak_memory_gib": peak_memory_gib(device), "precision": "tf32"}


def summarise_history(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-epoch medians, best accuracy and time to :data:`TARGET_ACCURACY` of a trainer history."""
    elapsed, time_to_target, epoch_reached = 0.0, None, None
    for row in history:
        elapsed += row["epoch_time_s"]
        if time_to_target is None and row["test_acc"] >= TARGET_ACCURACY:
            time_to_target, epoch_reached = elapsed, row["epoch"]
    steady = history[1:] or history  # the first epoch includes warm-up (cuDNN autotuning, allocations)
    return {
        "epochs": len(history),
        "first_epoch_time_s": history[0]["epoch_time_s"] if history else None,
        "epoch_time_s": float(np.median([r["epoch_time_s"] for r in steady])) if history else None,
        "images_per_s": float(np.median([r["images_per_s"] for r in steady])) if history else None,
        "best_test_acc": max(r["test_acc"] for r in history) if history else None,
        "time_to_target_s": time_to_target,
        "epoch_reaching_target": epoch_reached,
        "history": history,
    }


def bench_trainer(recipe: str, data: str, device: torch.device, epochs: int, args, workdir: Path,
                  budget: Budget) -> dict[str, Any]:
    """``cifar_alexnet.training.loop.train`` with ``recipe`` for ``epochs``; its history, timings, time to target.

    Raises:
        Stopped: the budget ran out or a signal came; ``partial`` holds the epochs completed.
    """
    from cifar_alexnet.runtime.signals import TrainingInterrupted
    from cifar_alexnet.training.loop import NonFiniteLossError, train
    from cifar_alexnet.training.recipes import config_from_recipe

    overrides: dict[str, Any] = {"data": data, "out": str(workdir / recipe), "epochs": epochs, "quiet": True,
                                 "device": str(device), "verify": not args.no_verify}
    if args.smoke:
        overrides.update(batch_size=max(2, min(16, args.smoke_images // 2)), eval_batch_size=64,
                         limit_train=args.smoke_images,
                         limit_test=args.smoke_images)
    config = config_from_recipe(recipe, **overrides)
    reset_peak_memory(device)
    start = time.perf_counter()
    stopped = error = None
    try:
        train(config)
    except (TrainingInterrupted, KeyboardInterrupt) as exc:
        stopped = budget.reason(exc)
    except (NonFiniteLossError, torch.cuda.OutOfMemoryError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    history_file = workdir / recipe / "history.json"  # rewritten by the trainer after every epoch
    history = json.loads(history_file.read_text()) if history_file.is_file() else []
    result = {
        "what": f"cifar_alexnet.training.loop --recipe {recipe} (device-resident loader)",
        "config": config.to_json(),
        **summarise_history(history),
        "wall_time_s": time.perf_counter() - start,
        "cudnn_benchmark": device.type == "cuda" and not config.deterministic,
        "peak_memory_gib": peak_memory_gib(device),
        "precision": "bf16" if config.amp == "bf16" else ("fp16" if config.amp == "fp16" else "tf32"),
    }
    if error is not None:
        result["error"] = error
    if stopped is not None:
        result["stopped"] = stopped
        raise Stopped(stopped, result)
    return result


# ------------------------------------------------------------------------------------ main

PARTS = ("fast_recipe", "original_loop", "original_recipe_fast_loader")


def print_table(result: dict[str, Any], source: str) -> None:
    base = (result.get("original_loop") or {}).get("images_per_s")
    print(f"\n{'part':<30} {'epoch s':>9} {'images/s':>10} {'x original':>11} {'peak GiB':>9} {'MFU':>6}")
    for part in PARTS:
        r = result.get(part) or {}
        if r.get("images_per_s") is None:
            print(f"{part:<30} {r.get('skipped') or r.get('stopped') or r.get('error') or 'no result'}")
            continue
        ratio = f"{r['images_per_s'] / base:.2f}x" if base else "-"
        mem = f"{r['peak_memory_gib']:.2f}" if r.get("peak_memory_gib") is not None else "-"
        util = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "-"
        print(f"{part:<30} {r['epoch_time_s']:>9.2f} {r['images_per_s']:>10.0f} {ratio:>11} {mem:>9} {util:>6}")
    fast = result.get("fast_recipe") or {}
    if fast.get("time_to_target_s") is not None:
        reached = f"{fast['time_to_target_s']:.1f} s (epoch {fast['epoch_reaching_target']})"
    elif fast.get("best_test_acc") is not None:
        reached = f"not reached in {fast['epochs']} epochs (best {fast['best_test_acc']:.2f} %)"
    else:
        reached = "no epoch completed"
    print(f"fast recipe: time to {TARGET_ACCURACY} % test accuracy on {source}: {reached}")
    print(f"status: {result['status']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10: the JPEG archive, an image folder or the official data")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON result (default: bench/results/gpu-<UTC time>.json)")
    parser.add_argument("--fast-epochs", type=int, default=None,
                        help="epochs of the fast recipe (default: the recipe's)")
    parser.add_argument("--original-batches", type=int, default=None,
                        help="limit the original loop's epoch to N batches (default: a full epoch)")
    parser.add_argument("--budget-s", type=float, default=540.0,
                        help="stop by itself after this many seconds and keep what was measured (0: no limit)")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a CUDA device (hours; for debugging)")
    parser.add_argument("--no-verify", action="store_true", help="do not check the official archive's MD5s")
    parser.add_argument("--smoke", action="store_true",
                        help="CPU, tiny subset, 1 epoch each: checks that the script works, measures nothing")
    parser.add_argument("--smoke-images", type=int, default=40, help="images per split with --smoke")
    args = parser.parse_args(argv)
    # The budget counts from here: start-up (data decoding, CUDA initialisation) uses the lent time too.
    budget = Budget(args.budget_s if args.budget_s and args.budget_s > 0 else None)
    interrupts = Interrupts()
    previous_handlers = {s: signal.signal(s, interrupts.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    budget.start()
    try:
        interrupts.armed = True  # set-up (reading the data, CUDA start-up) may be interrupted: nothing measured yet
        return _run(args, argv, budget, interrupts)
    except KeyboardInterrupt as exc:
        print(f"{budget.reason(exc)} during set-up; nothing was measured", file=sys.stderr)
        return 1
    except CifarAlexnetError as exc:  # bad data or options: the package's one-line message, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        budget.cancel()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)


def _run(args: argparse.Namespace, argv: list[str] | None, budget: Budget, interrupts: Interrupts) -> int:
    started = time.perf_counter()
    from cifar_alexnet.data.cifar10 import channel_stats, class_balanced_subset, load_cifar10
    from cifar_alexnet.training.recipes import RECIPES

    if args.smoke:
        device = torch.device("cpu")
        args.original_batches = 2
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif args.allow_cpu:
        device = torch.device("cpu")
        print("warning: no CUDA device; --allow-cpu: the numbers below are CPU numbers", file=sys.stderr)
    else:
        print("error: no CUDA device (torch.cuda.is_available() is False; torch "
              f"{torch.__version__}, CUDA build {torch.version.cuda}). This benchmark is for a GPU: on a CPU it "
              "would run for hours. Check the driver (nvidia-smi), or pass --allow-cpu, or --smoke.",
              file=sys.stderr)
        return 2
    env = environment(device)
    print(f"device: {env['device_name']} ({device}), torch {env['torch']}, driver {env.get('driver')}", flush=True)
    out = args.out or Path(__file__).resolve().parent / "results" / (
        f"gpu-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}{'-smoke' if args.smoke else ''}.json")

    train_set, test_set = load_cifar10(args.data, verify=not args.no_verify)
    if args.smoke:  # at most --smoke-images, as many of every class (tiny test data sets have fewer)
        train_set, test_set = (class_balanced_subset(split, smoke_size(split, args.smoke_images))
                               for split in (train_set, test_set))
    mean, std = channel_stats(train_set.images)
    flops = training_flops_per_image(device)
    result: dict[str, Any] = {
        "benchmark": "bench/gpu.py",
        "command": " ".join([sys.executable, *sys.argv]) if argv is None else "bench/gpu.py " + " ".join(argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": env,
        "data": {"path": str(args.data), "variant": train_set.source, "train_images": len(train_set.labels),
                 "test_images": len(test_set.labels)},
        "smoke": args.smoke,
        "budget_s": budget.seconds,
        "training_flops_per_image": flops,
        "target_test_acc": TARGET_ACCURACY,
        "status": "running",
    }
    interrupts.armed = False  # from here on a signal stops the current part, see the loop below
    if interrupts.pending:
        raise KeyboardInterrupt(interrupts.pending)
    atomic_write_json(out, result)

    fast_epochs = 1 if args.smoke else (args.fast_epochs or RECIPES["fast"].epochs)
    original_recipe_epochs = 1 if args.smoke else 2
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "fast_recipe": (f"fast recipe, {fast_epochs} epochs",
                            lambda: bench_trainer("fast", args.data, device, fast_epochs, args, Path(tmp), budget)),
            "original_loop": ("original loop (PIL DataLoader, float32), 1 epoch",
                              lambda: bench_original_loop(train_set, test_set, mean, std, device, args)),
            "original_recipe_fast_loader": (
                f"original recipe, device-resident loader, {original_recipe_epochs} epochs",
                lambda: bench_trainer("original", args.data, device, original_recipe_epochs, args, Path(tmp),
                                      budget)),
        }
        stopped: str | None = None
        for number, part in enumerate(PARTS, 1):
            if stopped is None and interrupts.pending:  # a signal between two parts
                stopped = budget.reason(KeyboardInterrupt(interrupts.pending))
            if stopped is not None:
                result[part] = {"skipped": stopped}
                continue
            label, run_part = runs[part]
            print(f"{number}/{len(PARTS)} {label} ...", flush=True)
            try:
                interrupts.armed = True
                measured = run_part()
                interrupts.armed = False
                result[part] = measured
            except Stopped as exc:  # the trainer stopped after a step; its completed epochs are kept
                interrupts.armed = False
                result[part], stopped = exc.partial, str(exc)
            except KeyboardInterrupt as exc:  # outside the trainer (data loading, the original loop)
                interrupts.armed = False
                stopped = budget.reason(exc)
                result[part] = {"stopped": stopped}
            r = result[part]
            if r.get("images_per_s") is not None:
                r["mfu"] = mfu(flops, r["images_per_s"], env["device_name"], r["precision"])
            result["elapsed_s"] = time.perf_counter() - started
            atomic_write_json(out, result)
    budget.cancel()  # measuring is over; a late timer must not interrupt the final write

    base = (result.get("original_loop") or {}).get("images_per_s")
    result["speedup_images_per_s"] = {part: result[part]["images_per_s"] / base
                                      for part in ("original_recipe_fast_loader", "fast_recipe")
                                      if base and result[part].get("images_per_s") is not None}
    failed = [part for part in PARTS if "error" in result[part]]
    result["status"] = stopped or (f"error in {', '.join(failed)}" if failed else "complete")
    result["elapsed_s"] = time.perf_counter() - started
    atomic_write_json(out, result)
    print_table(result, train_set.source)
    print(f"wrote {out}")
    return 0 if result["status"] == "complete" else 1


if __name__ == "__main__":
    sys.exit(main())
