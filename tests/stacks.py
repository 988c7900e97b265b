"""Drive `modelstats run` as a user would: a real subprocess on free ports with a temporary
data directory, its output collected line by line, stopped with Ctrl-C (SIGINT), and every
process it started killed afterwards whatever happened.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelstats.etl.inference import job as inference_job
from modelstats.local.stack.embedded import EmbeddedPostgres
from modelstats.local.stack.ports import free_port
from modelstats.local.stack.state import StackState

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 120
RUNNING = "modelstats is running"


@dataclass
class Stack:
    popen: subprocess.Popen[bytes]
    data_dir: Path
    broker_port: int
    stats_port: int
    state: StackState
    lines: list[tuple[float, str]] = field(default_factory=list)
    # Started as `make run`: make leads the process group, and Ctrl-C goes to the group.
    via_make: bool = False

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.broker_port}/modelstats/default"

    @property
    def stats(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}"

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def refresh_state(self) -> StackState:
        """`stack.json` as the stack last wrote it (it rewrites it on every restart)."""
        self.state = StackState.read(self.data_dir) or self.state
        return self.state

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.state.processes.items() if p.pid is not None}

    def post(self, data: Any, type: str = "modelstats.metric.reported", **ce: str) -> str:
        event_id = ce.pop("id", None) or str(uuid.uuid4())
        headers = {
            "ce-specversion": "1.0",
            "ce-type": type,
            "ce-source": ce.pop("source", "/tests/e2e"),
            "ce-id": event_id,
            "content-type": "application/json",
            **{f"ce-{k}": v for k, v in ce.items()},
        }
        response = httpx.post(self.ingress, headers=headers, content=json.dumps(data), timeout=10)
        assert response.status_code == 202, response.text
        return event_id

    def tick_inference(self) -> str:
        """A tick of the etl-schedule PingSource (the inference job), sent now: tests that start
        the stack with `ping_every="1h"` choose when their windows are profiled."""
        source = "/apis/v1/namespaces/modelstats/pingsources/etl-schedule"
        return self.post({"source": "inference"}, type="dev.knative.sources.ping", source=source)

    def tick_inference_settled(self) -> str:
        """A tick once the rows just sent have settled: a window whose rows still arrive waits
        until none came for the job's SETTLE."""
        time.sleep(inference_job.SETTLE.total_seconds() + 0.5)
        return self.tick_inference()

    def broker_counter(self, name: str, **labels: str) -> float:
        """A sample of the broker's /metrics (0 when the series does not exist yet)."""
        text = httpx.get(f"http://127.0.0.1:{self.broker_port}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    def wait_line(self, pattern: str, timeout: float, after: int = 0) -> str:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, line in self.lines[after:]:
                if regex.search(line):
                    return line
            time.sleep(0.1)
        raise AssertionError(f"no output line matching {pattern!r} in {timeout}s")


def _pump(stack: Stack) -> None:
    assert stack.popen.stdout is not None
    for raw in iter(stack.popen.stdout.readline, b""):
        stack.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip()))


def kill_everything(stack: Stack) -> None:
    stack.refresh_state()  # processes restarted since the start have new pids
    for pid in [stack.popen.pid, *stack.pids().values()]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    postgres = EmbeddedPostgres(stack.data_dir / "pg")
    if (stack.data_dir / "pg" / "postmaster.pid").exists():
        with contextlib.suppress(Exception):
            postgres.start()  # attach to the running server to stop it
            postgres.stop()
    shutil.rmtree(stack.data_dir.parent, ignore_errors=True)


