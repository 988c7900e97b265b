"""Dead letters through the real sink process and the real stats process: whatever an event's
data held, it is kept byte for byte and listed without a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.cloudevents_http import binary_headers
from tests.functions import function_process

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


def structured_letter(**attributes: object) -> tuple[dict[str, str], bytes]:
    envelope = {
        "specversion": "1.0",
        "id": "structured",
        "source": "/tests/deadletters",
        "type": "modelstats.metric.reported",
        "knativeerrordest": FAILED_AT,
        "knativeerrorcode": "400",
        "data": {"k": 1},
        **attributes,
    }
    # json.dumps writes a lone surrogate as its escape, as a hostile sender would.
    return {"content-type": "application/cloudevents+json"}, json.dumps(envelope).encode()


def test_the_sink_keeps_what_ingest_refuses_whatever_its_text_or_size(
    sink_and_stats: tuple[str, str], clean_db: str
) -> None:
    """Ingest answers these 400 (docs/hostile-inputs.md): the sink must keep every one, or the
    event is lost (a sink that answers 503 has the broker retry and spool it for ever)."""
    sink, stats = sink_and_stats
    long_id = "i" * 6000
    long_source = "/s" + "s" * 5000
    surrogate_data = b'{"model": "poison\\ud800", "version": "v1", "metrics": {"x": 1}}'
    sent = {
        "id": structured_letter(id="poison\ud800"),
        "nul": structured_letter(id="has\u0000nul"),
        "extension": structured_letter(id="ext", tenant="poison\udfff"),
        "source": structured_letter(id="long-source", source=long_source),
        "data": (letter_headers("surrogate-data", "application/json"), surrogate_data),
        "long-id": (letter_headers(long_id, "application/json"), b"{}"),
        "not-utf8": (
            {**letter_headers("not-utf8", "application/json"), "ce-subject": "a%FFb"},
            b"{}",
        ),
    }
    for name, (headers, body) in sent.items():
        response = httpx.post(sink, headers=headers, content=body, timeout=10)
        assert response.status_code == 204, (name, response.text)
    # A redelivery of the 6 KB id reopens its letter rather than adding one.
    headers, body = sent["long-id"]
    assert httpx.post(sink, headers=headers, content=body, timeout=10).status_code == 204

    letters = listed(stats)
    assert set(letters) == {
        "poison\\ud800",
        "has\\x00nul",
        "ext",
        "long-source",
        "surrogate-data",
        long_id,
        "not-utf8",
    }
    assert letters[long_id]["failures"] == 2
    assert letters["long-source"]["event"]["source"] == long_source
    assert letters["ext"]["attributes"]["tenant"] == "poison\\udfff"
    assert letters["not-utf8"]["attributes"]["subject"] == "a\\xffb"
    assert letters["surrogate-data"]["data"] == surrogate_data.decode()
