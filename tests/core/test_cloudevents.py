"""The one CloudEvents codec: the broker's raw envelopes, the functions' parsed events, replies."""

from __future__ import annotations

import base64
import json

import pytest

from modelstats.core import cloudevents
from modelstats.core.errors import BadInput
from tests.cloudevents_http import binary, structured
from tests.configuration import configure


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
    event = cloudevents.parse(headers, b"{oops", strict=False)
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


# --- text with no UTF-8 form, and attribute sizes ------------------------------------------

POISON = "poison\ud800"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"model": POISON, "version": "v1"}, "data.model"),
        ({"reports": [{}, {}, {"labels": {"env": POISON}}]}, "data.reports[2].labels.env"),
        ({"metrics": {POISON: 1.0}}, "data.metrics.poison\\ud800"),
        ([1, [2, ["\udfff"]]], "data[1][1][0]"),
    ],
)
def test_a_lone_surrogate_in_data_is_refused_naming_where_it_is(data, field):
    for headers, body in (binary(data), structured(data)):
        assert b"\\ud" in body.lower()  # json.dumps writes the escape, as a hostile sender
        with pytest.raises(BadInput) as caught:
            cloudevents.parse(headers, body)
        assert caught.value.field == field
        json.dumps(caught.value.to_json()).encode()  # the answer itself can be written


def test_an_escaped_backslash_before_ud800_is_ordinary_text():
    headers, body = binary({"model": "c:\\ud800"})
    assert cloudevents.parse(headers, body).data == {"model": "c:\\ud800"}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"id": POISON}, "id"),
        ({"source": POISON}, "source"),
        ({"tenant": POISON}, "tenant"),
        ({"bad\udc00name": "x"}, "bad\\udc00name"),
    ],
)
def test_a_lone_surrogate_in_a_structured_attribute_is_refused_by_both_readers(extra, field):
    headers, body = structured({"a": 1}, **extra)
    for read in (cloudevents.decode, cloudevents.parse):
        with pytest.raises(BadInput) as caught:
            read(headers, body)
        assert caught.value.field == field
        str(caught.value).encode()  # the broker writes it into its 400 as is


def test_the_broker_moves_surrogate_data_on_as_the_escape_it_came_as():
    """decode does not judge data: a structured event's data is written back as JSON that
    keeps the escape (never a UnicodeEncodeError), for the function to refuse."""
    headers, body = structured({"model": POISON})
    envelope = cloudevents.decode(headers, body)
    assert envelope.data == b'{"model":"poison\\ud800"}'
    out_headers, out_body = cloudevents.encode_binary(envelope)
    with pytest.raises(BadInput) as caught:
        cloudevents.parse(out_headers, out_body)
    assert caught.value.field == "data.model"


def test_lenient_parsing_keeps_what_strict_parsing_refuses_escaped():
    """The dead-letter sink: surrogates, bytes that are not UTF-8, NUL and long values kept."""
    headers, body = structured({"model": POISON}, id=POISON, tenant="a\x00b", note="x" * 5000)
    event = cloudevents.parse(headers, body, strict=False)
    assert event.id == "poison\\ud800"
    assert event.extensions["tenant"] == "a\x00b"
    assert len(event.extensions["note"]) == 5000
    assert event.data == b'{"model":"poison\\ud800"}'
    binary_headers, body = binary({"a": 1}, source="/s%FF%ED%A0%80")
    assert cloudevents.parse(binary_headers, body, strict=False).source == "/s\\xff\\xed\\xa0\\x80"
    with pytest.raises(BadInput) as caught:
        cloudevents.parse(binary_headers, body)
    assert caught.value.field == "source"


@pytest.mark.parametrize("name", ["id", "source", "type", "subject", "dataschema", "tenant"])
def test_attribute_values_are_bounded_in_bytes(name):
    configure(MAX_ATTRIBUTE_BYTES=None)
    at_limit = "é" * 512  # 1,024 bytes in UTF-8
    headers, body = structured({"a": 1}, **{name: at_limit})
    assert cloudevents.parse(headers, body).attributes()[name] == at_limit
    headers, body = structured({"a": 1}, **{name: at_limit + "x"})
    with pytest.raises(BadInput) as caught:
        cloudevents.parse(headers, body)
    assert caught.value.field == name
    assert "1024 bytes" in caught.value.message
    # The broker moves such an event on without judging it.
    assert cloudevents.decode(headers, body).attributes[name] == at_limit + "x"


def test_the_attribute_limit_is_a_setting_with_a_ceiling():
    from modelstats.core.errors import ConfigError
    from modelstats.core.settings import from_environment

    assert from_environment({"MAX_ATTRIBUTE_BYTES": "256"}).max_attribute_bytes == 256
    with pytest.raises(ConfigError, match="MAX_ATTRIBUTE_BYTES must be <= 1300"):
        from_environment({"MAX_ATTRIBUTE_BYTES": "4096"})
