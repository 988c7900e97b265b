"""The etl function over HTTP: a ping in, one reported CloudEvent (or 204) out, 400/405/503."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from modelstats.core import cloudevents, contract, timestamps
from modelstats.etl import windows
from modelstats.ingest import ingestor
from modelstats.store import db
from tests.clients import function_client
from tests.cloudevents_http import binary
from tests.configuration import configure
from tests.functions import function_process

SOURCE = "functions/etl/main.py"
PING = contract.PING
PINGSOURCE = "/apis/v1/namespaces/modelstats/pingsources/etl-schedule"


@pytest.fixture
def client(clean_db: str):
    with function_client("etl", SOURCE) as test_client:
        yield test_client


def tick(job: object, id: str = "tick-1") -> tuple[dict[str, str], bytes]:
    return binary(
        job, id=id, source=PINGSOURCE, type=PING, time=timestamps.format(timestamps.now())
    )


def as_event(response) -> cloudevents.Event:
    return cloudevents.parse(dict(response.headers), response.content)


def write_log(path: Path) -> None:
    """Two closed one-minute windows, ten minutes ago."""
    start = windows.start_of(timestamps.now(), timedelta(minutes=1)) - timedelta(minutes=10)
    with path.open("w") as handle:
        for i in range(6):
            moment = timestamps.format(start + timedelta(seconds=20 * i))
            line = {"model": "m", "version": "v1", "time": moment, "prediction": 1, "label": 1}
            handle.write(json.dumps({**line, "latency_ms": 5 + i, "score": i / 10}) + "\n")


def test_synthetic_tick_replies_with_one_reported_event_that_ingest_accepts(client):
    headers, body = tick({"source": "synthetic"})
    response = client.post("/", headers=headers, content=body)
    assert response.status_code == 200
    assert response.headers["ce-type"] == "modelstats.metric.reported"
    assert response.headers["ce-source"] == "/modelstats/etl/synthetic"
    event = as_event(response)
    stored = ingestor.validate(event, timestamps.now())  # ingest's own validation
    assert [r.model for r in stored] == ["GPT", "Llama", "Mistral"]


def test_jsonl_tick_reports_once_then_answers_204(client, tmp_path):
    log = tmp_path / "inference.jsonl"
    write_log(log)
    job = {"source": "jsonl", "path": str(log), "window": "1m", "lateness": "0s"}
    headers, body = tick(job, id="tick-1")
    first = client.post("/", headers=headers, content=body)
    assert first.status_code == 200
    reports = ingestor.validate(as_event(first), timestamps.now())
    assert sum(r.metrics["requests"] for r in reports) == 6
    assert all(r.metrics["prediction_accuracy"] == 1.0 for r in reports)
    # The same ping again (the broker retried): the same event, so ingest drops it.
    again = client.post("/", headers=headers, content=body)
    assert again.status_code == 200
    assert again.headers["ce-id"] == first.headers["ce-id"]
    # The next tick: nothing new.
    headers, body = tick(job, id="tick-2")
    later = client.post("/", headers=headers, content=body)
    assert later.status_code == 204
    assert later.content == b""


@pytest.mark.parametrize(
    ("headers", "body", "field"),
    [
        (
            binary({"source": "synthetic"}, type="modelstats.metric.reported")[0],
            json.dumps({"source": "synthetic"}).encode(),
            "type",
        ),
        (
            tick({})[0],
            json.dumps({"source": "jsonl", "path": "ROOT/x", "window": "1y"}).encode(),
            "data.window",
        ),
        (tick({})[0], json.dumps({"source": "kafka"}).encode(), "data.source"),
        (
            tick({})[0],
            json.dumps({"source": "jsonl", "path": "ROOT/no/such/dir"}).encode(),
            "data.path",
        ),
        (tick({})[0], b"{not json", "data"),
        ({"content-type": "application/json"}, b"{}", "content-type"),
    ],
)
def test_bad_pings_and_jobs_are_400_naming_the_field(client, etl_root, headers, body, field):
    body = body.replace(b"ROOT", str(etl_root).encode())  # paths under ETL_ROOT
    response = client.post("/", headers=headers, content=body)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_methods_and_health(client):
    assert client.get("/").status_code == 405
    assert client.get("/healthz").status_code == 200


def test_database_down_is_503(clean_db, client, tmp_path):
    configure(DATABASE_URL="postgresql://127.0.0.1:1/none?connect_timeout=1", DB_POOL_TIMEOUT_S="1")
    db.close_pools()
    log = tmp_path / "inference.jsonl"
    write_log(log)
    headers, body = tick({"source": "jsonl", "path": str(log)})
    response = client.post("/", headers=headers, content=body)
    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"


POISON = "poison\ud800"
HOSTILE_PINGS = [
    (tick({"source": "synthetic", "models": ["GPT", POISON]}), "data.models[1]"),
    (tick({"source": "synthetic", "name": POISON}), "data.name"),
    (tick({"source": "synthetic", "labels": {POISON: "x"}}), "data.labels.poison\\ud800"),
    (tick({"source": "jsonl", "path": "/logs/" + POISON}), "data.path"),
    (tick({"source": "synthetic"}, id="i" * 6000), "id"),
]


@pytest.mark.slow
def test_runs_under_functions_framework_as_the_container_does(clean_db):
    with function_process("etl", SOURCE, clean_db) as url:
        # Hostile pings (docs/hostile-inputs.md): each a 400 naming its field, then a good one.
        for (headers, body), field in HOSTILE_PINGS:
            refused = httpx.post(url, headers=headers, content=body, timeout=10)
            assert refused.status_code == 400, refused.text
            assert refused.json()["field"] == field
        headers, body = tick({"source": "synthetic", "seed": 7})
        response = httpx.post(url, headers=headers, content=body, timeout=10)
    assert response.status_code == 200
    assert response.headers["ce-type"] == "modelstats.metric.reported"
    assert len(response.json()["reports"]) == 3
