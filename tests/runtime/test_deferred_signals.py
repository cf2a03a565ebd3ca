"""cifar_alexnet.runtime.deferred_signals: a signal inside the block is handled on leaving it, once."""

from __future__ import annotations

import os
import signal

import pytest

from cifar_alexnet.runtime.deferred_signals import STOP_SIGNALS, deferred_signals


@pytest.fixture
def handlers():
    """Put every deferred signal's handler back after the test."""
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_the_handler_runs_after_the_block_not_inside_it(handlers, signum):
    seen = []
    handler = lambda number, frame: seen.append(number)  # noqa: E731
    signal.signal(signum, handler)
    with deferred_signals():
        os.kill(os.getpid(), signum)
        os.kill(os.getpid(), signum)
        inside = list(seen)
    assert inside == [] and seen == [signum]  # once, however often it came
    assert signal.getsignal(signum) is handler


def test_ctrl_c_is_raised_on_leaving_the_block(handlers):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            reached_the_end = True
    assert reached_the_end and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_signal_stays_ignored(handlers):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with deferred_signals():
        os.kill(os.getpid(), signal.SIGHUP)
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_without_a_signal_nothing_happens(handlers):
    seen = []
    signal.signal(signal.SIGTERM, lambda number, frame: seen.append(number))
    with deferred_signals():
        pass
    assert seen == []
