"""Where and in what precision the model runs: the device, autocast, reproducibility flags."""

from __future__ import annotations

import contextlib
import os
import platform
from typing import Iterator

import torch

from cifar_alexnet.errors import OptionsError

__all__ = ["autocast", "cpu_computes_bf16", "cpu_description", "reproducibility", "resolve_amp", "select_device", "sum_dtype"]


def select_device(requested: str | None = None, local_rank: int = 0) -> torch.device:
    """``requested`` if given, else the first available of CUDA, Apple MPS and the CPU.

    Raises:
        ValueError: the requested device does not exist on this machine.
    """
    mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise OptionsError(f"--device {requested}: not a device name; use cpu, cuda, cuda:N or mps") from None
        if device.type not in ("cpu", "cuda", "mps"):
            raise OptionsError(f"--device {requested}: this package runs on cpu, cuda or mps")
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise OptionsError(f"--device {requested}: CUDA is not available on this machine; use --device cpu")
            if device.index is None:
                device = torch.device("cuda", local_rank)
            if device.index >= torch.cuda.device_count():
                raise OptionsError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA "
                                 f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        if device.type == "mps" and not mps:
            raise OptionsError(f"--device {requested}: Apple MPS is not available here; use --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("mps") if mps else torch.device("cpu")


@contextlib.contextmanager
def reproducibility(seed: int, deterministic: bool) -> Iterator[None]:
    """Seed every generator; with ``deterministic``, make PyTorch use only deterministic kernels.

    Without ``deterministic``, cuDNN's autotuner (``benchmark``) picks the fastest convolution
    algorithm for each shape, which may differ from run to run. The global flags are put back
    on exit, so calling the trainer from Python leaves no trace.
    """
    previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                torch.backends.cudnn.benchmark)
    torch.manual_seed(seed)  # seeds the CPU and every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[1], previous[2]


def cpu_computes_bf16() -> bool:
    """True if oneDNN runs bfloat16 convolutions and matrix products natively on this CPU.

    That needs AVX512-BF16 or AMX (recent Xeons, AMD Zen 4 and later). Elsewhere bfloat16 is
    emulated: on an AVX2-only AMD EPYC (Zen 3) a bfloat16 training step of this network ran at
    3 images/s against 60 in float32.
    """
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_description() -> dict:
    """The CPU's model name, the vector instructions torch's kernels use on it, and its bfloat16 units.

    On a CPU these decide the speed more than the core count: among the 2-core VMs of
    ``bench/results/``, one with AVX-512 and bfloat16 units (AVX512-BF16, AMX) trains several
    times faster than one with AVX2 only.
    """
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu_model": model, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_bf16_units": cpu_computes_bf16()}


def resolve_amp(amp: str, device: torch.device) -> str:
    """The precision actually used: bf16 falls back where the device has no bfloat16 units.

    NVIDIA GPUs compute in bfloat16 from compute capability 8.0 (A100) on. Older ones (V100,
    T4) can only emulate it, slowly -- ``torch.cuda.is_bf16_supported()`` still says yes for
    them, because it counts emulation -- so the capability of ``device`` itself is checked, and
    they get fp16 with a GradScaler instead. CPUs without native bfloat16
    (:func:`cpu_computes_bf16`) train in float32, which is many times faster there.
    """
    if amp == "bf16" and device.type == "cuda" and torch.cuda.get_device_capability(device) < (8, 0):
        return "fp16"
    if amp == "bf16" and device.type == "cpu" and not cpu_computes_bf16():
        return "off"
    return amp


def autocast(device: torch.device, amp: str):
    """The autocast context for ``amp`` (``"off"``: a no-op context, everything in the model's dtype)."""
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def sum_dtype(device: torch.device) -> torch.dtype:
    """The dtype of on-device running sums: float64, except on MPS (which has none)."""
    return torch.float32 if device.type == "mps" else torch.float64
