"""The reporter against the real local stack (`modelstats run`: broker, ingest, PostgreSQL):
what a model server sends is stored exactly once, through a broker outage too."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from modelstats.client import Reporter
from modelstats.local.broker.launch import BrokerConfig
from tests.brokers import free_port
from tests.stacks import Stack, poll, running_stack

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

_STORED = """
SELECT count(*), count(DISTINCT value) FROM metric_samples
WHERE model = %s AND time > now() - interval '1 day'
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("reporter"), ping_every="1h") as running:
        yield running


def stored(stack: Stack, model: str) -> tuple[int, int]:
    with psycopg.connect(stack.state.database_url) as conn:
        row = conn.execute(_STORED, (model,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def wait_stored(stack: Stack, model: str, expected: int, timeout: float = 90) -> tuple[int, int]:
    """The count once it reaches `expected`, then once more after a quiet second: a
    duplicate stored late would still show."""
    poll(lambda: stored(stack, model)[0] >= expected, timeout, f"{expected} samples of {model}")
    time.sleep(1.0)
    return stored(stack, model)


def test_ten_thousand_reports_from_eight_threads_are_stored_exactly_once(stack: Stack) -> None:
    model = f"reporter-{uuid.uuid4().hex[:8]}"
    reporter = Reporter(stack.ingress, source=f"/tests/{model}")

    def work(thread: int) -> None:
        for i in range(1250):
            reporter.report(model, "v1", {"n": thread * 10_000 + i}, labels={"t": str(thread)})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert reporter.close(timeout=60)
    counters = reporter.counters
    assert (counters.sent, counters.dropped, counters.failed) == (10_000, 0, 0)
    assert wait_stored(stack, model, 10_000) == (10_000, 10_000)


@contextlib.contextmanager
def second_broker(stack: Stack, port: int, spool: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A second broker in front of the stack's functions, started as the stack starts its own,
    which the test can stop."""
    services = {
        name: process.url for name, process in stack.state.processes.items() if name != "broker"
    }
    config = BrokerConfig(
        ROOT / "infra" / "knative", spool, port=port, services=services, demo=False
    )
    argv = config.command()
    popen = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        poll(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
            timeout=30,
            what="the second broker's /healthz",
        )
        yield popen
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
        try:
            popen.wait(20)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)


def test_a_broker_down_for_five_seconds_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    model = f"outage-{uuid.uuid4().hex[:8]}"
    port = free_port()
    url = f"http://127.0.0.1:{port}/modelstats/default"
    reporter = Reporter(url, source=f"/tests/{model}", flush_interval=0.2, retry_max=1.0)
    total = 0

    def report(count: int) -> None:
        nonlocal total
        for _ in range(count):
            reporter.report(model, "v1", {"n": total})
            total += 1

    with second_broker(stack, port, tmp_path / "spool.jsonl"):
        report(500)
        assert reporter.flush(timeout=30)
    # Down: reports keep coming and wait in the buffer.
    down_since = time.monotonic()
    while time.monotonic() - down_since < 5:
        report(100)
        time.sleep(0.1)
    assert reporter.counters.pending > 0
    with second_broker(stack, port, tmp_path / "spool.jsonl"):
        report(500)
        assert reporter.flush(timeout=60)
    counters = reporter.counters
    assert counters.retries >= 1, counters
    assert (counters.sent, counters.dropped, counters.failed) == (total, 0, 0)
    assert reporter.close()
    assert wait_stored(stack, model, total) == (total, total)
