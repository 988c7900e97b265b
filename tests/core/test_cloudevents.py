"""The one CloudEvents codec: the broker's raw envelopes, the functions' parsed events, replies."""

from __future__ import annotations

import base64
import json

import pytest

from modelstats.core import cloudevents
from modelstats.core.errors import BadInput
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
            {"ce-specversion": "2.0", "ce-id": "1", "ce-source": "s", "ce-type": "t"},
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


# The broker's view: attributes as strings, data as the exact bytes.

BINARY = {
    "ce-specversion": "1.0",
    "ce-id": "1",
    "ce-source": "/s",
    "ce-type": "t",
    "ce-myext": "x",
    "content-type": "application/json; charset=utf-8",
}


def test_binary_mode_keeps_the_bytes_and_the_content_type() -> None:
    body = b'{"a":   1}'
    envelope = cloudevents.decode(BINARY, body)
    assert envelope.data == body
    assert envelope.attributes["datacontenttype"] == "application/json; charset=utf-8"
    assert envelope.attributes["myext"] == "x"
    headers, out = cloudevents.encode_binary(envelope)
    assert out == body
    assert headers["content-type"] == BINARY["content-type"]
    assert headers["ce-myext"] == "x"


def test_structured_mode_data_shapes() -> None:
    base = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    as_json = cloudevents.decode(
        {"content-type": "application/cloudevents+json"},
        json.dumps({**base, "data": {"k": [1, 2]}, "knativebrokerttl": 7}).encode(),
    )
    assert json.loads(as_json.data) == {"k": [1, 2]}
    assert as_json.attributes["knativebrokerttl"] == "7"
    text = cloudevents.decode(
        {"content-type": "application/cloudevents+json"},
        json.dumps({**base, "datacontenttype": "text/plain", "data": "hello"}).encode(),
    )
    assert text.data == b"hello"
    raw = cloudevents.decode(
        {"content-type": "application/cloudevents+json"},
        json.dumps({**base, "data_base64": "AAEC"}).encode(),
    )
    assert raw.data == b"\x00\x01\x02"


def test_header_values_are_percent_encoded_as_the_http_binding_says() -> None:
    # The binding's own example, then space, double quote and percent, which it also encodes.
    assert cloudevents.quote_header("Euro € 😀") == "Euro%20%E2%82%AC%20%F0%9F%98%80"
    envelope = cloudevents.Envelope(
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "subject": 'café "50%"'}
    )
    headers, _ = cloudevents.encode_binary(envelope)
    assert headers["ce-subject"] == "caf%C3%A9%20%2250%25%22"
    assert cloudevents.decode(headers, b"").attributes["subject"] == 'café "50%"'
    # A value that looks percent-encoded survives the round trip: its % is encoded too.
    assert cloudevents.quote_header("/logs/a%20b") == "/logs/a%2520b"


def test_header_values_are_unquoted_then_percent_decoded() -> None:
    headers = {**BINARY, "ce-subject": '"a \\"quoted\\" value"', "ce-myext": "caf%c3%a9"}
    envelope = cloudevents.decode(headers, b"")
    assert envelope.attributes["subject"] == 'a "quoted" value'
    assert envelope.attributes["myext"] == "café"  # lower-case hex is accepted
    # What the cloudevents 1.x SDK sends (nothing encoded) arrives unchanged.
    assert cloudevents.decode({**BINARY, "ce-source": "/a b"}, b"").source == "/a b"
    with pytest.raises(BadInput) as caught:
        cloudevents.decode({**BINARY, "ce-source": "/x%C0%A0"}, b"")  # overlong: not UTF-8
    assert caught.value.field == "source"


def test_replies_are_percent_encoded_like_everything_else() -> None:
    reply = cloudevents.reply("t.stored", "/etl/jsonl/srv/my%20logs", "id 1", {"k": 1})
    headers, body = cloudevents.binary_response(reply)
    assert headers["ce-source"] == "/etl/jsonl/srv/my%2520logs"
    assert headers["ce-id"] == "id%201"
    event = cloudevents.parse(headers, body)
    assert (event.source, event.id) == ("/etl/jsonl/srv/my%20logs", "id 1")


def test_extension_names_follow_the_spec_must_not_its_should() -> None:
    # Lowercase letters and digits is a MUST; at most 20 characters only a SHOULD.
    long_name = "knativearrivaltimeextra"
    event = cloudevents.parse({**BINARY, f"ce-{long_name}": "x"}, b"")
    assert event.extensions[long_name] == "x"
    with pytest.raises(BadInput) as caught:
        cloudevents.parse({**BINARY, "ce-my-ext": "x"}, b"")
    assert caught.value.field == "my-ext"


def test_json_round_trip_is_exact() -> None:
    envelope = cloudevents.decode(BINARY, b"\xff\x00 not utf-8")
    again = cloudevents.from_json(json.loads(json.dumps(cloudevents.to_json(envelope))))
    assert again.data == envelope.data and again.attributes == envelope.attributes


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({k: v for k, v in BINARY.items() if k != "ce-type"}, "type"),
        ({**BINARY, "ce-specversion": "2.0"}, "specversion"),
        ({**BINARY, "ce-Bad_Name": "x"}, "bad_name"),
        ({**BINARY, "ce-time": "not a time"}, "time"),
        ({"content-type": "application/json"}, "content-type"),
        ({"content-type": "application/cloudevents-batch+json"}, "content-type"),
    ],
)
def test_invalid_envelopes(headers: dict[str, str], field: str) -> None:
    with pytest.raises(BadInput) as info:
        cloudevents.decode(headers, b"{}")
    assert info.value.field == field


def test_structured_attributes_are_strings_or_scalars() -> None:
    base = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    structured_type = {"content-type": "application/cloudevents+json"}
    for document, field in [({**base, "id": 7}, "id"), ({**base, "myext": {"a": 1}}, "myext")]:
        with pytest.raises(BadInput) as caught:
            cloudevents.decode(structured_type, json.dumps(document).encode())
        assert caught.value.field == field


def test_spec_version_0_3_is_read_as_seldon_core_sends_it() -> None:
    headers = {**BINARY, "ce-specversion": "0.3", "content-type": "application/json"}
    event = cloudevents.parse(headers, b'{"data": {"ndarray": [[1]]}}')
    assert event.data == {"data": {"ndarray": [[1]]}}
