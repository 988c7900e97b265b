"""The ingest function against a real PostgreSQL: stored once, replies, errors, outages."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelstats.store import db
from tests.clients import function_client
from tests.cloudevents_http import binary, structured
from tests.configuration import configure
from tests.functions import function_process

SOURCE = "functions/ingest/main.py"


@pytest.fixture
def client(clean_db: str):
    with function_client("ingest", SOURCE) as test_client:
        yield test_client


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def samples(url: str) -> list[tuple]:
    return rows(
        url,
        "SELECT model, version, metric, value, labels, time FROM metric_samples"
        " ORDER BY model, metric, time",
    )


REPORT = {
    "model": "Mistral",
    "version": "v1",
    "time": "2026-11-27T10:00:00Z",
    "metrics": {"prediction_accuracy": 0.19, "drift": 0.11},
    "labels": {"env": "prod"},
}


def test_stores_samples_and_replies_with_stored_event(client, clean_db):
    headers, body = binary({"reports": [REPORT]}, id="a-1", source="/model-server")
    response = client.post("/", headers=headers, content=body)
    assert response.status_code == 200
    assert response.headers["ce-type"] == "modelstats.metric.stored"
    assert response.headers["ce-source"] == "/modelstats/ingest"
    assert response.headers["ce-id"] not in ("a-1", "")
    assert response.json() == {"reports": [REPORT]}
    stored = samples(clean_db)
    assert [(m, metric, v, labels) for m, _, metric, v, labels, _ in stored] == [
        ("Mistral", "drift", 0.11, {"env": "prod"}),
        ("Mistral", "prediction_accuracy", 0.19, {"env": "prod"}),
    ]


def test_structured_mode_and_flat_shape(client, clean_db):
    headers, body = structured(
        {"name": "GPT", "version": "v2", "inference_time": 12.5}, time="2026-11-27T09:00:00Z"
    )
    response = client.post("/", headers=headers, content=body)
    assert response.status_code == 200
    (report,) = response.json()["reports"]
    # The sample takes the event's time; labels are always present in the reply.
    assert report == {
        "model": "GPT",
        "version": "v2",
        "time": "2026-11-27T09:00:00Z",
        "metrics": {"inference_time": 12.5},
        "labels": {},
    }
    assert len(samples(clean_db)) == 1


def test_redelivery_stores_nothing_and_gets_the_same_reply(client, clean_db):
    # No time anywhere: the samples take the arrival time of the FIRST delivery.
    data = [{"model": "Llama", "version": "v1", "metrics": {"drift": 0.2}}]
    headers, body = binary(data, id="dup-1")
    first = client.post("/", headers=headers, content=body)
    second = client.post("/", headers=headers, content=body)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert {k: v for k, v in first.headers.items() if k.startswith("ce-")} == {
        k: v for k, v in second.headers.items() if k.startswith("ce-")
    }
    assert len(samples(clean_db)) == 1
    assert rows(clean_db, "SELECT count(*) FROM ingest_events") == [(1,)]


def test_same_id_from_another_source_is_another_event(client, clean_db):
    for source in ("/a", "/b"):
        headers, body = binary(REPORT, id="same", source=source)
        assert client.post("/", headers=headers, content=body).status_code == 200
    assert len(samples(clean_db)) == 4


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            {"reports": [REPORT, {**REPORT, "metrics": {"drift": "high"}}]},
            "reports[1].metrics.drift",
        ),
        ({"reports": [REPORT, {**REPORT, "time": "soon"}]}, "reports[1].time"),
        ([REPORT, {**REPORT, "model": ""}], "[1].model"),
    ],
)
def test_bad_data_is_400_naming_the_field_and_stores_nothing(client, clean_db, data, field):
    headers, body = binary(data)
    response = client.post("/", headers=headers, content=body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert samples(clean_db) == []
    assert rows(clean_db, "SELECT count(*) FROM ingest_events") == [(0,)]


def test_nan_in_the_body_is_rejected(client, clean_db):
    headers, _ = binary(None)
    body = b'{"model": "m", "version": "v", "metrics": {"drift": NaN}}'
    response = client.post("/", headers=headers, content=body)
    assert response.status_code == 400
    assert response.json()["field"] == "data.metrics.drift"


def test_other_event_types_are_400_naming_the_type(client):
    headers, body = binary(REPORT, type="com.example.other")
    response = client.post("/", headers=headers, content=body)
    assert response.status_code == 400
    assert response.json()["field"] == "type"
    assert "com.example.other" in response.json()["message"]


def test_not_a_cloudevent_and_wrong_method(client):
    response = client.post("/", headers={"content-type": "application/json"}, content=b"{}")
    assert response.status_code == 400
    assert client.get("/").status_code == 405
    assert client.get("/healthz").json() == {"status": "ok"}


def test_body_size_limit_is_413(clean_db):
    configure(MAX_BODY_BYTES="1000")
    with function_client("ingest", SOURCE) as client:
        headers, body = binary({"reports": [REPORT] * 20})
        response = client.post("/", headers=headers, content=body)
    assert response.status_code == 413
    assert response.json()["field"] == "body"


def test_events_spanning_days_create_partitions(client, clean_db):
    data = [{**REPORT, "time": f"2026-11-{day}T23:59:59Z"} for day in (20, 21, 22)]
    headers, body = binary(data)
    assert client.post("/", headers=headers, content=body).status_code == 200
    partitions = rows(
        clean_db,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'samples'::regclass ORDER BY 1",
    )
    assert [p[0] for p in partitions] == [
        "samples_20261120",
        "samples_20261121",
        "samples_20261122",
    ]


@pytest.mark.slow
def test_concurrent_deliveries_of_one_event_store_it_once(clean_db):
    """Eight deliveries at once to a real functions-framework process, then eight distinct."""
    headers, body = binary({"reports": [REPORT] * 50}, id="burst", source="/retrying-broker")
    # No time anywhere: every reply must carry the sample time of the one stored delivery.
    untimed = [{k: v for k, v in REPORT.items() if k != "time"}]
    untimed_headers, untimed_body = binary(untimed, id="untimed", source="/retrying-broker")
    with function_process("ingest", SOURCE, clean_db) as url, httpx.Client() as http:

        def post(event_headers: dict[str, str], content: bytes = body) -> httpx.Response:
            return http.post(url, headers=event_headers, content=content, timeout=30)

        with ThreadPoolExecutor(8) as pool:
            same = list(pool.map(post, [headers] * 8))
            distinct = list(pool.map(post, [{**headers, "ce-id": f"other-{i}"} for i in range(8)]))
            untimed_replies = list(pool.map(post, [untimed_headers] * 8, [untimed_body] * 8))
    assert [r.status_code for r in same + distinct] == [200] * 16
    assert len({r.content for r in same}) == 1
    assert len({r.headers["ce-id"] for r in same}) == 1
    assert [r.status_code for r in untimed_replies] == [200] * 8
    assert len({r.content for r in untimed_replies}) == 1
    assert len({r.headers["ce-time"] for r in untimed_replies}) == 1
    counts = rows(clean_db, "SELECT source, count(*) FROM ingest_events GROUP BY source")
    assert counts == [("/retrying-broker", 10)]
    assert len(samples(clean_db)) == 9 * 50 * 2 + 2


@pytest.mark.slow
def test_database_down_answers_503_then_recovers(clean_db, postgres):
    if postgres is None:
        pytest.skip("needs the embedded server to stop it (TEST_DATABASE_URL is set)")
    headers, body = binary(REPORT, id="outage")
    with function_process("ingest", SOURCE, clean_db, {"DB_POOL_TIMEOUT_S": "1"}) as url:
        assert httpx.post(url, headers=headers, content=body, timeout=30).status_code == 200
        postgres.stop()
        try:
            down = httpx.post(url, headers={**headers, "ce-id": "during"}, content=body, timeout=30)
            health = httpx.get(f"{url}/healthz", timeout=30)
        finally:
            postgres.start()
        assert down.status_code == 503
        assert down.json()["error"] == "database_unavailable"
        assert health.status_code == 503
        # The broker retries the same event: once the database is back it is stored.
        retried = None
        for _ in range(50):
            retried = httpx.post(
                url, headers={**headers, "ce-id": "during"}, content=body, timeout=30
            )
            if retried.status_code == 200:
                break
        assert retried is not None and retried.status_code == 200
        # Counted by outcome in the function's own process (a real gunicorn worker).
        scraped = text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text)
        outcomes = {
            sample.labels["outcome"]: sample.value
            for family in scraped
            for sample in family.samples
            if sample.name == "modelstats_ingest_events_total"
        }
        assert outcomes["stored"] == 2
        assert outcomes["unavailable"] >= 1
    assert rows(clean_db, "SELECT id FROM ingest_events ORDER BY id") == [("during",), ("outage",)]
    db.close_pools()


def test_dead_letter_sink_keeps_the_event_with_its_error(clean_db):
    error_body = json.dumps({"error": "bad_input", "field": "data"}).encode()
    import base64

    headers = {
        "ce-specversion": "1.0",
        "ce-id": "lost-1",
        "ce-source": "/tests",
        "ce-type": "modelstats.metric.reported",
        "ce-knativeerrordest": "http://ingestor.modelstats.svc.cluster.local",
        "ce-knativeerrorcode": "400",
        "ce-knativeerrordata": base64.b64encode(error_body).decode(),
        "content-type": "application/json",
    }
    elsewhere = {**headers, "ce-knativeerrordest": "http://my-consumer.team.svc.cluster.local"}
    with function_client("dead_letters", SOURCE) as client:
        first = client.post("/", headers=headers, content=b"{not json")
        again = client.post("/", headers=headers, content=b"{not json")
        other = client.post("/", headers=elsewhere, content=b"{not json")
    assert first.status_code == again.status_code == other.status_code == 204
    assert first.content == b""
    from modelstats.store import deadletters

    # The redelivery is not stored twice (it is counted); the failure at another subscriber is
    # its own letter.
    other_letter, letter = deadletters.recent()
    assert (letter.failures, other_letter.failures) == (2, 1)
    assert other_letter.error_dest == "http://my-consumer.team.svc.cluster.local"
    assert (letter.source, letter.event_id, letter.error_code) == ("/tests", "lost-1", 400)
    assert letter.error_dest == "http://ingestor.modelstats.svc.cluster.local"
    assert json.loads(letter.error_data or "") == {"error": "bad_input", "field": "data"}
    assert letter.data == b"{not json"
    assert "knativeerrorcode" not in letter.original_attributes()
    assert letter.to_json()["data"] == "{not json"


def test_twins_in_one_batch_answer_with_the_stored_arrival_time(clean_db):
    """Two deliveries of one untimed event in the same transaction: the second must answer
    with the arrival time the first stored, so that their replies are identical."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from modelstats.core import cloudevents
    from modelstats.ingest import ingestor

    untimed = [{k: v for k, v in REPORT.items() if k != "time"}]
    event = cloudevents.parse(*binary(untimed, id="twin"))
    first_arrival = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    second_arrival = first_arrival + timedelta(seconds=1)

    async def deliver_twice() -> tuple[ingestor.Stored, ingestor.Stored]:
        writer = ingestor.Ingestor(writers=1)
        first, second = await asyncio.gather(
            writer.store(event, ingestor.validate(event, first_arrival), first_arrival),
            writer.store(event, ingestor.validate(event, second_arrival), second_arrival),
        )
        return first, second

    first, second = asyncio.run(deliver_twice())
    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.received_at == first_arrival
    assert [s[5] for s in samples(clean_db)] == [first_arrival] * 2
    db.close_pools()


def test_a_replace_report_takes_the_place_of_the_sample_at_its_time(client, clean_db) -> None:
    first = {**REPORT, "metrics": {"prediction_accuracy": 0.5, "drift": 0.2}}
    headers, body = binary({"reports": [first]}, id="r-1", source="/etl")
    assert client.post("/", headers=headers, content=body).status_code == 200
    again = {**REPORT, "metrics": {"prediction_accuracy": 0.8}, "replace": True}
    twice = {**REPORT, "metrics": {"prediction_accuracy": 0.9}, "replace": True}
    headers, body = binary({"reports": [again, twice]}, id="r-2", source="/etl")
    answer = client.post("/", headers=headers, content=body)
    assert answer.status_code == 200
    assert answer.json()["reports"][0]["replace"] is True
    stored = [(metric, value) for _, _, metric, value, _, _ in samples(clean_db)]
    # drift was not replaced; accuracy has one sample at that time: the last one sent.
    assert stored == [("drift", 0.2), ("prediction_accuracy", 0.9)]
    headers, body = binary({"reports": [{**REPORT, "replace": "yes"}]}, id="r-3", source="/etl")
    refused = client.post("/", headers=headers, content=body)
    assert refused.status_code == 400 and refused.json()["field"] == "reports[0].replace"
