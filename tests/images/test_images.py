"""What deploys, run here: each function's image, its default command, the cluster's security
settings (non-root, no capabilities, read-only root), real CloudEvents over HTTP, PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from infra import images
from tests.cloudevents_http import binary_headers, json_body

from .conftest import Container, run_once, start

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = sorted((ROOT / "src" / "modelstats" / "store" / "migrations").glob("*.sql"))
# Every test here runs podman: the slow tier (see tests/conftest.py).
pytestmark = pytest.mark.slow

PING_SOURCE = "/apis/v1/namespaces/modelstats/pingsources/etl-schedule"


def post_event(url: str, type: str, data: Any, source: str = "/tests/images") -> httpx.Response:
    headers, body = json_body(data)
    headers.update(binary_headers(type, source, f"image-{uuid.uuid4()}"))
    return httpx.post(url, headers=headers, content=body, timeout=30)


def reply_data(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()


def samples_of(database: str, model: str) -> list[tuple[str, str, float]]:
    with psycopg.connect(database, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT version, metric, value FROM metric_samples WHERE model = %s ORDER BY metric",
            (model,),
        ).fetchall()
    return [(str(v), str(m), float(x)) for v, m, x in rows]


def connections_of(database: str, container: Container) -> int:
    with psycopg.connect(database, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (container.name,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_the_ingest_image_migrates_the_database(
    podman: images.Podman, database: str, migration: subprocess.CompletedProcess[bytes]
) -> None:
    assert migration.returncode == 0, migration.stderr.decode(errors="replace")
    applied = migration.stdout.decode().split()
    assert [f"{p.stem}" for p in MIGRATIONS] == applied[1::2]
    with psycopg.connect(database) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    assert [v for (v,) in versions] == [int(p.stem[:4]) for p in MIGRATIONS]
    again = run_once(podman, "ingest", database, "modelstats", "migrate")
    assert again.returncode == 0 and again.stdout.decode().strip() == "schema is up to date"


def test_every_image_runs_as_non_root_on_a_read_only_root(
    podman: images.Podman, running: dict[str, Container]
) -> None:
    for function, container in running.items():
        image = images.image_name(function)
        user = podman.text("image", "inspect", "--format", "{{.Config.User}}", image)
        assert user == "10001:10001", function
        assert container.exec("id", "-u").stdout.decode().strip() == "10001", function
        denied = container.exec("touch", "/app/written")
        assert denied.returncode != 0 and b"Read-only file system" in denied.stderr, function
        assert container.exec("touch", "/tmp/written").returncode == 0, function
        # gunicorn's control socket went to /tmp (XDG_RUNTIME_DIR), not to a failed $HOME write.
        assert container.exec("test", "-S", "/tmp/gunicorn.ctl").returncode == 0, function
        assert "Read-only file system" not in container.logs(), function


def test_ingest_stores_an_event_and_replies_metric_stored(
    running: dict[str, Container], database: str
) -> None:
    report = {"model": "ImageIngest", "version": "v1", "metrics": {"accuracy": 0.91, "drift": 0.04}}
    response = post_event(running["ingest"].url, "modelstats.metric.reported", report)
    assert response.status_code == 200, response.text
    assert response.headers["ce-type"] == "modelstats.metric.stored"
    assert response.headers["ce-source"] == "/modelstats/ingest"
    (stored,) = reply_data(response)["reports"]
    assert (stored["model"], stored["metrics"]) == ("ImageIngest", report["metrics"])
    assert samples_of(database, "ImageIngest") == [("v1", "accuracy", 0.91), ("v1", "drift", 0.04)]


def test_ingest_refuses_bad_input_with_a_400_naming_the_field(
    running: dict[str, Container],
) -> None:
    bad = {"model": "ImageIngest", "version": "v1", "metrics": {"drift": "high"}}
    response = post_event(running["ingest"].url, "modelstats.metric.reported", bad)
    assert response.status_code == 400
    assert response.json()["field"] == "data.metrics.drift"


def test_alert_replies_alert_fired_to_a_low_accuracy(running: dict[str, Container]) -> None:
    # The shipped rule judges the mean of the stored samples of 5 minutes, from 5 samples on,
    # held for 5 minutes: eleven samples a minute apart, through ingest (which stores them and
    # replies with the stored event the broker would route to alert), fire it.
    reports = {
        "reports": [
            {
                "model": "ImageAlert",
                "version": "v1",
                "time": f"2026-01-01T00:{minute:02d}:00Z",
                "metrics": {"prediction_accuracy": 0.12},
            }
            for minute in range(11)
        ]
    }
    ingested = post_event(running["ingest"].url, "modelstats.metric.reported", reports)
    assert ingested.status_code == 200, ingested.text
    alert = running["alert"]
    stored = reply_data(ingested)
    response = post_event(alert.url, "modelstats.metric.stored", stored, "/modelstats/ingest")
    assert response.status_code == 200, response.text
    assert response.headers["ce-type"] == "modelstats.alert.fired"
    data = reply_data(response)
    assert data["status"] == "firing"
    (fired,) = data["alerts"]
    assert fired["rule"] == "LowPredictionAccuracy"  # the rules file shipped in the image
    assert fired["labels"]["model"] == "ImageAlert"
    # The log notifier (an outbox sender thread) writes the first version's line.
    deadline = time.monotonic() + 15
    while "ALERT mean of prediction_accuracy over 5m lower than 0.3" not in alert.logs():
        assert time.monotonic() < deadline, alert.logs()
        time.sleep(0.2)
    assert "'name': 'ImageAlert'" in alert.logs()


def test_etl_answers_a_ping_with_a_metric_reported_batch(running: dict[str, Container]) -> None:
    job = {"source": "synthetic", "models": ["GPT", "Llama"], "versions": ["v1"], "seed": 7}
    response = post_event(running["etl"].url, "dev.knative.sources.ping", job, PING_SOURCE)
    assert response.status_code == 200, response.text
    assert response.headers["ce-type"] == "modelstats.metric.reported"
    reports = reply_data(response)["reports"]
    assert sorted(r["model"] for r in reports) == ["GPT", "Llama"]
    for report in reports:
        assert set(report["metrics"]) == {"prediction_accuracy", "drift", "inference_time"}


def test_stats_answers_stats_and_healthz(running: dict[str, Container]) -> None:
    for accuracy in (0.8, 0.9):
        report = {"model": "ImageStats", "version": "v1", "metrics": {"accuracy": accuracy}}
        stored = post_event(running["ingest"].url, "modelstats.metric.reported", report)
        assert stored.status_code == 200, stored.text
    stats = running["stats"].url
    answer = httpx.get(f"{stats}/stats/ImageStats/v1", timeout=30)
    assert answer.status_code == 200, answer.text
    accuracy = answer.json()["metrics"]["accuracy"]
    assert accuracy["count"] == 2 and accuracy["mean"] == pytest.approx(0.85)
    assert httpx.get(f"{stats}/stats/NoSuchModel/v1", timeout=30).status_code == 404
    health = httpx.get(f"{stats}/healthz", timeout=30)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


def stop_with_sigterm(container: Container, limit: float) -> tuple[float, int]:
    """SIGTERM to the container's main process; (seconds until it exited, its exit code).
    Raises if it is still running after `limit` seconds (it is then killed)."""
    podman = container.podman
    started = time.monotonic()
    podman("kill", "--signal", "TERM", container.name)
    try:
        podman("wait", "--interval", "50ms", container.name, timeout=limit)
    except subprocess.TimeoutExpired:
        still = f"{container.function} still running {limit} s after SIGTERM"
        raise AssertionError(still) from None
    took = time.monotonic() - started
    code = int(podman.text("inspect", "--format", "{{.State.ExitCode}}", container.name))
    return took, code


# A request that touches PostgreSQL, per function.
def use_the_database(container: Container) -> None:
    url, function = container.url, container.function
    report = {"model": "ImageStop", "version": "v1", "metrics": {"prediction_accuracy": 0.9}}
    if function == "ingest":
        response = post_event(url, "modelstats.metric.reported", report)
    elif function == "alert":
        report["time"] = "2026-01-01T00:00:00Z"
        response = post_event(url, "modelstats.metric.stored", {"reports": [report]})
    elif function == "stats":
        response = httpx.get(f"{url}/models", timeout=30)
    else:
        job = {"source": "synthetic", "models": ["GPT"], "versions": ["v1"]}
        response = post_event(url, "dev.knative.sources.ping", job, PING_SOURCE)
    assert response.status_code in (200, 204), response.text


@pytest.mark.parametrize("function", images.FUNCTIONS)
def test_stops_within_10_s_of_sigterm_with_live_connections(
    function: str, podman: images.Podman, database: str, started: list[Container]
) -> None:
    container = start(podman, function, database)
    started.append(container)
    use_the_database(container)
    assert connections_of(database, container) >= 1  # the pool's connections are open
    with httpx.Client() as client:  # and a kept-alive HTTP connection, as the broker keeps
        assert client.get(f"{container.url}/healthz").status_code == 200
        took, code = stop_with_sigterm(container, limit=10)
    print(f"{function}: stopped {took:.2f} s after SIGTERM")
    assert code == 0, container.logs()  # a clean exit, not a kill
    assert connections_of(database, container) == 0


def test_a_request_stuck_in_the_database_ends_with_the_statement_timeout(
    podman: images.Podman, database: str, started: list[Container]
) -> None:
    """SIGTERM waits for requests in flight; one blocked in PostgreSQL is ended by the statement
    timeout (DB_STATEMENT_TIMEOUT_MS), answered 503 (the broker retries it), then the process
    exits: nothing holds the stop until gunicorn's own 30 s limit."""
    container = start(podman, "ingest", database, {"DB_STATEMENT_TIMEOUT_MS": "2000"})
    started.append(container)
    use_the_database(container)
    answers: list[httpx.Response] = []
    report = {"model": "ImageStuck", "version": "v1", "metrics": {"prediction_accuracy": 0.5}}
    with psycopg.connect(database) as locker:
        locker.execute("LOCK TABLE ingest_events IN ACCESS EXCLUSIVE MODE")
        sender = threading.Thread(
            target=lambda: answers.append(
                post_event(container.url, "modelstats.metric.reported", report)
            )
        )
        sender.start()
        deadline = time.monotonic() + 10
        while not waiting_on_a_lock(database, container):
            assert time.monotonic() < deadline, "the request never reached the lock"
            time.sleep(0.05)
        took, code = stop_with_sigterm(container, limit=10)
        locker.rollback()
    sender.join(timeout=30)
    print(f"ingest with a request stuck in PostgreSQL: stopped {took:.2f} s after SIGTERM")
    assert code == 0  # within the 10 s (stop_with_sigterm): without the statement timeout the
    # request would wait for the lock, released only after the stop
    (answer,) = answers
    assert answer.status_code == 503, answer.text
    assert samples_of(database, "ImageStuck") == []  # refused, so the broker sends it again


def waiting_on_a_lock(database: str, container: Container) -> bool:
    with psycopg.connect(database, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND wait_event_type = 'Lock'",
            (container.name,),
        ).fetchone()
    return bool(row and row[0])


def test_the_reply_of_etl_is_what_ingest_accepts(running: dict[str, Container]) -> None:
    """The two images agree on the event contract: etl's batch, sent on to ingest, is stored."""
    job = {"source": "synthetic", "models": ["ImageChain"], "versions": ["v2"], "seed": 3}
    batch = post_event(running["etl"].url, "dev.knative.sources.ping", job, PING_SOURCE)
    assert batch.status_code == 200, batch.text
    headers = {k: v for k, v in batch.headers.items() if k.startswith("ce-")}
    headers["content-type"] = "application/json"
    stored = httpx.post(running["ingest"].url, headers=headers, content=batch.content, timeout=30)
    assert stored.status_code == 200, stored.text
    assert json.loads(stored.content)["reports"][0]["model"] == "ImageChain"
