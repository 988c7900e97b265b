"""The flag `modelstats run`'s signal handlers set (local/stack/lifecycle.py): safe to set from
a handler that lands anywhere on the main thread, even inside the flag's own wait."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from modelstats.local.stack.lifecycle import SignalFlag


@pytest.fixture
def on_sigusr1() -> Iterator[Callable[[SignalFlag], None]]:
    """`on_sigusr1(flag)`: SIGUSR1 sets that flag from now on."""
    target: list[SignalFlag] = []
    previous = signal.signal(signal.SIGUSR1, lambda number, frame: target[-1].set())
    yield target.append
    signal.signal(signal.SIGUSR1, previous)


def test_a_flag_waits_its_timeout_when_nothing_sets_it() -> None:
    flag = SignalFlag()
    began = time.monotonic()
    assert flag.wait(0.1) is False
    assert 0.1 <= time.monotonic() - began < 1
    assert not flag.is_set()


def test_signals_in_pairs_set_it_while_the_main_thread_waits(on_sigusr1) -> None:
    """Each signal twice at once, as make forwards its group's SIGTERM, many times over: the
    pairs land all over the wait loop, and each is seen within the wait."""

    def pair() -> None:
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR1)

    for _ in range(200):
        flag = SignalFlag()
        on_sigusr1(flag)
        threading.Timer(0.001, pair).start()
        began = time.monotonic()
        assert flag.wait(2.0), "the flag was not seen set"
        assert flag.is_set()
        assert time.monotonic() - began < 1.0
