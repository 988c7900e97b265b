"""CloudEvent parsing (binary and structured mode) and replies."""

from __future__ import annotations

import base64
import json

import pytest

from modelstats.core import cloudevents
from modelstats.core.errors import BadInput, PayloadTooLarge
from tests.cloudevents_http import binary, structured


def test_binary_mode_decodes_json_data_and_extensions():
    headers, body = binary({"a": 1}, id="x", partitionkey="k")
    event = cloudevents.parse(headers, body)
    assert (event.id, event.source, event.type) == ("x", "/tests", "modelstats.metric.reported")
    assert event.data == {"a": 1}
    assert event.time is None
    assert event.extensions == {"partitionkey": "k"}


def test_structured_mode_with_time_and_base64_data():
    headers, body = structured([1, 2], time="2026-01-01T00:00:00Z")
    event = cloudevents.parse(headers, body)
    assert event.data == [1, 2]
    assert event.time is not None and event.time.year == 2026
    envelope = {
        "specversion": "1.0",
        "id": "1",
        "source": "s",
        "type": "t",
        "datacontenttype": "application/json",
        "data_base64": base64.b64encode(b'{"k": true}').decode(),
    }
    event = cloudevents.parse(
        {"Content-Type": "application/cloudevents+json"}, json.dumps(envelope).encode()
    )
    assert event.data == {"k": True}


@pytest.mark.parametrize(
    ("headers", "body", "field"),
    [
        ({"content-type": "application/json"}, b"{}", "content-type"),
        (
            {"ce-specversion": "0.3", "ce-id": "1", "ce-source": "s", "ce-type": "t"},
            b"",
            "specversion",
        ),
        ({"ce-specversion": "1.0", "ce-source": "s", "ce-type": "t"}, b"", "id"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-type": "t"}, b"", "source"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s"}, b"", "type"),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "s",
                "ce-type": "t",
                "content-type": "application/json",
            },
            b"{not json",
            "data",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "s",
                "ce-type": "t",
                "ce-time": "noon",
            },
            b"",
            "time",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "s",
                "ce-type": "t",
                "ce-Bad_Name": "x",
            },
            b"",
            "bad_name",
        ),
        ({"content-type": "application/cloudevents+json"}, b"[1]", "body"),
        ({"content-type": "application/cloudevents+json"}, b"{", "body"),
        ({"content-type": "application/cloudevents-batch+json"}, b"[]", "content-type"),
    ],
)
def test_malformed_events_name_the_field(headers, body, field):
    with pytest.raises(BadInput) as caught:
        cloudevents.parse(headers, body)
    assert caught.value.field == field


def test_body_limit():
    headers, body = binary({"a": "x" * 100})
    with pytest.raises(PayloadTooLarge):
        cloudevents.parse(headers, body, max_bytes=50)


def test_lenient_data_keeps_bytes():
    headers, _ = binary(None)
    event = cloudevents.parse(headers, b"{oops", strict_data=False)
    assert event.data == b"{oops"


def test_reply_is_binary_mode_with_fixed_time():
    from datetime import UTC, datetime

    reply = cloudevents.reply(
        "t.stored", "/src", "id-1", {"k": 1}, time=datetime(2026, 1, 1, tzinfo=UTC)
    )
    headers, body = cloudevents.binary_response(reply)
    assert headers["ce-type"] == "t.stored"
    assert headers["ce-time"] == "2026-01-01T00:00:00Z"
    assert json.loads(body) == {"k": 1}
    assert (
        cloudevents.derived_id("a", "b")
        == cloudevents.derived_id("a", "b")
        != cloudevents.derived_id("ab", "")
    )
