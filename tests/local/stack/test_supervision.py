"""`modelstats run` as an unlucky operator meets it: parts killed under load come back and what
is accepted afterwards is stored; a part that cannot start stops the stack with a clear error;
a second Ctrl-C, with PostgreSQL down, still loses nothing accepted."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from modelstats.local.stack.embedded import EmbeddedPostgres
from tests.stacks import ROOT, Load, Stack, group_alive, poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def stored_ids(database_url: str, source: str) -> set[str]:
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            rows = conn.execute("SELECT id FROM ingest_events WHERE source = %s", (source,))
            return {row[0] for row in rows}
    except psycopg.OperationalError:
        return set()


def kill_and_wait_back(running: Stack, name: str, pid: int, exited: str) -> float:
    """SIGKILL one process (not its group); the moment the stack reports it ready again."""
    seen = len(running.lines)
    os.kill(pid, signal.SIGKILL)
    running.wait_line(
        rf"^run\s+\| WARNING {name} {exited}; restarting in 1s \(restart 1\)", 20, after=seen
    )
    running.wait_line(rf"^run\s+\| {name} is ready again \(pid \d+, restart 1\)", 60, after=seen)
    return time.monotonic()


def postmaster_pid(running: Stack) -> int:
    return int((running.data_dir / "pg" / "postmaster.pid").read_text().split("\n", 1)[0])


def test_a_killed_broker_function_or_database_comes_back_and_stores_what_it_accepts(
    stack_factory: Callable[..., Stack],
) -> None:
    running = stack_factory(ping_every="1h")
    source = "/tests/restarts"
    first_broker = running.pids()["broker"]
    with Load(running, source) as load:
        load.wait_accepted_after(0, 20)
        broker_back = kill_and_wait_back(
            running, "broker", first_broker, r"exited with -9 \(SIGKILL\)"
        )
        load.wait_accepted_after(broker_back, 20)
        # gunicorn's master only: its orphaned worker is cleared before the restart.
        ingest = running.pids()["ingest"]
        ingest_back = kill_and_wait_back(running, "ingest", ingest, r"exited with -9 \(SIGKILL\)")
        load.wait_accepted_after(ingest_back, 20)
        postmaster = postmaster_pid(running)
        gone = rf"exited \(postmaster pid {postmaster} is gone\)"
        postgres_back = kill_and_wait_back(running, "postgres", postmaster, gone)
        load.wait_accepted_after(postgres_back, 20)
    database_url = running.state.database_url
    # Everything accepted since the broker came back: through ingest's and PostgreSQL's deaths
    # the broker retried; the database came back within its retry schedule.
    expected = load.accepted_after(broker_back)
    poll(
        lambda: expected <= stored_ids(database_url, source),
        timeout=90,
        what=f"all {len(expected)} events accepted after the broker's restart stored",
    )
    state = running.refresh_state()
    assert state.processes["broker"].pid != first_broker
    assert state.processes["ingest"].pid != ingest
    assert state.postgres is not None
    assert state.postgres.pid == postmaster_pid(running) != postmaster
    broker_pid = state.processes["broker"].pid
    assert broker_pid is not None and group_alive(broker_pid)


def test_a_service_that_cannot_start_is_given_up_and_the_stack_exits_non_zero(
    stack_factory: Callable[..., Stack], tmp_path: Path
) -> None:
    manifests = tmp_path / "manifests"
    shutil.copytree(ROOT / "infra" / "knative", manifests)
    services = manifests / "services.yaml"
    text = services.read_text()
    assert '"--target", "etl"]' in text
    services.write_text(text.replace('"--target", "etl"]', '"--target", "no_such_function"]'))
    running = stack_factory(ping_every="1h", args=["--manifests", str(manifests)])
    pids = running.pids()
    try:
        code = running.popen.wait(timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            "the stack kept restarting etl:\n" + running.output()[-3000:]
        ) from None
    output = running.output()
    assert code == 1, output[-3000:]
    assert re.search(
        r"^run\s+\| ERROR etl is crash-looping: it ended 5 times within 300s"
        r" \(last: exited with \d+\); giving up$",
        output,
        re.M,
    ), output[-3000:]
    delays = re.findall(r"WARNING etl exited with \d+; restarting in (\S+) ", output)
    assert delays == ["1s", "2s", "4s", "8s"]
    assert "stopped (exit 1)" in output.splitlines()[-1]
    assert [name for name, pid in pids.items() if group_alive(pid)] == []
    assert not (running.data_dir / "pg" / "postmaster.pid").exists()


@pytest.fixture
def outside_database() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL the test stops and starts itself (the stack's own would be restarted)."""
    home = Path(tempfile.mkdtemp(prefix="modelstats-outside-"))
    server = EmbeddedPostgres(home / "pg")
    server.start()
    yield server
    server.remove()
    shutil.rmtree(home, ignore_errors=True)


def test_a_second_ctrl_c_with_the_database_down_spools_everything_in_flight(
    stack_factory: Callable[..., Stack], outside_database: EmbeddedPostgres
) -> None:
    url = outside_database.url
    running = stack_factory(ping_every="1h", env={"DATABASE_URL": url})
    source = "/tests/second-ctrl-c"
    body = json.dumps({"model": "ctrl-c", "version": "v1", "metrics": {"drift": 0.1}})
    accepted: list[str] = []

    def post(count: int) -> None:
        with httpx.Client(timeout=10) as client:
            for _ in range(count):
                event_id = f"e-{len(accepted)}"
                headers = {
                    "ce-specversion": "1.0",
                    "ce-type": "modelstats.metric.reported",
                    "ce-source": source,
                    "ce-id": event_id,
                    "content-type": "application/json",
                }
                response = client.post(running.ingress, headers=headers, content=body)
                assert response.status_code == 202, response.text
                accepted.append(event_id)

    post(20)
    poll(lambda: len(stored_ids(url, source)) == 20, 30, "the first 20 events stored")
    outside_database.stop()
    post(300)  # ingest answers 503: the broker holds them, retrying
    poll(
        lambda: running.broker_counter("modelstats_broker_delivery_retries_total") > 0,
        30,
        "retries against the stopped database",
    )
    running.popen.send_signal(signal.SIGINT)
    time.sleep(0.5)
    running.popen.send_signal(signal.SIGINT)
    assert running.popen.wait(timeout=60) == 0, running.output()[-3000:]
    spool = running.data_dir / "spool.jsonl"
    events = [json.loads(line)["event"] for line in spool.read_text().splitlines()]
    spooled = [event["id"] for event in events if event["source"] == source]
    outside_database.start()
    stored = stored_ids(url, source)
    assert stored, "nothing stored before the database went down"
    assert spooled, "nothing spooled"
    assert set(accepted) == stored | set(spooled)
    assert len(spooled) == len(set(spooled))
    assert "not waiting for the functions (second Ctrl-C)" in running.output()
