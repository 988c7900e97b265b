"""Logged inference events into ingest (in process, real PostgreSQL): kept once, 400 naming
the field with nothing stored, a request and its response both kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from modelstats.core.columns import Columns
from tests.clients import function_client
from tests.loggers import kserve_headers, seldon_headers, seldon_message, v2_request, v2_response

SOURCE = "functions/ingest/main.py"
T0 = datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC)


@pytest.fixture
def client(clean_db: str):
    with function_client("ingest", SOURCE) as test_client:
        yield test_client


def blocks(url: str) -> list[dict]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT model, kind, rows, meta, features, outputs FROM inference_blocks ORDER BY seq"
        ).fetchall()
    return [
        {
            "model": model,
            "kind": kind,
            "rows": count,
            "meta": Columns.decode(meta),
            "features": features and Columns.decode(features),
            "outputs": outputs and Columns.decode(outputs),
        }
        for model, kind, count, meta, features, outputs in rows
    ]


def test_a_kserve_pair_is_kept_with_its_row_ids_and_redeliveries_store_nothing(
    client, clean_db
) -> None:
    features = {"x": np.array([[1.0, 2.0], [3.0, 4.0]])}
    request = kserve_headers("request", "call-1", "fraud", T0, content_type="text/plain")
    response = kserve_headers("response", "call-1", "fraud", T0)
    for _ in range(2):  # the second time is a redelivery of both halves
        answer = client.post("/", headers=request, content=v2_request(features))
        assert answer.status_code == 204, answer.text
        answer = client.post(
            "/", headers=response, content=v2_response({"p": np.array([1, 0])}, version="v3")
        )
        assert answer.status_code == 204, answer.text
    kept = blocks(clean_db)
    assert [(b["model"], b["kind"], b["rows"]) for b in kept] == [
        ("fraud", "request", 2),
        ("fraud", "response", 2),
    ]
    assert kept[0]["meta"].text["id"] == ["call-1:0", "call-1:1"]
    assert list(kept[0]["features"].numeric["x_1"]) == [2.0, 4.0]
    assert kept[1]["meta"].text["version"] == ["v3", "v3"]
    assert list(kept[1]["outputs"].numeric["p"]) == [1.0, 0.0]


def test_a_seldon_message_with_spec_version_0_3(client, clean_db) -> None:
    headers = seldon_headers("request", "puid-1", "iris", T0)
    answer = client.post("/", headers=headers, content=seldon_message([[5.1, 3.5]], ["sl", "sw"]))
    assert answer.status_code == 204, answer.text
    (kept,) = blocks(clean_db)
    assert kept["meta"].text["id"] == ["puid-1"]
    assert list(kept["features"].numeric["sw"]) == [3.5]


@pytest.mark.parametrize(
    ("body", "extra", "field"),
    [
        (b"not json", {}, "data"),
        (
            b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1]}]}',
            {},
            "data.inputs[0].data",
        ),
        (b'{"instances": [[1]]}', {"ce-inferenceservicename": ""}, "inferenceservicename"),
        (b'{"instances": [["poison\\ud800"]]}', {}, "data.instances[0][0]"),
        # Read as JSON whatever the logger's content type: the surrogate is found all the same.
        (
            b'{"instances": [["poison\\ud800"]]}',
            {"content-type": "application/x-www-form-urlencoded"},
            "data.instances[0][0]",
        ),
    ],
)
def test_bad_events_are_refused_naming_the_field_and_nothing_is_kept(
    client, clean_db, body: bytes, extra: dict[str, str], field: str
) -> None:
    headers = {**kserve_headers("request", "bad-1", "fraud", T0), **extra}
    answer = client.post("/", headers=headers, content=body)
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert blocks(clean_db) == []


def test_logged_records(client, clean_db) -> None:
    data = {
        "model": "churn",
        "version": "v2",
        "records": [
            {"id": "r1", "features": {"tenure": 3, "plan": "pro"}, "prediction": "stay"},
            {"id": "r2", "features": {"tenure": 40}, "prediction": "leave", "latency_ms": 9},
        ],
    }
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "batch-1",
        "ce-source": "/churn/server",
        "ce-type": "modelstats.inference.logged",
        "ce-time": "2026-12-01T10:00:00Z",
        "content-type": "application/json",
    }
    answer = client.post("/", headers=headers, content=json.dumps(data))
    assert answer.status_code == 204, answer.text
    (kept,) = blocks(clean_db)
    assert kept["kind"] == "record" and kept["meta"].text["id"] == ["r1", "r2"]
    assert kept["outputs"].text["prediction"] == ["stay", "leave"]
    assert kept["features"].text["plan"] == ["pro", None]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"model": "fraud", "labels": []}, "data.labels"),
        ({"model": "fraud", "labels": [{"id": "a"}]}, "data.labels[0].label"),
        ({"model": "fraud", "labels": [{"id": "a", "label": None}]}, "data.labels[0].label"),
        ({"model": "fraud", "labels": [{"id": "", "label": 1}]}, "data.labels[0].id"),
        (
            {"model": "fraud", "labels": [{"id": "a", "label": 1, "when": "x"}]},
            "data.labels[0].when",
        ),
        (
            {"model": "fraud", "labels": [{"id": "a", "label": 1, "time": "soon"}]},
            "data.labels[0].time",
        ),
        ({"labels": [{"id": "a", "label": 1}]}, "data.model"),
        ({"model": "fraud", "labels": [{"id": "a", "label": 1}] * 10_001}, "data.labels"),
    ],
)
def test_bad_labels_are_refused_naming_the_field_and_nothing_is_kept(
    client, clean_db, data: object, field: str
) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "labels-1",
        "ce-source": "/tests",
        "ce-type": "modelstats.label.reported",
        "content-type": "application/json",
    }
    answer = client.post("/", headers=headers, content=json.dumps(data))
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM inference_labels").fetchone() == (0,)
