"""Stopping cleanly on SIGINT/SIGTERM/SIGHUP: finish the current step, save, then end the run.

The exit status after a signal is the shell's convention, 128 + the signal's number: 130 after
Ctrl-C (SIGINT), 143 after SIGTERM, 129 after SIGHUP (the terminal closed).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import torch

from cifar_alexnet.errors import CifarAlexnetError
from cifar_alexnet.runtime import distributed
from cifar_alexnet.runtime.deferred_signals import STOP_SIGNALS

__all__ = ["StopFlag", "TrainingInterrupted"]


class TrainingInterrupted(CifarAlexnetError):
    """Raised after a signal once the resumable checkpoint is on disk; ``exit_code`` is 128 + the signal."""

    message_prefix = "\n"  # not an error: the line says what happened and how to resume

    def __init__(self, signal_name: str, exit_code: int, checkpoint: Path, command: str):
        super().__init__(f"{signal_name} received: stopped after the current step and saved "
                         f"{checkpoint}. Resume with:\n  {command}")
        self.signal_name, self.exit_code, self.command = signal_name, exit_code, command
        self.run_dir = checkpoint.parent


class StopFlag:
    """Set by the SIGINT/SIGTERM/SIGHUP handlers; read by the training loop after every step.

    The first signal asks for a clean stop. A second one raises ``KeyboardInterrupt`` at once
    (the previous checkpoint is still intact thanks to the atomic writes).
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: aborting without a new checkpoint")
        self.signal_name = signal.Signals(signum).name
        print(f"\n{self.signal_name} received: finishing the current step, then saving a resumable checkpoint "
              "(send it again to abort at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set from there
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def exit_code(self) -> int:
        """128 + the number of the signal received (SIGTERM's when another process got it)."""
        return 128 + int(signal.Signals[self.signal_name or "SIGTERM"])

    def agreed(self, ctx: distributed.DistContext, device: torch.device) -> bool:
        """Whether any process got a signal; every process must call it at the same step (a collective).

        A process that learns of another's signal this way stops as after SIGTERM.
        """
        if not ctx.enabled:
            return self.signal_name is not None
        stop = torch.tensor(1 if self.signal_name else 0, device=device)
        distributed.all_reduce_max(stop, ctx)
        if stop.item() and self.signal_name is None:
            self.signal_name = "SIGTERM"
        return bool(stop.item())
