"""Data-parallel training over several processes (``torchrun``), and the helpers it needs.

How a run is launched::

    torchrun --nproc_per_node=4 -m cifar_alexnet train --recipe fast

``torchrun`` starts one process per GPU and tells each who it is through environment
variables: ``RANK`` (0 .. WORLD_SIZE-1, unique over all machines), ``WORLD_SIZE`` (number of
processes) and ``LOCAL_RANK`` (index on this machine = which GPU to use). Without them the
trainer runs as a single process and nothing here does anything.

The conventions of a distributed run (written once, here):

* **The batch size is global.** ``--batch-size 512`` with 4 processes means 128 images per
  process per step; it must be divisible by the number of processes. Every process draws the
  same permutation and augmentation parameters for the global batch and takes its contiguous
  slice (:class:`cifar_alexnet.data.device_loader.DeviceLoader`), so -- with synchronised BatchNorm
  and dropout off (``--dropout 0``) -- the run computes what one process with the whole batch
  would, up to rounding. With dropout on, each process draws its own dropout masks, so an
  N-process run is an equally valid but different random draw from the 1-process run.
* **The learning rate is not scaled.** Because the global batch is what you asked for, the
  recipe's learning rate is used as it is.
* **Gradients are averaged** by :class:`~torch.nn.parallel.DistributedDataParallel` (an
  all-reduce after each backward pass). ``DataParallel`` is not used: it is single-process,
  slower, and deprecated for training.
* **BatchNorm** normalises with the statistics of the process's own slice unless
  ``--sync-bn`` is given; then every BatchNorm layer uses the statistics of the global batch
  (``torch.nn.SyncBatchNorm`` on GPUs; :class:`GlobalBatchNorm` below on CPUs, where PyTorch's
  SyncBatchNorm refuses to run).
* **Only rank 0 writes** checkpoints, histories, plots and log lines. Metrics (loss sums,
  correct counts) are all-reduced, so the history is that of the whole data set.
* Backends: NCCL between GPUs, gloo between CPU processes.
* **A stalled process ends the run.** Every collective (the gradient all-reduce, the metric
  sums, the stop agreement) waits at most :data:`COLLECTIVE_TIMEOUT_S` seconds for the other
  processes, instead of the backends' 30 minutes; then the waiting processes fail and
  ``torchrun`` stops the rest. The last checkpoint saved (``last.safetensors``, written at
  every epoch end) stays intact and ``--resume`` continues from it. Set the environment
  variable ``CIFAR_ALEXNET_COLLECTIVE_TIMEOUT`` (seconds) to change the limit, e.g. for a
  slow shared file system where one process decodes the data set while the others wait.
* **Workers stop when ``torchrun`` dies.** ``torchrun`` passes SIGTERM and SIGINT on to its
  workers, but when it is killed outright (SIGKILL: ``kill -9``, the out-of-memory killer, a
  scheduler's hard limit) nothing is passed on, and the workers would go on training as
  orphans, holding their GPUs. So on Linux every worker asks the kernel, as it joins the run,
  to be signalled the moment its parent exits, and turns that into one SIGTERM to itself
  (:func:`stop_when_parent_dies`); the trainer handles it as a SIGTERM through ``torchrun``:
  it saves a resumable checkpoint and exits with status 143.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import warnings
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from cifar_alexnet.errors import OptionsError

__all__ = [
    "COLLECTIVE_TIMEOUT_S",
    "DistContext",
    "GlobalBatchNorm",
    "all_reduce_sum",
    "collective_timeout",
    "all_reduce_max",
    "all_reduce_min",
    "context_from_env",
    "convert_to_global_batchnorm",
    "convert_to_sync_batchnorm",
    "differentiable_all_reduce_sum",
    "init_distributed",
    "shutdown_distributed",
    "PARENT_DEATH_SIGNAL",
    "stop_when_parent_dies",
    "wrap_model",
]


@dataclass(frozen=True)
class DistContext:
    """Who this process is in a (possibly one-process) run.

    Attributes:
        rank: global index of the process (0 for a single process).
        world_size: number of processes (1 for a single process).
        local_rank: index of the process on its machine (selects the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True for the one process that writes files and prints (rank 0)."""
        return self.rank == 0


def context_from_env(environ: dict | None = None) -> DistContext:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as set by ``torchrun``.

    Raises:
        ValueError: the variables are inconsistent (e.g. ``RANK`` >= ``WORLD_SIZE``).
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return DistContext()
    try:
        ctx = DistContext(rank=int(env["RANK"]), world_size=int(env["WORLD_SIZE"]),
                          local_rank=int(env.get("LOCAL_RANK", env["RANK"])))
    except ValueError:
        raise OptionsError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (they are set by torchrun; "
                         f"got RANK={env.get('RANK')!r} WORLD_SIZE={env.get('WORLD_SIZE')!r})") from None
    if not (ctx.world_size >= 1 and 0 <= ctx.rank < ctx.world_size and ctx.local_rank >= 0):
        raise OptionsError(f"inconsistent torchrun environment: RANK={ctx.rank} WORLD_SIZE={ctx.world_size} "
                         f"LOCAL_RANK={ctx.local_rank}")
    return ctx


#: Seconds one collective may wait for the other processes (see the module docstring).
COLLECTIVE_TIMEOUT_S = 300.0


def collective_timeout() -> timedelta:
    """:data:`COLLECTIVE_TIMEOUT_S`, or ``$CIFAR_ALEXNET_COLLECTIVE_TIMEOUT`` seconds if set."""
    text = os.environ.get("CIFAR_ALEXNET_COLLECTIVE_TIMEOUT")
    if text is None:
        return timedelta(seconds=COLLECTIVE_TIMEOUT_S)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise OptionsError(f"CIFAR_ALEXNET_COLLECTIVE_TIMEOUT={text!r}: give a positive number of seconds")
    return timedelta(seconds=seconds)


#: ``prctl`` option that sets the signal a process gets when its parent exits (``<linux/prctl.h>``).
PR_SET_PDEATHSIG = 1
#: The signal the kernel sends a worker when ``torchrun`` exits, relayed as one SIGTERM: a
#: real-time signal, which neither this package nor ``torchrun`` nor SLURM sends (None where
#: there are no real-time signals, outside Linux).
PARENT_DEATH_SIGNAL = getattr(signal, "SIGRTMIN", None)


def stop_when_parent_dies() -> None:
    """Have Linux send this process one SIGTERM when its parent (``torchrun``) exits; no-op elsewhere.

    Why: a ``torchrun`` killed with SIGKILL cannot pass the signal on, so without this its
    workers would keep training as orphans (see the module docstring). The SIGTERM reaches the
    trainer's handler (:class:`cifar_alexnet.runtime.signals.StopFlag`), which saves a resumable
    checkpoint and exits with 143; before training has started, SIGTERM simply ends the process.

    How: ``prctl(PR_SET_PDEATHSIG, sig)`` makes the kernel send ``sig`` when the parent dies. It
    sends it once for every thread of the dying parent (the orphan passes from thread to thread
    as they exit), and the trainer reads a second SIGTERM as "abort without saving". So the
    kernel sends :data:`PARENT_DEATH_SIGNAL` instead, whose handler sends this process SIGTERM
    the first time and ignores the repeats.

    The request only covers a parent that exits after it is made. The check after ``prctl``
    catches a parent that died between the ``getppid`` below and the request; this process then
    sends itself the SIGTERM. A parent that died even earlier cannot be told from a live one.
    Signal handlers can only be set from the main thread; called from another thread, this
    does nothing.
    """
    if (not sys.platform.startswith("linux") or PARENT_DEATH_SIGNAL is None
            or threading.current_thread() is not threading.main_thread()):
        return
    relayed = False

    def relay_once(signum, frame) -> None:
        nonlocal relayed
        if not relayed:
            relayed = True
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(PARENT_DEATH_SIGNAL, relay_once)
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)  # the C library this Python runs on
    if libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        warnings.warn(f"prctl(PR_SET_PDEATHSIG) failed ({os.strerror(errno)}): this process will not stop by "
                      "itself if torchrun is killed", RuntimeWarning, stacklevel=2)
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def init_distributed(ctx: DistContext, device: torch.device) -> None:
    """Join the process group (NCCL for CUDA devices, gloo otherwise); no-op for one process.

    ``MASTER_ADDR``/``MASTER_PORT`` come from ``torchrun`` (the ``env://`` rendezvous). First,
    the process arranges to get SIGTERM if ``torchrun`` dies (:func:`stop_when_parent_dies`).
    """
    if not ctx.enabled or dist.is_initialized():
        return
    stop_when_parent_dies()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size, timeout=collective_timeout())


def shutdown_distributed() -> None:
    """Leave the process group (if one was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place; returns it. No-op for one process."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_min(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise minimum of ``tensor`` over all processes, in place; returns it."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor


def all_reduce_max(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise maximum of ``tensor`` over all processes, in place; returns it."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


class _DifferentiableAllReduceSum(torch.autograd.Function):
    """``y = sum over processes of x``, with the matching backward pass.

    Each process's ``x`` contributes to every process's ``y``, so the gradient with respect to
    ``x`` is the sum over processes of the gradients with respect to ``y``: another all-reduce.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM)
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor) -> torch.Tensor:
        grad_x = grad_y.clone()
        dist.all_reduce(grad_x, op=dist.ReduceOp.SUM)
        return grad_x


def differentiable_all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum ``x`` over all processes; autograd flows back to every process's ``x``."""
    return _DifferentiableAllReduceSum.apply(x)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all processes, on any device (CPU included).

    Same parameters, buffers and results as ``nn.BatchNorm1d/2d`` applied to the
    concatenation of every process's batch. In training mode, per channel ``c``:

    1. ``count = all_reduce(N_local * H * W)``
    2. ``mean_c = all_reduce(sum x[:, c]) / count``
    3. ``var_c = all_reduce(sum (x[:, c] - mean_c)^2) / count`` (biased, used to normalise;
       two passes rather than ``E[x^2] - E[x]^2``, which loses digits in float32)
    4. ``out = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c``
    5. running estimates: ``new = (1 - momentum) * old + momentum * batch`` with the
       *unbiased* variance ``var_c * count / (count - 1)``, as PyTorch does.

    The all-reduces are :func:`differentiable_all_reduce_sum` (its backward pass all-reduces the
    gradient), so autograd yields the exact gradient of the global computation. In eval mode it is plain BatchNorm with the running
    statistics. PyTorch's ``nn.SyncBatchNorm`` does the same with fused kernels but only on
    accelerators; the trainer uses it on GPUs and this class on CPUs.

    Shapes:
        input ``(N, C)`` or ``(N, C, H, W)``; output the same.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 4):
            raise ValueError(f"GlobalBatchNorm expects (N, C) or (N, C, H, W) input, got shape {tuple(input.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not self.training or not (dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        reduce_dims = [0] if x.dim() == 2 else [0, 2, 3]
        shape = [1, -1] + [1] * (x.dim() - 2)  # broadcast a (C,) vector over x
        local_count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        count = differentiable_all_reduce_sum(local_count)  # (1,)
        mean = differentiable_all_reduce_sum(x.sum(dim=reduce_dims)) / count  # (C,)
        centred = x - mean.reshape(shape)
        var = differentiable_all_reduce_sum((centred * centred).sum(dim=reduce_dims)) / count  # (C,) biased
        out = centred * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * count / (count - 1)
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        return out


def convert_to_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d in ``module`` by a :class:`GlobalBatchNorm`.

    The new layers take over the old ones' parameter and buffer *objects* (not copies), so an
    optimizer built before the conversion still updates the right tensors.
    """
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        new = GlobalBatchNorm(module.num_features, eps=module.eps, momentum=module.momentum,
                              affine=module.affine, track_running_stats=module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_to_global_batchnorm(child))
    return module


def convert_to_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm over the global batch: ``nn.SyncBatchNorm`` on accelerators, :class:`GlobalBatchNorm` on CPUs.

    Both keep the parameter objects and the state_dict keys, so checkpoints load into a plain
    :class:`~cifar_alexnet.model.AlexNet`.
    """
    if device.type == "cpu":
        return convert_to_global_batchnorm(model)
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def wrap_model(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``model`` itself for one process; a ``DistributedDataParallel`` wrapper around it otherwise."""
    if not ctx.enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
