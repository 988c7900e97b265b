"""The demo's logged model: its traffic and labels go through ingest like anyone's, and the
inference job sees its drift and the accuracy falling with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from modelstats.core.cloudevents import Event
from modelstats.etl import jobs, runner
from modelstats.etl.inference import monitors
from tests.clients import function_client
from tests.configuration import configure

TRAFFIC = jobs.parse({"source": "demo", "part": "traffic", "rows": 120})
LABELS = jobs.parse({"source": "demo", "part": "labels", "rows": 120})


def ping(at: datetime) -> Event:
    return Event(
        id=f"tick-{at.isoformat()}",
        source="/tests/demo",
        type="dev.knative.sources.ping",
        time=at,
        data={},
    )


def test_the_demo_drifts_half_the_hour_and_its_accuracy_falls(clean_db, monkeypatch) -> None:
    configure(MONITORS_FILE=None)
    monitors.reset()
    start = datetime(2026, 12, 1, 10, 21, tzinfo=UTC)
    with function_client("ingest", "functions/ingest/main.py") as client:
        for minute in range(20):
            tick = start + timedelta(minutes=minute)
            for job in (TRAFFIC, LABELS):
                reply = runner.run(job, ping=ping(tick), now=tick).event()
                assert reply is not None
                headers = {
                    "ce-specversion": "1.0",
                    "ce-id": reply["id"],
                    "ce-source": reply["source"],
                    "ce-type": reply["type"],
                    "content-type": "application/json",
                }
                answer = client.post("/", headers=headers, content=json.dumps(reply.get_data()))
                assert answer.status_code == 204, answer.text
        again = runner.run(TRAFFIC, ping=ping(start), now=start).event()
        assert again is not None and again["id"] == runner.run(TRAFFIC, now=start).event()["id"]
    reports = runner.run(
        jobs.parse({"source": "inference"}), now=start + timedelta(minutes=25)
    ).reports
    windows = {}
    for r in reports:
        if r["model"] == "demo-fraud" and set(r["labels"]) == {"source"}:
            windows.setdefault(r["time"], {}).update(r["metrics"])
    calm, drifted = windows["2026-12-01T10:25:00Z"], windows["2026-12-01T10:35:00Z"]
    assert calm["rows"] == 600 and drifted["rows"] == 600
    assert drifted["dataset_drift"] == 1 and calm["dataset_drift"] == 0
    assert drifted["prediction_accuracy"] < calm["prediction_accuracy"] - 0.1
    assert 0.85 <= calm["label_coverage"] <= 0.95  # 9 in 10 calls get a label
