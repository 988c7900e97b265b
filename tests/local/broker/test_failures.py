"""What the broker says and keeps when a delivery fails: the log line of each failed attempt and
the dead letter, with Knative's `knativeerror*` extensions."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from modelstats.core import contract
from modelstats.core.cloudevents import Envelope
from modelstats.local.broker import failures
from modelstats.local.broker.routing import Subscription
from modelstats.local.broker.sender import DeliveryResult
from modelstats.local.knative import delivery, filters


def event(event_id: str = "e-1") -> Envelope:
    attributes = {"specversion": "1.0", "type": "t", "source": "/s", "id": event_id}
    return Envelope({**attributes, "datacontenttype": "application/json"}, b'{"a": 1}', True)


# -- the log line of a failed attempt --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_in", "said"),
    [
        (503, 0.4, "attempt 1/3 failed: HTTP 503; retry in 0.4s"),
        (503, None, "attempt 1/3 failed: HTTP 503; no attempts left"),
        (None, None, "attempt 1/3 failed: refused; no attempts left"),
        (400, None, "not retried: 400 is permanent: model: missing"),
    ],
)
def test_each_failure_says_what_happens_next(
    caplog: pytest.LogCaptureFixture, status: int | None, retry_in: float | None, said: str
) -> None:
    subscription = Subscription(
        "ingest", filters.MATCH_ALL, "http://x", delivery.RetryPolicy(2), None
    )
    body = json.dumps({"field": "model", "message": "missing"}).encode()
    result = DeliveryResult(status, body if status else b"", error="" if status else "refused")
    with caplog.at_level(logging.WARNING, "modelstats.broker"):
        failures.log_failure(subscription, event(), result, 1, retry_in)
    assert caplog.messages == [f"event t /s e-1 -> trigger ingest: {said}"]


# -- the dead letter of a failed delivery ----------------------------------------------------


def test_a_dead_letter_is_the_event_with_knative_s_error_extensions() -> None:
    letter = failures.dead_letter(event(), "http://ingest/", DeliveryResult(400, b"bad"))
    attributes = letter.attributes
    assert attributes[contract.ERROR_DEST] == "http://ingest/"
    assert attributes[contract.ERROR_CODE] == "400"
    assert base64.b64decode(attributes[contract.ERROR_DATA]) == b"bad"
    assert {k: v for k, v in attributes.items() if k not in contract.ERROR_EXTENSIONS} == dict(
        event().attributes
    )
    assert letter.data == event().data


def test_a_network_error_has_code_0_and_its_error_text_as_data() -> None:
    result = DeliveryResult(None, error="connection refused")
    letter = failures.dead_letter(event(), "http://ingest/", result)
    assert letter.attributes[contract.ERROR_CODE] == "0"
    assert base64.b64decode(letter.attributes[contract.ERROR_DATA]) == b"connection refused"


def test_no_answer_body_no_error_data() -> None:
    letter = failures.dead_letter(event(), "http://ingest/", DeliveryResult(503))
    assert letter.attributes[contract.ERROR_CODE] == "503"
    assert contract.ERROR_DATA not in letter.attributes


@pytest.mark.parametrize("size", [767, 768, 769, 100_000])
def test_error_data_is_at_most_1024_characters(size: int) -> None:
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    letter = failures.dead_letter(event(), "http://x/", DeliveryResult(500, body))
    data = letter.attributes[contract.ERROR_DATA]
    assert len(data) <= 1024
    assert base64.b64decode(data) == body[:768]
