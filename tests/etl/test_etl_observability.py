"""What the etl function counts in its GET /metrics: records read, bad and late per source, and
the reports it sends, each record once (parsed with prometheus_client's parser)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from modelstats.core import timestamps
from modelstats.etl import windows
from tests.clients import function_client
from tests.cloudevents_http import binary
from tests.scrapes import Samples, moved, samples

SOURCE = "functions/etl/main.py"
PING = "dev.knative.sources.ping"
PINGSOURCE = "/apis/v1/namespaces/modelstats/pingsources/etl-schedule"


@pytest.fixture
def client(clean_db: str):
    with function_client("etl", SOURCE) as test_client:
        yield test_client


def tick(job: object, id: str) -> tuple[dict[str, str], bytes]:
    now = timestamps.format(timestamps.now())
    return binary(job, id=id, source=PINGSOURCE, type=PING, time=now)


def scrape(client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


def lines(start, seconds: list[int]) -> str:
    out = []
    for second in seconds:
        moment = timestamps.format(start + timedelta(seconds=second))
        record = {"model": "m", "version": "v1", "time": moment, "prediction": 1, "label": 1}
        out.append(json.dumps({**record, "latency_ms": 5, "score": 0.5}))
    return "".join(line + "\n" for line in out)


def test_records_read_bad_and_late_are_counted_once_per_source(client, etl_root):
    start = windows.start_of(timestamps.now(), timedelta(minutes=1)) - timedelta(minutes=10)
    log = etl_root / "inference.jsonl"
    log.write_text(lines(start, [0, 20, 40, 60, 80, 100]) + "not json\n{}\n")
    job = {"source": "jsonl", "path": str(log), "name": "web", "lateness": "0s"}
    records = "modelstats_etl_records_total"

    before = scrape(client)
    headers, body = tick(job, "t-1")
    assert client.post("/", headers=headers, content=body).status_code == 200
    after_first = scrape(client)
    assert moved(before, after_first, records, source="web", outcome="read") == 6
    assert moved(before, after_first, records, source="web", outcome="bad") == 2
    assert moved(before, after_first, records, source="web", outcome="late") == 0
    # Two windows, and the etl report of the bad lines.
    assert moved(before, after_first, "modelstats_etl_reports_total", source="web") == 3

    # Records for a window already reported arrive: late. Nothing is counted twice.
    with log.open("a") as handle:
        handle.write(lines(start, [10, 30]))
    headers, body = tick(job, "t-2")
    assert client.post("/", headers=headers, content=body).status_code == 200
    after_second = scrape(client)
    assert moved(after_first, after_second, records, source="web", outcome="read") == 2
    assert moved(after_first, after_second, records, source="web", outcome="late") == 2
    assert moved(after_first, after_second, records, source="web", outcome="bad") == 0
    assert moved(after_first, after_second, "modelstats_etl_reports_total", source="web") == 1