def start_stack(
    tmp_path: Path,
    env: dict[str, str] | None = None,
    ping_every: str = "1s",
    args: Sequence[str] = (),
    cwd: Path = ROOT,
    via_make: bool = False,
    prepare: Callable[[Path], None] | None = None,
) -> Stack:
    """`args`: more `modelstats run` options; `cwd`: where it starts (it finds the checkout);
    `via_make`: started as `make run ARGS=...` (without reinstalling), make leading the group;
    `prepare(data_dir)`: called before it starts, to leave there what an earlier run would."""
    # Not under pytest's basetemp: a concurrent pytest session may prune that while the
    # embedded PostgreSQL still lives there.
    data_dir = Path(tempfile.mkdtemp(prefix="modelstats-e2e-")) / "data"
    if prepare is not None:
        data_dir.mkdir()
        prepare(data_dir)
    broker_port, stats_port = free_port(), free_port()
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ETL_ROOT")}
    environment.update(env or {})
    environment["PYTHONUNBUFFERED"] = "1"
    options = [
        "--broker-port",
        str(broker_port),
        "--stats-port",
        str(stats_port),
        "--data-dir",
        str(data_dir),
        "--ping-every",
        ping_every,
        *args,
    ]
    if via_make:
        argv = ["make", "-s", "-C", str(ROOT), "-o", "install", "run", f"ARGS={' '.join(options)}"]
    else:
        argv = [sys.executable, "-m", "modelstats.cli", "run", *options]
    popen = subprocess.Popen(
        argv,
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # Nothing is running yet: the pid alone, so that kill_everything can clear up.
    stack = Stack(popen, data_dir, broker_port, stats_port, StackState(popen.pid, "", ""))
    stack.via_make = via_make
    threading.Thread(target=_pump, args=(stack,), daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if any(RUNNING in line for _, line in stack.lines):
            stack.state = StackState.read(data_dir) or stack.state
            assert stack.state.broker, "modelstats run said it runs without a stack.json"
            return stack
        if popen.poll() is not None:
            time.sleep(0.3)
            raise AssertionError(
                f"modelstats run exited with {popen.returncode}:\n{stack.output()}"
            )
        time.sleep(0.2)
    kill_everything(stack)
    raise AssertionError(f"modelstats run did not start in {START_TIMEOUT}s:\n{stack.output()}")


def stop_stack(stack: Stack, timeout: float = 40) -> float:
    """SIGINT (Ctrl-C) to `modelstats run` (to make's whole group, as a terminal sends it, when
    started with make); returns how long it took to exit."""
    started = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        if stack.via_make:
            os.killpg(stack.popen.pid, signal.SIGINT)
        else:
            stack.popen.send_signal(signal.SIGINT)
    try:
        stack.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_everything(stack)
        raise AssertionError(f"modelstats run did not stop in {timeout}s") from None
    return time.monotonic() - started


@contextlib.contextmanager
def running_stack(tmp_path: Path, **options: Any) -> Iterator[Stack]:
    """`start_stack(tmp_path, **options)`; afterwards Ctrl-C if it still runs, then every process
    it started is killed, however the block ended (a stop that hangs still fails the test)."""
    stack = start_stack(tmp_path, **options)
    try:
        yield stack
    finally:
        try:
            if stack.popen.poll() is None:
                stop_stack(stack)
        finally:
            kill_everything(stack)


def poll(fetch: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call `fetch` until it returns something truthy; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            last = fetch()
            if last:
                return last
        time.sleep(0.3)
    raise AssertionError(f"{what} not seen within {timeout}s (last: {last!r})")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Load:
    """Events posted back to back by a few threads, each remembered with the moment its 202
    came back; refusals and connection errors (a broker restarting) are counted and retried
    with the next event."""

    def __init__(self, stack: Stack, source: str, workers: int = 2):
        self.stack = stack
        self.source = source
        self.accepted: list[tuple[float, str]] = []
        self.failures = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._post, args=(n,), daemon=True) for n in range(workers)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _post(self, worker: int) -> None:
        body = json.dumps({"model": "load", "version": "v1", "metrics": {"drift": 0.5}})
        with httpx.Client(timeout=10) as client:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                event_id = f"{worker}-{n}-{uuid.uuid4().hex[:8]}"
                headers = {
                    "ce-specversion": "1.0",
                    "ce-type": "modelstats.metric.reported",
                    "ce-source": self.source,
                    "ce-id": event_id,
                    "content-type": "application/json",
                }
                try:
                    response = client.post(self.stack.ingress, headers=headers, content=body)
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code == 202:
                    self.accepted.append((time.monotonic(), event_id))
                else:
                    self.failures += 1
                    time.sleep(0.05)
                time.sleep(0.01)

    def accepted_after(self, moment: float) -> set[str]:
        return {event_id for at, event_id in list(self.accepted) if at > moment}

    def wait_accepted_after(self, moment: float, count: int, timeout: float = 30) -> None:
        poll(
            lambda: len(self.accepted_after(moment)) >= count,
            timeout,
            f"{count} events accepted after the restart",
        )
