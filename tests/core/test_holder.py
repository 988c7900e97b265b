"""The one per-process holder: made on first use, anew in a forked child and in each loop."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading

import pytest

from modelstats.core import holder
from modelstats.core.holder import Holder


def counter() -> Holder[int]:
    numbers = itertools.count(1)
    return Holder(lambda: next(numbers))


def test_nothing_is_made_before_first_use_and_then_it_is_kept():
    made: list[int] = []
    held = Holder(lambda: made.append(1) or len(made))
    assert made == []
    assert held.peek() is None
    assert held.get() == 1
    assert held.get() == 1
    assert held.peek() == 1
    assert made == [1]


def test_a_forked_child_makes_its_own_and_leaves_the_parents_alone(monkeypatch):
    held = counter()
    assert held.get() == 1
    parent = os.getpid()
    monkeypatch.setattr(holder.os, "getpid", lambda: parent + 1)
    assert held.peek() is None  # the parent's is not the child's
    assert held.take() is None  # nor the child's to close
    assert held.get() == 2


def test_take_forgets_and_returns_the_value_to_close():
    held = counter()
    assert held.take() is None
    held.get()
    assert held.take() == 1
    assert held.peek() is None
    assert held.get() == 2


def test_set_replaces_what_make_would_make():
    held = counter()
    held.set(41)
    assert held.get() == 41
    assert held.take() == 41
    assert held.get() == 1


def test_per_loop_each_event_loop_gets_its_own():
    held = Holder(asyncio.get_running_loop, per_loop=True)

    async def twice() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        return held.get(), held.get()

    first = asyncio.run(twice())
    second = asyncio.run(twice())
    assert first[0] is first[1]
    assert second[0] is second[1]
    assert first[0] is not second[0]


def test_per_loop_outside_a_loop_is_an_error_for_get_and_nothing_to_take():
    held = Holder(object, per_loop=True)
    with pytest.raises(RuntimeError):
        held.get()
    assert held.take() is None


def test_concurrent_first_uses_make_one():
    made: list[int] = []
    gate = threading.Barrier(8)

    def make() -> int:
        made.append(1)
        return len(made)

    held = Holder(make)
    seen: list[int] = []

    def use() -> None:
        gate.wait()
        seen.append(held.get())

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [1]
    assert seen == [1] * 8
