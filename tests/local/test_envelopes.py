"""The broker's CloudEvent codec: raw data kept exact, both HTTP modes, header encoding."""

from __future__ import annotations

import json

import pytest

from modelstats.core.errors import BadInput
from modelstats.local import delivery, envelopes

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
    envelope = envelopes.decode(BINARY, body)
    assert envelope.data == body
    assert envelope.attributes["datacontenttype"] == "application/json; charset=utf-8"
    assert envelope.attributes["myext"] == "x"
    headers, out = envelopes.encode_binary(envelope)
    assert out == body
    assert headers["content-type"] == BINARY["content-type"]
    assert headers["ce-myext"] == "x"


def test_structured_mode_data_shapes() -> None:
    base = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    as_json = envelopes.decode(
        {"content-type": "application/cloudevents+json"},
        json.dumps({**base, "data": {"k": [1, 2]}, "knativebrokerttl": 7}).encode(),
    )
    assert json.loads(as_json.data) == {"k": [1, 2]}
    assert as_json.attributes["knativebrokerttl"] == "7"
    text = envelopes.decode(
        {"content-type": "application/cloudevents+json"},
        json.dumps({**base, "datacontenttype": "text/plain", "data": "hello"}).encode(),
    )
    assert text.data == b"hello"
    raw = envelopes.decode(
        {"content-type": "application/cloudevents+json"},
        json.dumps({**base, "data_base64": "AAEC"}).encode(),
    )
    assert raw.data == b"\x00\x01\x02"


def test_non_ascii_values_are_percent_encoded_in_headers_and_decoded_back() -> None:
    envelope = envelopes.Envelope(
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "subject": "café 50%"}
    )
    headers, _ = envelopes.encode_binary(envelope)
    assert headers["ce-subject"] == "caf%C3%A9 50%"
    assert envelopes.decode(headers, b"").attributes["subject"] == "café 50%"


def test_json_round_trip_is_exact() -> None:
    envelope = envelopes.decode(BINARY, b"\xff\x00 not utf-8")
    again = envelopes.from_json(json.loads(json.dumps(envelopes.to_json(envelope))))
    assert again.data == envelope.data and again.attributes == envelope.attributes


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({k: v for k, v in BINARY.items() if k != "ce-type"}, "type"),
        ({**BINARY, "ce-specversion": "0.3"}, "specversion"),
        ({**BINARY, "ce-Bad_Name": "x"}, "bad_name"),
        ({**BINARY, "ce-time": "not a time"}, "time"),
        ({"content-type": "application/json"}, "specversion"),
        ({"content-type": "application/cloudevents-batch+json"}, "content-type"),
    ],
)
def test_invalid_events(headers: dict[str, str], field: str) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    with pytest.raises(BadInput) as info:
        envelopes.decode(lowered, b"{}")
    assert info.value.field == field


def test_knative_backoff_formula() -> None:
    exponential = delivery.RetryPolicy(4, delivery.EXPONENTIAL, 0.5)
    assert exponential.schedule() == [0.5, 1.0, 2.0, 4.0]
    assert exponential.attempts == 5
    linear = delivery.RetryPolicy(4, delivery.LINEAR, 0.5)
    assert linear.schedule() == [0.0, 0.5, 1.0, 1.5]
    assert delivery.RetryPolicy(3).schedule() == [0, 0, 0]
    assert delivery.RetryPolicy(2, delivery.EXPONENTIAL, None).schedule() == [0, 0]


@pytest.mark.parametrize("status", [None, 404, 408, 409, 429, 500, 501, 503, 599])
def test_retried(status: int | None) -> None:
    assert delivery.is_retried(status)


@pytest.mark.parametrize("status", [400, 401, 403, 405, 410, 413, 415, 422, 451])
def test_not_retried(status: int) -> None:
    assert not delivery.is_retried(status)
