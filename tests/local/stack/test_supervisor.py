"""The restart policy on real child processes, with delays of milliseconds instead of seconds."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from modelstats.local.stack.processes import Process
from modelstats.local.stack.supervisor import CrashLoop, RestartPolicy, Supervisor

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[3]


def child(name: str, code: str) -> Process:
    process = Process(name, [sys.executable, "-c", code], dict(os.environ), ROOT)
    process.start()
    return process


def supervise_until(supervisor: Supervisor, done: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the supervisor did not get there in time"
        supervisor.check()
        time.sleep(0.01)


def test_a_child_that_keeps_failing_backs_off_then_is_given_up_as_a_crash_loop() -> None:
    lines: list[str] = []
    flaky = child("flaky", "import sys; sys.exit(3)")
    policy = RestartPolicy(
        first_delay=0.05, max_delay=0.2, crash_loop_failures=5, crash_loop_window=60
    )
    supervisor = Supervisor([flaky], policy, say=lines.append)
    with pytest.raises(CrashLoop) as raised:
        supervise_until(supervisor, lambda: False)
    assert raised.value.name == "flaky"
    exits = [line for line in lines if "exited with" in line]
    assert exits == [
        "WARNING flaky exited with 3; restarting in 0.05s (restart 1)",
        "WARNING flaky exited with 3; restarting in 0.1s (restart 2)",
        "WARNING flaky exited with 3; restarting in 0.2s (restart 3)",
        "WARNING flaky exited with 3; restarting in 0.2s (restart 4)",  # capped
        "ERROR flaky is crash-looping: it ended 5 times within 60s (last: exited with 3);"
        " giving up",
    ]
    assert supervisor.restarts("flaky") == 4


def test_a_child_killed_by_a_signal_is_named_by_its_signal() -> None:
    lines: list[str] = []
    victim = child("victim", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    supervisor = Supervisor([victim], RestartPolicy(first_delay=0.05), say=lines.append)
    supervise_until(supervisor, lambda: supervisor.restarts("victim") == 1)
    assert lines[0] == "WARNING victim exited with -9 (SIGKILL); restarting in 0.05s (restart 1)"
    victim.signal_group(9)
    victim.wait(5)


def test_a_child_that_ran_healthy_long_enough_starts_the_backoff_over() -> None:
    lines: list[str] = []
    # Runs 0.3 s each time, longer than healthy_after: every restart waits the first delay.
    steady = child("steady", "import time; time.sleep(0.3)")
    policy = RestartPolicy(first_delay=0.05, healthy_after=0.2, crash_loop_window=0.2)
    supervisor = Supervisor([steady], policy, say=lines.append)
    supervise_until(supervisor, lambda: supervisor.restarts("steady") == 4)
    delays = [line.split("restarting in ")[1].split(" ")[0] for line in lines if "exited" in line]
    assert delays == ["0.05s"] * 4
    steady.wait(5)


def test_without_restarts_an_exit_is_reported_once_and_left_alone() -> None:
    lines: list[str] = []
    once = child("once", "import sys; sys.exit(2)")
    supervisor = Supervisor([once], RestartPolicy(enabled=False), say=lines.append)
    first_pid = once.pid
    supervise_until(supervisor, lambda: bool(lines))
    for _ in range(20):
        supervisor.check()
        time.sleep(0.01)
    assert lines == ["WARNING once exited with 2; not restarted (--restart never)"]
    assert once.pid == first_pid and supervisor.restarts("once") == 0


def test_nothing_is_restarted_once_the_stack_is_stopping() -> None:
    lines: list[str] = []
    stopping = False
    gone = child("gone", "pass")
    policy = RestartPolicy(first_delay=0.05)
    supervisor = Supervisor([gone], policy, say=lines.append, stopping=lambda: stopping)
    supervise_until(supervisor, lambda: bool(lines))  # the exit is noticed, a restart planned
    stopping = True
    for _ in range(20):
        supervisor.check()
        time.sleep(0.01)
    assert supervisor.restarts("gone") == 0
