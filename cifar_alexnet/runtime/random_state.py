"""Every random generator a training run draws from, captured and restored together.

A resumed run continues bit for bit only if every stream continues where it stopped: torch's
CPU generator (dropout, weight initialisation), each CUDA device's, Python's ``random``,
NumPy's global generator, and the run's own ``torch.Generator`` objects (the training
loader's shuffling and augmentation).
"""

from __future__ import annotations

import random
import warnings
from typing import Any, Mapping

import numpy as np
import torch

from cifar_alexnet.errors import CheckpointError

__all__ = ["capture_rng_state", "restore_rng_state"]


def capture_rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Snapshot every random generator a training run draws from.

    Args:
        generators: extra ``torch.Generator`` objects by name (for example the
            :class:`~cifar_alexnet.data.device_loader.DeviceLoader`'s shuffling generator). Their
            states are stored as uint8 tensors.

    Returns:
        ``{"torch_cpu": ByteTensor, "torch_cuda": [ByteTensor per device] (only when CUDA is
        initialised), "python": random.getstate(), "numpy": np.random.get_state(),
        "generators": {name: ByteTensor}}`` -- pass it to :func:`save_checkpoint` as
        ``rng_state`` and later to :func:`restore_rng_state`.
    """
    state: dict[str, Any] = {
        "torch_cpu": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "generators": {name: gen.get_state() for name, gen in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None) -> None:
    """Put back a state captured by :func:`capture_rng_state`.

    Args:
        state: the dict from :func:`capture_rng_state` (or ``Checkpoint.rng_state``).
        generators: the same names as at capture time; each generator's state is set in place.

    Raises:
        CheckpointError: a generator named in ``generators`` has no saved state.
    """
    torch.set_rng_state(state["torch_cpu"].to("cpu"))
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    cuda_states = state.get("torch_cuda")
    if cuda_states:
        if torch.cuda.is_available() and torch.cuda.device_count() >= len(cuda_states):
            torch.cuda.set_rng_state_all([s.to("cpu") for s in cuda_states])
        else:
            warnings.warn(
                f"the checkpoint holds CUDA random states for {len(cuda_states)} device(s) but this machine "
                "has fewer; CUDA random numbers will differ from the original run", stacklevel=2)
    saved = state.get("generators", {})
    for name, gen in (generators or {}).items():
        if name not in saved:
            raise CheckpointError(f"no saved random state for generator {name!r} (saved: {sorted(saved)})")
        gen.set_state(saved[name].to("cpu"))
