"""Dead letters through the real sink process and the real stats process: whatever an event's
data held, it is kept byte for byte and listed without a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from modelstats.local.functions import function_process
from tests.cloudevents_http import binary_headers

pytestmark = pytest.mark.slow

INGEST_SOURCE = "functions/ingest/main.py"
STATS_SOURCE = "functions/stats/main.py"
FAILED_AT = "http://ingest.modelstats.svc.cluster.local"

NAN_DATA = b'{"model": "M", "version": "v1", "metrics": {"drift": NaN, "lag": -Infinity}}'
NOT_UTF8 = b"\xff\xfe\x00\x81 raw bytes"
TRUNCATED = b'{"model": "M", "vers'


@pytest.fixture(scope="module")
def sink_and_stats(database_url: str) -> Iterator[tuple[str, str]]:
    with ExitStack() as stack:
        sink = stack.enter_context(function_process("dead_letters", INGEST_SOURCE, database_url))
        stats = stack.enter_context(function_process("stats", STATS_SOURCE, database_url))
        yield sink, stats


def letter_headers(event_id: str, content_type: str | None) -> dict[str, str]:
    headers = binary_headers(
        "modelstats.metric.reported",
        "/tests/deadletters",
        event_id,
        knativeerrordest=FAILED_AT,
        knativeerrorcode="400",
        knativeerrordata=base64.b64encode(b'{"error": "bad_input"}').decode(),
    )
    if content_type:
        headers["content-type"] = content_type
    return headers


def listed(stats: str, query: str = "") -> dict[str, dict[str, object]]:
    response = httpx.get(f"{stats}/dead-letters{query}", timeout=10)
    assert response.status_code == 200, response.text
    return {letter["event"]["id"]: letter for letter in response.json()["dead_letters"]}


def test_letters_whatever_their_data_are_kept_exactly_and_listed(
    sink_and_stats: tuple[str, str], clean_db: str
) -> None:
    sink, stats = sink_and_stats
    sent = {
        "nan": (letter_headers("nan", "application/json"), NAN_DATA),
        "bytes": (letter_headers("bytes", "application/octet-stream"), NOT_UTF8),
        "truncated": (letter_headers("truncated", "application/json"), TRUNCATED),
        "empty": (letter_headers("empty", None), b""),
    }
    for headers, body in sent.values():
        response = httpx.post(sink, headers=headers, content=body, timeout=10)
        assert response.status_code == 204, response.text
    # Structured mode: data_base64 holding bytes that are not UTF-8.
    envelope = {
        "specversion": "1.0",
        "id": "structured-bytes",
        "source": "/tests/deadletters",
        "type": "modelstats.metric.reported",
        "datacontenttype": "application/json",
        "data_base64": base64.b64encode(NOT_UTF8).decode(),
        "knativeerrorcode": "400",
    }
    response = httpx.post(
        sink,
        headers={"content-type": "application/cloudevents+json"},
        content=json.dumps(envelope).encode(),
        timeout=10,
    )
    assert response.status_code == 204, response.text

    letters = listed(stats)
    assert set(letters) == {"nan", "bytes", "truncated", "empty", "structured-bytes"}
    assert letters["nan"]["data"] == NAN_DATA.decode()
    assert letters["nan"]["data_base64"] is None
    assert letters["truncated"]["data"] == TRUNCATED.decode()
    assert letters["bytes"]["data"] is None
    assert base64.b64decode(str(letters["bytes"]["data_base64"])) == NOT_UTF8
    assert base64.b64decode(str(letters["structured-bytes"]["data_base64"])) == NOT_UTF8
    assert letters["empty"]["data"] is None and letters["empty"]["data_base64"] is None
    assert letters["nan"]["error"] == {
        "dest": FAILED_AT,
        "code": 400,
        "data": '{"error": "bad_input"}',
    }
    # The filtered listing reads the same rows.
    assert set(listed(stats, "?pending=true&limit=2")) <= set(letters)
    assert len(listed(stats, "?pending=true&limit=2")) == 2


def test_an_attribute_holding_nul_is_refused_by_name_not_a_500(
    sink_and_stats: tuple[str, str], clean_db: str
) -> None:
    sink, stats = sink_and_stats
    envelope = {
        "specversion": "1.0",
        "id": "has\u0000nul",
        "source": "/tests/deadletters",
        "type": "modelstats.metric.reported",
        "data": {"k": 1},
    }
    response = httpx.post(
        sink,
        headers={"content-type": "application/cloudevents+json"},
        content=json.dumps(envelope).encode(),
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["field"] == "id"
    assert listed(stats) == {}
