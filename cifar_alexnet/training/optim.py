"""The optimizer a recipe names, its learning-rate schedule, and restoring its state on resume."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cifar_alexnet.errors import CheckpointError
from cifar_alexnet.training.config import TrainConfig

__all__ = ["learning_rate", "load_optimizer_state", "make_optimizer", "set_learning_rate"]


def make_optimizer(config: TrainConfig, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD with the recipe's values; the fused CUDA kernels where available."""
    fused = {"fused": True} if device.type == "cuda" else {}
    params = model.parameters()
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=tuple(config.betas),
                                weight_decay=config.weight_decay, **fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, betas=tuple(config.betas),
                                 weight_decay=config.weight_decay, **fused)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                           weight_decay=config.weight_decay, **fused)


def learning_rate(config: TrainConfig, global_step: int, total_steps: int) -> float:
    """The learning rate of step ``global_step`` (0-based) of ``total_steps``.

    ``constant``: ``lr`` throughout (the original). ``onecycle``: linear from
    ``lr * warmup_start`` to ``lr`` over the warm-up (at most half of the run), then linear
    decay that reaches 0 one step after the last (so every step still learns).
    A pure function of the step number, so resuming needs no scheduler state.
    """
    if config.schedule == "constant":
        return config.lr
    steps_per_epoch = total_steps / config.epochs
    warmup = max(1, round(config.warmup_epochs * steps_per_epoch)) if config.warmup_epochs > 0 else 0
    warmup = min(warmup, total_steps // 2)  # short runs (tests, --epochs 1) still get a decay phase
    if global_step < warmup:
        return config.lr * (config.warmup_start + (1.0 - config.warmup_start) * global_step / warmup)
    remaining = max(1, total_steps - warmup)
    return config.lr * max(0.0, 1.0 - (global_step - warmup) / remaining)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``optimizer.load_state_dict(state)``, keeping this device's kernels and the parameters' layout.

    Two things a plain ``load_state_dict`` gets wrong when a run resumes:

    * it replaces every param group's options with the stored ones, ``fused`` and ``foreach``
      included, so a checkpoint written on a GPU (fused kernels) and resumed on a CPU -- or the
      other way round -- would keep the other device's kernel choice. The flags that
      :func:`make_optimizer` chose for *this* device are kept; they are put into the stored
      groups before loading, so ``step`` counters also land where those kernels want them;
    * checkpoints store contiguous (NCHW) tensors and ``load_state_dict`` restores device and
      dtype but not the memory format: with ``channels_last`` parameters the momentum / Adam
      buffers would get other strides than the parameters and gradients, which CUDA's fused
      kernels refuse ("must have same dtype, device, and layout"). Each buffer shaped like its
      parameter is copied into the parameter's layout.
    """
    kept = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
    if len(kept) != len(state["param_groups"]):
        raise CheckpointError(f"the checkpoint's optimizer has {len(state['param_groups'])} parameter group(s), "
                         f"this one {len(kept)}")
    state = {**state, "param_groups": [{**stored, **ours} for stored, ours in zip(state["param_groups"], kept)]}
    optimizer.load_state_dict(state)
    for param, buffers in optimizer.state.items():
        for name, value in buffers.items():
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                buffers[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)
