"""One value per process (or per event loop), made on first use: the one holder of the project.

Pools, sender threads, a batcher's queue, the settings: each is made by its `make()` the first
time it is asked for, never at import (functions-framework imports `main.py` in gunicorn's
master, before the fork). What a process inherits across a fork is not its own (a pool's
sockets are shared with the parent, its threads did not survive), so a forked child makes its
own; with `per_loop`, so does each event loop (an asyncio queue or pool belongs to the loop
that made it).

    _pool: Holder[ConnectionPool] = Holder(open_pool)
    _pool.get()          # made on first use in this process
    _pool.take()         # forgotten; returned to close when this process made it
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Holder(Generic[T]):
    """`make()` returns the value (never None: None means "not made yet")."""

    def __init__(self, make: Callable[[], T], *, per_loop: bool = False):
        self._make = make
        self._per_loop = per_loop
        self._lock = threading.Lock()
        self._owner: tuple[int, asyncio.AbstractEventLoop | None] | None = None
        self._value: T | None = None

    def _here(self) -> tuple[int, asyncio.AbstractEventLoop | None]:
        if not self._per_loop:
            return os.getpid(), None
        loop = _running_loop()
        if loop is None:
            raise RuntimeError("a per-loop value is asked for outside a running event loop")
        return os.getpid(), loop

    def _mine(self) -> bool:
        if self._owner is None:
            return False
        if not self._per_loop:
            return self._owner[0] == os.getpid()
        return self._owner == (os.getpid(), _running_loop())

    def get(self) -> T:
        """This process's (and loop's) value, made now if it has none."""
        value = self._value
        if value is not None and self._mine():
            return value
        with self._lock:
            if self._value is None or not self._mine():
                here = self._here()
                self._value = self._make()
                self._owner = here
            return self._value

    def set(self, value: T) -> None:
        """This process's (and loop's) value from now on, instead of one `make()` would make."""
        with self._lock:
            self._value, self._owner = value, self._here()

    def peek(self) -> T | None:
        """This process's (and loop's) value if it has one; nothing is made."""
        value = self._value
        return value if value is not None and self._mine() else None

    def take(self) -> T | None:
        """This process's (and loop's) value, forgotten (to close it: the next `get()` makes a
        new one); None when it has none. Another's is left alone: not ours to close."""
        with self._lock:
            value = self._value
            if value is None or not self._mine():
                return None
            self._value = self._owner = None
            return value
