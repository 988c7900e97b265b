"""End to end: `modelstats run` on free ports with a temporary data directory, the real
functions, the real broker, an embedded PostgreSQL, driven over HTTP like a user would.

These tests depend on every function (ingest, stats, alert, etl). A function that is missing
fails its test with a message naming it: they are not skipped.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from modelstats.core import timestamps
from modelstats.core.cloudevents import Envelope
from modelstats.local.broker import spool
from modelstats.local.stack.ports import free_port
from tests.receivers import Receiver
from tests.stacks import Stack, group_alive, poll, running_stack, stop_stack

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PINGSOURCE = "/apis/v1/namespaces/modelstats/pingsources/etl-schedule"


@pytest.fixture(scope="module")
def webhook() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, webhook: Receiver) -> Iterator[Stack]:
    """One stack shared by the read-only scenarios (each uses its own model names)."""
    env = {"ALERT_WEBHOOK_URL": f"{webhook.url}/alerts"}
    with running_stack(tmp_path_factory.mktemp("stack"), env=env) as running:
        yield running


def stats_of(stack: Stack, model: str, version: str) -> dict[str, Any] | None:
    response = httpx.get(f"{stack.stats}/stats/{model}/{version}", timeout=5)
    return response.json() if response.status_code == 200 else None


def dead_letters(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT event_id, error_code, error_dest, received_at FROM dead_letters ORDER BY id"
        ).fetchall()
    return [
        dict(zip(("event_id", "code", "dest", "received_at"), row, strict=True)) for row in rows
    ]


def find_dead_letter(document: Any, event_id: str) -> dict[str, Any] | None:
    """The listed dead letter for `event_id`, wherever the stats response nests it."""
    if isinstance(document, dict):
        event = document.get("event")
        if isinstance(event, dict) and event.get("id") == event_id:
            return document
        items = document.values()
    elif isinstance(document, list):
        items = document
    else:
        return None
    for item in items:
        found = find_dead_letter(item, event_id)
        if found:
            return found
    return None


# -- scenarios -------------------------------------------------------------------------------


def test_the_stack_prints_its_urls_and_a_curl_line(stack: Stack) -> None:
    output = stack.output()
    assert f"broker ingress  {stack.ingress}" in output
    assert f"stats           {stack.stats}" in output
    assert f"curl -i {stack.ingress}" in output
    # Each process's lines carry its name.
    assert re.search(r"^broker\s+\| broker modelstats/default: ", output, re.M)
    assert re.search(r"^run\s+\| database schema ready", output, re.M)
    assert set(stack.pids()) >= {"broker", "ingest", "deadletters", "stats", "alert", "etl"}


def test_an_event_posted_to_the_ingress_shows_in_stats(stack: Stack) -> None:
    stack.post({"model": "e2e-stats", "version": "v1", "metrics": {"prediction_accuracy": 0.9}})
    stack.post({"model": "e2e-stats", "version": "v1", "metrics": {"prediction_accuracy": 0.7}})
    result = poll(
        lambda: (
            (s := stats_of(stack, "e2e-stats", "v1"))
            and s["metrics"].get("prediction_accuracy", {}).get("count") == 2
            and s
        ),
        timeout=30,
        what="stats for e2e-stats/v1 with 2 samples",
    )
    accuracy = result["metrics"]["prediction_accuracy"]
    assert accuracy["mean"] == pytest.approx(0.8)
    assert accuracy["min"] == pytest.approx(0.7) and accuracy["max"] == pytest.approx(0.9)


def test_low_accuracy_reaches_the_webhook_through_reply_and_alert_trigger(
    stack: Stack, webhook: Receiver
) -> None:
    # The shipped rule judges the mean of 5 minutes from 5 samples on, held for 5 minutes:
    # eleven samples a minute apart, in one event.
    now = datetime.now(UTC)
    reports = [
        {
            "model": "e2e-alert",
            "version": "v7",
            "time": timestamps.format(now - timedelta(minutes=minutes)),
            "metrics": {"prediction_accuracy": 0.1},
        }
        for minutes in range(10, -1, -1)
    ]
    stack.post({"reports": reports})
    # ingest's reply (metric.stored) is re-ingested and routed to alert by its trigger.
    deliveries = "modelstats_broker_deliveries_total"
    poll(
        lambda: (
            stack.broker_counter(
                "modelstats_broker_replies_total", trigger="ingest-metric-reported"
            )
            and stack.broker_counter(deliveries, trigger="alert-metric-stored", outcome="delivered")
        ),
        timeout=30,
        what="ingest's reply re-ingested and delivered to alert",
    )

    def alert_for_model() -> dict[str, Any] | None:
        for request in webhook.requests:
            payload = request.json()
            for alert in payload.get("alerts", []):
                if alert.get("labels", {}).get("model") == "e2e-alert":
                    return dict(alert)
        return None

    alert = poll(alert_for_model, timeout=30, what="an Alertmanager webhook for e2e-alert")
    assert alert["labels"]["version"] == "v7"
    assert alert["labels"]["metric"] == "prediction_accuracy"
    assert alert["status"] == "firing"
    # The first version's log line, prefixed with the process name.
    assert re.search(
        r"^alert\s+\|.*ALERT mean of prediction_accuracy over 5m lower than 0\.3",
        stack.output(),
        re.M,
    )


def test_a_malformed_event_is_kept_as_a_dead_letter_with_code_400(stack: Stack) -> None:
    event_id = stack.post({"model": "e2e-bad", "metrics": {"prediction_accuracy": "high"}})
    stack.wait_line(
        rf"{event_id} -> trigger ingest-metric-reported: failed for good \(HTTP 400", timeout=20
    )
    # Kept by the deadletters service, with Knative's error extensions.
    letters = poll(
        lambda: [d for d in dead_letters(stack.state.database_url) if d["event_id"] == event_id],
        timeout=20,
        what="the dead letter in PostgreSQL",
    )
    assert letters[0]["code"] == 400
    assert letters[0]["dest"] == stack.state.processes["ingest"].url
    listed = poll(
        lambda: find_dead_letter(
            httpx.get(f"{stack.stats}/dead-letters", timeout=5).json(), event_id
        ),
        timeout=20,
        what="the dead letter in GET /dead-letters",
    )
    assert listed["error"]["code"] == 400


def test_the_ping_drives_etl(stack: Stack) -> None:
    # --ping-every 1s: the etl-schedule PingSource (the inference job: nothing to profile yet,
    # an empty answer) and the demo's demo-schedule (the synthetic job) fire through the broker.
    poll(
        lambda: (
            stack.broker_counter("modelstats_broker_pings_total", pingsource="etl-schedule")
            and stack.broker_counter(
                "modelstats_broker_deliveries_total", trigger="etl-ping", outcome="delivered"
            )
        ),
        timeout=30,
        what="a tick of etl-schedule delivered to etl",
    )
    # The synthetic job replies with metric.reported; ingest stores it; stats shows the models.
    poll(
        lambda: stack.broker_counter("modelstats_broker_replies_total", trigger="etl-demo-ping"),
        timeout=30,
        what="etl's reply to the demo's tick re-ingested",
    )
    result = poll(lambda: stats_of(stack, "Llama", "v1"), timeout=30, what="stats for Llama/v1")
    assert result["metrics"]["prediction_accuracy"]["count"] >= 1


def test_etl_reads_logs_only_under_the_etl_root_it_prints(stack: Stack) -> None:
    """`modelstats run` gives the etl function ETL_ROOT=<data-dir>/etl (created, printed)."""
    from datetime import UTC, timedelta

    etl_root = (stack.data_dir / "etl").resolve()
    assert f"etl root        {etl_root}" in stack.output()
    assert stack.state.etl_root == str(etl_root)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    with (etl_root / "e2e.jsonl").open("w") as log:
        for i in range(3):
            moment = (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
            record = {"model": "e2e-etl", "version": "v1", "time": moment, "prediction": 1}
            log.write(json.dumps({**record, "label": 1, "latency_ms": 7}) + "\n")
    ping = {"type": "dev.knative.sources.ping", "source": PINGSOURCE}
    stack.post({"source": "jsonl", "path": str(etl_root), "lateness": "0s"}, **ping)
    outside = stack.post({"source": "jsonl", "path": "/etc/hostname"}, **ping)
    result = poll(lambda: stats_of(stack, "e2e-etl", "v1"), timeout=30, what="e2e-etl stats")
    assert result["metrics"]["requests"]["last_value"] == 3
    letters = poll(
        lambda: [d for d in dead_letters(stack.state.database_url) if d["event_id"] == outside],
        timeout=30,
        what="the refused job as a dead letter",
    )
    assert letters[0]["code"] == 400


def _log_time(line: str) -> float:
    match = re.search(r"(\d\d:\d\d:\d\d\.\d{3})", line)
    assert match, line
    moment = datetime.strptime(match[1], "%H:%M:%S.%f")
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


def test_a_function_that_is_down_gets_retries_with_backoff_then_dead_letters(
    stack_factory: Callable[..., Stack],
) -> None:
    """ingest is killed; the broker retries with the Broker's delivery (infra/knative/broker.yaml)
    and then the separate deadletters service keeps the event. `--restart never` keeps ingest
    down for the whole schedule (the stack would otherwise bring it back within seconds)."""
    from modelstats.local.knative import manifests

    spec = manifests.load(ROOT / "infra" / "knative").broker("modelstats", "default")
    assert spec is not None and spec.delivery is not None
    schedule = spec.delivery.retry_policy().schedule()

    running = stack_factory(ping_every="1h", args=["--restart", "never"])
    os.killpg(running.pids()["ingest"], signal.SIGKILL)
    time.sleep(0.5)
    event_id = running.post({"model": "e2e-down", "version": "v1", "metrics": {"drift": 0.5}})
    pattern = rf"{event_id} -> trigger ingest-metric-reported: attempt (\d+)/"
    running.wait_line(rf"{event_id} .*failed for good", timeout=sum(schedule) + 30)
    attempts = [
        (int(m[1]), _log_time(line)) for _, line in running.lines if (m := re.search(pattern, line))
    ]
    assert [n for n, _ in attempts] == list(range(1, len(schedule) + 2))
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(attempts)]
    for measured, expected in zip(gaps, schedule, strict=True):
        assert expected * 0.9 <= measured <= expected + 1.0, (gaps, schedule)
    letters = poll(
        lambda: [d for d in dead_letters(running.state.database_url) if d["event_id"] == event_id],
        timeout=20,
        what="the dead letter in PostgreSQL",
    )
    assert letters[0]["code"] == 0  # connection refused: no HTTP status
    assert letters[0]["dest"] == running.state.processes["ingest"].url


def test_a_busy_port_is_refused_clearly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "modelstats.cli",
                "run",
                "--broker-port",
                str(port),
                "--stats-port",
                str(free_port()),
                "--data-dir",
                str(tmp_path / "d"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stdout + result.stderr


def test_ctrl_c_stops_every_process(stack_factory: Callable[..., Stack]) -> None:
    running = stack_factory()
    pids = running.pids()
    postmaster = running.data_dir / "pg" / "postmaster.pid"
    assert postmaster.exists()
    took = stop_stack(running, timeout=40)
    assert running.popen.returncode == 0, running.output()[-2000:]
    assert took < 30
    assert [name for name, pid in pids.items() if group_alive(pid)] == []
    assert not postmaster.exists(), "the embedded PostgreSQL is still running"
    assert "stopped" in running.output().splitlines()[-1]


@pytest.mark.parametrize("how", ["make run, SIGTERM to its group", "SIGTERM twice"])
def test_a_repeated_sigterm_stops_gently_like_the_first(
    stack_factory: Callable[..., Stack], how: str
) -> None:
    """make forwards the SIGTERM of its process group to `modelstats run`, which so gets it
    twice: that is one request to stop, not a second Ctrl-C that kills the functions."""
    running = stack_factory(ping_every="1h", via_make=how.startswith("make"))
    pids = running.pids()
    if how.startswith("make"):
        os.killpg(running.popen.pid, signal.SIGTERM)
    else:
        stack_pid = running.state.pid
        os.kill(stack_pid, signal.SIGTERM)
        time.sleep(0.2)
        os.kill(stack_pid, signal.SIGTERM)
    try:
        poll(lambda: running.popen.poll() is not None, 60, "modelstats run stopped")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{running.output()[-3000:]}") from None
    output = running.output()
    assert "second Ctrl-C" not in output, output[-2000:]
    assert "did not stop in" not in output, output[-2000:]
    assert "not waiting" not in output
    assert [name for name, pid in pids.items() if group_alive(pid)] == []
    assert re.search(r"\brun\b.*\bstopped$", output.splitlines()[-1]), output[-500:]


def test_the_banner_says_what_waits_in_the_spool_and_the_command_it_gives_replays_it(
    stack_factory: Callable[..., Stack],
) -> None:
    def three_spooled(data_dir: Path) -> None:
        for n in range(3):
            data = {"model": "spooled", "version": "v1", "metrics": {"drift": 0.1 * n}}
            event = Envelope(
                {
                    "specversion": "1.0",
                    "type": "modelstats.metric.reported",
                    "source": "/tests/spooled",
                    "id": f"spooled-{n}",
                    "datacontenttype": "application/json",
                },
                json.dumps(data).encode(),
                True,
            )
            spool.append(data_dir / spool.FILE_NAME, event, "broker stopped before delivery")

    running = stack_factory(ping_every="1h", args=["--no-demo"], prepare=three_spooled)
    waiting = running.wait_line(r"spool\s+3 event\(s\) wait in", timeout=5)
    assert str(running.data_dir / spool.FILE_NAME) in waiting
    command = running.wait_line(r"send them again: ", timeout=5).split("send them again: ")[1]
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        shlex.split(command), capture_output=True, text=True, timeout=90, env=environment
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "spool: 3 sent, 0 kept" in done.stdout
    assert "outcome: 3 replayed: 3 delivered, 0 failed again" in done.stdout
    summary = poll(
        lambda: httpx.get(f"{running.stats}/stats/spooled/v1", timeout=5).json(),
        30,
        "the replayed events in stats",
    )
    assert summary["metrics"]["drift"]["count"] == 3
