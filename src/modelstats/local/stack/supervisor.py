"""Restarting the stack's children as a kubelet restarts a pod's containers.

A child that ends is restarted after a backoff that doubles from `first_delay` up to
`max_delay`; a child that then runs for `healthy_after` seconds starts again from the first
delay. A child that ends `crash_loop_failures` times within `crash_loop_window` seconds is
crash-looping: the supervisor raises CrashLoop and the stack stops with a non-zero exit,
naming the child and its last exit. Every exit, restart and return to readiness is one line.

A child is anything with the methods of `Child`: the functions and the broker (processes.py)
and the embedded PostgreSQL (embedded.py).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from modelstats.core.errors import ModelstatsError


class Child(Protocol):
    name: str

    @property
    def pid(self) -> int | None: ...

    def ended(self) -> str | None:
        """None while it runs (or is starting); else how it ended, e.g. `exited with 3`."""

    def can_restart(self) -> bool:
        """False while what it needs is not free yet (its port, held by leftovers)."""

    def clear(self) -> None:
        """Remove what is left of the previous run."""

    def restart(self) -> None:
        """Start again with the same command, port and data (must not block for long)."""

    def ready(self) -> bool:
        """It serves again (health check)."""


@dataclass(frozen=True)
class RestartPolicy:
    enabled: bool = True
    first_delay: float = 1.0
    max_delay: float = 30.0
    healthy_after: float = 60.0
    crash_loop_failures: int = 5
    crash_loop_window: float = 300.0
    # How long a restart may wait for the child's port to be released before it is tried
    # anyway (and fails, counting as one more exit).
    port_wait: float = 10.0

    def delay(self, streak: int) -> float:
        """The wait before the restart that follows `streak` earlier restarts in a row."""
        return float(min(self.first_delay * 2**streak, self.max_delay))


class CrashLoop(ModelstatsError):
    def __init__(self, name: str, failures: int, window: float, last: str):
        super().__init__(
            f"{name} is crash-looping: it ended {failures} times within {window:g}s"
            f" (last: {last}); giving up"
        )
        self.name = name


@dataclass
class _Watch:
    child: Child
    running_since: float
    failures: deque[float] = field(default_factory=deque)
    streak: int = 0  # restarts since the child last ran healthy for `healthy_after`
    restarts: int = 0
    restart_at: float | None = None
    due_since: float | None = None
    awaiting_ready: bool = False
    abandoned: bool = False  # ended with restarts disabled: reported once, then left alone


Say = Callable[[str], None]


class Supervisor:
    """Call `check()` every few hundred milliseconds from the thread that started the
    children (a child's parent-death signal follows the thread that forked it)."""

    def __init__(
        self,
        children: Iterable[Child],
        policy: RestartPolicy,
        say: Say,
        on_restart: Callable[[Child], None] = lambda child: None,
        stopping: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.policy = policy
        self._say = say
        self._on_restart = on_restart
        self._stopping = stopping
        self._clock = clock
        now = clock()
        self._watches = [_Watch(child, running_since=now) for child in children]

    def restarts(self, name: str) -> int:
        return sum(w.restarts for w in self._watches if w.child.name == name)

    def check(self) -> None:
        """Notice exits, restart what is due, report readiness; CrashLoop when one gives up."""
        now = self._clock()
        for watch in self._watches:
            if watch.abandoned:
                continue
            if watch.restart_at is None:
                self._check_running(watch, now)
            elif now >= watch.restart_at and not self._stopping():
                self._restart_when_free(watch, now)

    def _check_running(self, watch: _Watch, now: float) -> None:
        child = watch.child
        how = child.ended()
        if how is None:
            if watch.awaiting_ready and child.ready():
                watch.awaiting_ready = False
                self._say(
                    f"{child.name} is ready again (pid {child.pid}, restart {watch.restarts})"
                )
                self._on_restart(child)  # the pid of a server that starts in the background
            if watch.streak and now - watch.running_since >= self.policy.healthy_after:
                watch.streak = 0  # ran healthy long enough: the backoff starts over
            return
        self._ended(watch, how, now)

    def _ended(self, watch: _Watch, how: str, now: float) -> None:
        child, policy = watch.child, self.policy
        watch.awaiting_ready = False
        if not policy.enabled:
            watch.abandoned = True
            self._say(f"WARNING {child.name} {how}; not restarted (--restart never)")
            return
        watch.failures.append(now)
        while watch.failures and now - watch.failures[0] > policy.crash_loop_window:
            watch.failures.popleft()
        if len(watch.failures) >= policy.crash_loop_failures:
            watch.abandoned = True
            error = CrashLoop(child.name, len(watch.failures), policy.crash_loop_window, how)
            self._say(f"ERROR {error}")
            raise error
        delay = policy.delay(watch.streak)
        watch.streak += 1
        watch.restart_at = now + delay
        self._say(
            f"WARNING {child.name} {how}; restarting in {delay:g}s (restart {watch.restarts + 1})"
        )

    def _restart_when_free(self, watch: _Watch, now: float) -> None:
        child = watch.child
        if watch.due_since is None:
            watch.due_since = now
            child.clear()
        if not child.can_restart() and now - watch.due_since < self.policy.port_wait:
            return  # leftovers of the old run still hold its port: look again next check
        watch.restart_at = watch.due_since = None
        watch.restarts += 1
        watch.running_since = now
        try:
            child.restart()
        except (OSError, ModelstatsError) as error:
            self._ended(watch, f"could not be started: {error}", now)
            return
        watch.awaiting_ready = True
        self._say(f"{child.name} restarted (restart {watch.restarts})")
        self._on_restart(child)
