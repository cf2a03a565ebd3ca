"""Holding SIGINT, SIGTERM and SIGHUP back for the few statements that must not be cut in two.

Making a file (or a folder) and entering the ``try`` that removes it again on failure are two
steps; a signal between them leaves the file behind. Inside :func:`deferred_signals` a signal
is noted instead of handled. On leaving, the first one noted goes to the handler that was in
place before, so it still stops the command, but only once the clean-up is armed::

    try:
        with deferred_signals():
            tmp = make_temporary_file()
        ...                      # a signal that came in the meantime is raised here
    except BaseException:
        remove(tmp)
        raise
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

__all__ = ["STOP_SIGNALS", "deferred_signals"]

#: The signals that stop a command: cifar_alexnet.cli turns each into an exception, and a training
#: loop's StopFlag (cifar_alexnet.runtime.signals) into a clean stop after the current step.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Note the signals of :data:`STOP_SIGNALS` while the block runs; hand the first to its own handler afterwards."""
    if threading.current_thread() is not threading.main_thread():  # handlers run in the main thread only
        yield
        return
    arrived: list[tuple[int, object]] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: arrived.append((signum, frame)))
                for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if arrived:
            signum, frame = arrived[0]
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler != signal.SIG_IGN:  # the default action: end the process as the signal would have
                signal.raise_signal(signum)
