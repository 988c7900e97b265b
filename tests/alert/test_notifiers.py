"""The notifiers' one contract, run against each of them, then what each one's message looks like.

As Alertmanager's notify/*/ packages share their checks, every notifier (log, Slack, webhook)
must: deliver firing and resolved, each saying which; say what a reader needs (alert, model,
version, summary, value); return nothing on success and deliver once; and, when it posts, turn
every refusal (4xx, 429, 5xx), an unreachable receiver and a timeout into DeliveryFailed with
the status and Retry-After, naming the notifier and never the URL (Slack's holds a secret).
Each posting notifier posts to a real local HTTP receiver.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from modelstats.alert import notifiers
from modelstats.alert.notification import Notification
from modelstats.alert.notifiers import Notifier
from modelstats.alert.notifiers.log import LogNotifier, log_fields, log_line, spoken_seconds
from modelstats.alert.notifiers.slack import SlackNotifier, slack_message
from modelstats.alert.notifiers.webhook import WebhookNotifier, alertmanager_payload
from modelstats.core.errors import DeliveryFailed
from modelstats.core.reports import Report
from modelstats.core.settings import from_environment
from tests.brokers import free_port
from tests.receivers import Receiver, Reply

SECRET = "T0000000/B0000000/s3cr3t-t0k3n"

FIRING = Notification(
    alert_id=7,
    status="firing",
    kind="firing",
    rule="LowPredictionAccuracy",
    fingerprint="0123456789abcdef",
    labels={
        "env": "prod",
        "alertname": "LowPredictionAccuracy",
        "model": "fraud-detector",
        "version": "v3",
        "metric": "prediction_accuracy",
        "severity": "critical",
    },
    annotations={"summary": "prediction_accuracy lower than 0.3", "value": "0.21"},
    value=0.21,
    op="<",
    threshold=0.3,
    window="5m",
    aggregate="mean",
    starts_at=datetime(2026, 1, 1, tzinfo=UTC),
    ends_at=None,
    generator_url="http://stats/stats/fraud-detector/v3?metric=prediction_accuracy",
    evaluated_at=datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC),
    report=Report(
        "fraud-detector",
        "v3",
        datetime(2026, 1, 1, tzinfo=UTC),
        {"prediction_accuracy": 0.21},
        {"env": "prod"},
    ),
)
RESOLVED = dataclasses.replace(
    FIRING,
    status="resolved",
    kind="resolved",
    value=0.8,
    ends_at=datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
)


@dataclass
class Harness:
    """One notifier, where its deliveries land, and how to read which status one says."""

    notifier: Notifier
    deliveries: Callable[[], list[str]]
    says: Callable[[str], str]  # a delivery's text -> "firing" | "resolved"
    receiver: Receiver | None = None  # where it posts (None: it does not post)
    point_at: Callable[[str], None] = lambda url: None  # send it elsewhere


def _slack_status(text: str) -> str:
    return "resolved" if json.loads(text)["text"].startswith("[RESOLVED]") else "firing"


def _log_status(text: str) -> str:
    return "resolved" if text.startswith("RESOLVED ") else "firing"


@pytest.fixture(params=["log", "slack", "webhook"])
def harness(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[Harness]:
    if request.param == "log":
        caplog.set_level(logging.WARNING, logger="modelstats.alerts")

        def logged() -> list[str]:
            return [
                record.getMessage() + " " + json.dumps(record.__dict__.get("fields"))
                for record in caplog.records
                if record.name == "modelstats.alerts"
            ]

        yield Harness(LogNotifier(), logged, _log_status)
        return
    with Receiver(default=Reply(200)) as receiver:

        def bodies() -> list[str]:
            return [r.body.decode() for r in receiver.requests]

        if request.param == "slack":
            slack = SlackNotifier(f"{receiver.url}/services/{SECRET}")
            yield Harness(
                slack,
                bodies,
                _slack_status,
                receiver,
                lambda url: setattr(slack, "url", f"{url}/services/{SECRET}"),
            )
        else:
            hook = WebhookNotifier(f"{receiver.url}/hook?token={SECRET}", "http://stats")
            yield Harness(
                hook,
                bodies,
                lambda text: json.loads(text)["status"],
                receiver,
                lambda url: setattr(hook, "url", f"{url}/hook?token={SECRET}"),
            )


def send(harness: Harness, notification: Notification, timeout: float = 5) -> None:
    with httpx.Client(timeout=timeout) as client:
        harness.notifier.send(notification, client)


def refused(harness: Harness, notification: Notification = FIRING, **client: Any) -> str:
    """Send expecting DeliveryFailed; its message, checked to name the notifier only."""
    with pytest.raises(DeliveryFailed) as failed:
        send(harness, notification, **client)
    message = str(failed.value)
    assert message.startswith(f"{harness.notifier.name}: ")
    assert SECRET not in message
    return message


def posting(harness: Harness) -> Receiver:
    if harness.receiver is None:
        pytest.skip(f"{harness.notifier.name} posts nothing: no receiver can refuse it")
    return harness.receiver


def test_delivers_firing_then_resolved_and_each_says_which(harness: Harness) -> None:
    assert send(harness, FIRING) is None  # type: ignore[func-returns-value]
    assert send(harness, RESOLVED) is None  # type: ignore[func-returns-value]
    delivered = harness.deliveries()
    assert [harness.says(text) for text in delivered] == ["firing", "resolved"]


def test_says_what_a_reader_needs(harness: Harness) -> None:
    send(harness, FIRING)
    (text,) = harness.deliveries()
    for fact in ("LowPredictionAccuracy", "fraud-detector", "v3", "lower than 0.3", "0.21"):
        assert fact in text, f"{harness.notifier.name} does not say {fact!r}: {text}"


def test_reads_a_notification_recorded_before_evaluated_at_existed(harness: Harness) -> None:
    recorded = FIRING.to_json()
    del recorded["evaluatedAt"]
    send(harness, Notification.from_json(recorded))
    assert [harness.says(text) for text in harness.deliveries()] == ["firing"]


@pytest.mark.parametrize("status", [400, 404, 429, 500, 502, 503])
def test_a_refusal_raises_delivery_failed_with_status_and_retry_after(
    harness: Harness, status: int
) -> None:
    receiver = posting(harness)
    receiver.set_default(Reply(status, headers={"Retry-After": "7"}, body=b"no"))
    message = refused(harness)
    assert f"HTTP {status}" in message
    with pytest.raises(DeliveryFailed) as failed:
        send(harness, FIRING)
    assert (failed.value.status, failed.value.retry_after) == (status, 7)


def test_an_unreachable_receiver_raises_delivery_failed(harness: Harness) -> None:
    posting(harness)
    harness.point_at(f"http://127.0.0.1:{free_port()}")
    assert "ConnectError" in refused(harness)


def test_a_receiver_too_slow_raises_delivery_failed(harness: Harness) -> None:
    receiver = posting(harness)
    receiver.set_default(Reply(200, delay=1.0))
    assert "Timeout" in refused(harness, timeout=0.2)


# What each notifier's message looks like.

SHOWN = dataclasses.replace(
    RESOLVED,
    labels={**FIRING.labels, "model": "<Mistral>", "version": "v1"},
    annotations={"summary": "prediction_accuracy lower than 0.3 & falling", "value": "0.2"},
    generator_url="http://stats/stats/%3CMistral%3E/v1?metric=prediction_accuracy",
    evaluated_at=None,
    report=Report(
        "<Mistral>",
        "v1",
        datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        {"prediction_accuracy": 0.2, "drift": 0.1},
        {"env": "prod"},
    ),
)


def test_alertmanager_payload_shape():
    payload = alertmanager_payload(SHOWN, "http://stats")
    assert payload["version"] == "4"
    assert payload["status"] == "resolved"
    assert payload["groupKey"] == '{}:{alertname="LowPredictionAccuracy"}'
    assert payload["commonLabels"] == SHOWN.labels
    assert payload["alerts"] == [
        {
            "status": "resolved",
            "labels": SHOWN.labels,
            "annotations": SHOWN.annotations,
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2026-01-01T00:05:00Z",
            "generatorURL": SHOWN.generator_url,
            "fingerprint": "0123456789abcdef",
        }
    ]
    firing = alertmanager_payload(FIRING, "http://stats")
    assert firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"  # Alertmanager's "not yet"


def test_slack_message_escapes_and_has_a_text_fallback():
    message = slack_message(SHOWN)
    assert message["text"].startswith("[RESOLVED] LowPredictionAccuracy: prediction_accuracy")
    section = message["blocks"][1]
    assert section["text"]["text"] == "prediction_accuracy lower than 0.3 &amp; falling"
    assert "&lt;Mistral&gt; v1" in section["fields"][0]["text"]
    context = message["blocks"][2]["elements"][0]["text"]
    assert context.startswith(f"<{SHOWN.generator_url}|")
    assert "env=prod" in context


def test_log_line_is_the_first_versions_then_rule_severity_and_sample_time():
    first = (
        "ALERT prediction_accuracy lower than 0.3 & falling, {'name': '<Mistral>',"
        " 'version': 'v1', 'prediction_accuracy': 0.2, 'drift': 0.1, 'labels': {'env': 'prod'}}"
    )
    # Recorded before evaluatedAt existed: no lateness to tell.
    shown_firing = dataclasses.replace(SHOWN, status="firing")
    assert log_line(shown_firing) == (
        first + " (rule LowPredictionAccuracy, severity critical, sample 2026-01-01T00:05:00Z)"
    )
    late = dataclasses.replace(
        shown_firing, evaluated_at=datetime(2026, 1, 1, 0, 57, 3, tzinfo=UTC)
    )
    assert log_line(late) == (
        first + " (rule LowPredictionAccuracy, severity critical,"
        " sample 2026-01-01T00:05:00Z, evaluated 52m3s later)"
    )
    assert log_fields(late)["lateness_seconds"] == 52 * 60 + 3
    assert log_line(SHOWN).startswith("RESOLVED ")


def test_lateness_is_spoken_in_units_a_reader_takes_in():
    spoken = [spoken_seconds(s) for s in (0.04, 9.94, 12, 60, 3123, 3600, 3661, 7500, 86400, 97200)]
    assert spoken == ["0.0s", "9.9s", "12s", "1m0s", "52m3s", "1h", "1h1m", "2h5m", "1d", "1d3h"]


def test_a_notification_reads_back_as_it_was_written():
    assert Notification.from_json(FIRING.to_json()) == FIRING
    assert Notification.from_json(json.loads(json.dumps(SHOWN.to_json()))) == SHOWN


def test_configured_notifiers():
    assert list(notifiers.configured(from_environment({}))) == ["log"]
    both = from_environment({"SLACK_WEBHOOK_URL": "http://s", "ALERT_WEBHOOK_URL": "http://w"})
    assert list(notifiers.configured(both)) == ["log", "slack", "webhook"]
