"""What ingest tells an operator: its GET /metrics (parsed with prometheus_client's parser) and
its log lines, as real events go through the real function and PostgreSQL."""

from __future__ import annotations

import logging

import pytest

from tests.clients import function_client
from tests.cloudevents_http import binary
from tests.configuration import configure
from tests.scrapes import Samples, moved, samples

SOURCE = "functions/ingest/main.py"
REPORT = {
    "model": "Mistral",
    "version": "v1",
    "time": "2026-11-27T10:00:00Z",
    "metrics": {"prediction_accuracy": 0.19, "drift": 0.11, "inference_time": 12.5},
}


def scrape(client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


@pytest.fixture
def client(clean_db: str):
    with function_client("ingest", SOURCE) as test_client:
        yield test_client


def test_counters_move_with_each_outcome(client, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="modelstats")
    before = scrape(client)
    stored = binary({"reports": [REPORT, {**REPORT, "version": "v2"}]}, id="m-1")
    assert client.post("/", headers=stored[0], content=stored[1]).status_code == 200
    assert client.post("/", headers=stored[0], content=stored[1]).status_code == 200  # again
    bad = binary({**REPORT, "metrics": {"drift": "high"}}, id="m-bad", source="/server-7")
    assert client.post("/", headers=bad[0], content=bad[1]).status_code == 400
    wrong = binary(REPORT, id="m-wrong", type="modelstats.metric.stored")
    assert client.post("/", headers=wrong[0], content=wrong[1]).status_code == 400
    not_an_event = client.post("/", headers={"content-type": "application/json"}, content=b"{}")
    assert not_an_event.status_code == 400
    after = scrape(client)

    events = "modelstats_ingest_events_total"
    assert moved(before, after, events, outcome="stored") == 1
    assert moved(before, after, events, outcome="duplicate") == 1
    assert moved(before, after, events, outcome="rejected") == 3
    assert moved(before, after, events, outcome="unavailable") == 0
    rejected = "modelstats_ingest_events_rejected_total"
    assert moved(before, after, rejected, reason="invalid_data") == 1
    assert moved(before, after, rejected, reason="wrong_type") == 1
    assert moved(before, after, rejected, reason="not_cloudevent") == 1
    assert moved(before, after, "modelstats_ingest_samples_stored_total") == 6
    timed = "modelstats_http_request_duration_seconds_count"
    assert moved(before, after, timed, function="ingest", route="/", code="200") == 2
    assert moved(before, after, timed, function="ingest", route="/", code="400") == 3
    # The scrapes themselves are not timed.
    assert not [key for key in after if key[0] == timed and ("route", "/metrics") in key[1]]

    # Each rejected event: one INFO line naming it, the field and the reason; the stored and
    # duplicate ones only at DEBUG.
    info = [r for r in caplog.records if r.levelno == logging.INFO and r.name.startswith("model")]
    lines = [r.getMessage() for r in info]
    assert lines == [
        "rejected event m-bad from /server-7: data.metrics.drift: must be a number, got str",
        lines[1],
        lines[2],
    ]
    assert lines[1].startswith(
        "rejected event m-wrong from /tests: type: 'modelstats.metric.stored' is not a type"
        " ingest takes (modelstats.metric.reported, "
    )
    assert lines[2].startswith("rejected event ? from ?: ")
    assert info[0].fields == {
        "source": "/server-7",
        "id": "m-bad",
        "type": "modelstats.metric.reported",
        "field": "data.metrics.drift",
        "message": "must be a number, got str",
        "reason": "invalid_data",
    }
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert "event m-1 from /tests: stored 6 sample(s)" in debug
    duplicate = "event m-1 from /tests: a duplicate (first received"
    assert any(line.startswith(duplicate) for line in debug)


def test_a_body_over_the_limit_is_counted_as_too_large(clean_db) -> None:
    configure(MAX_BODY_BYTES="1024")
    with function_client("ingest", SOURCE) as client:
        before = scrape(client)
        headers, body = binary({**REPORT, "labels": {"pad": "x" * 2000}}, id="m-big")
        assert client.post("/", headers=headers, content=body).status_code == 413
        after = scrape(client)
    assert moved(before, after, "modelstats_ingest_events_rejected_total", reason="too_large") == 1
    assert moved(before, after, "modelstats_ingest_events_total", outcome="rejected") == 1
