"""What the alert function tells an operator: events, state changes and notifications counted
in its GET /metrics (parsed with prometheus_client's parser), against real PostgreSQL and real
receivers."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.alert.alerting import LOW_ACCURACY, alert_function, report, stored, write_rules
from tests.receivers import Receiver, Reply
from tests.scrapes import Samples, moved, samples

RULE = "LowPredictionAccuracy"
PENDING_FIRST = """
rules:
  - name: LowPredictionAccuracy
    metric: prediction_accuracy
    op: "<"
    threshold: 0.3
    for: 1m
"""


def post(client, *reports, id=None):
    headers, body = stored(*reports, id=id)
    return client.post("/", headers=headers, content=body)


def scrape(client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


def wait_for(client, check: Callable[[Samples], bool], what: str, timeout: float = 10) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        scraped = scrape(client)
        if check(scraped):
            return scraped
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


def test_events_transitions_and_notifications_are_counted(clean_db, monkeypatch, tmp_path):
    rules_path = write_rules(tmp_path, PENDING_FIRST)
    with (
        Receiver(default=Reply(204)) as hook,
        alert_function(monkeypatch, rules_path, webhook=hook.url) as client,
    ):
        before = scrape(client)
        assert post(client, report(0.1), id="a-1").status_code == 204  # pending
        assert post(client, report(0.1), id="a-1").status_code == 204  # redelivered
        assert post(client, report(0.1, seconds=90), id="a-2").status_code == 200  # firing
        assert post(client, report(0.9, seconds=120), id="a-3").status_code == 200  # resolved
        unmatched = report(metrics={"drift": 0.5})
        assert post(client, unmatched, id="a-4").status_code == 204
        hook.wait_for(2)

        def notified(scraped: Samples) -> bool:
            sent = "modelstats_alert_notifications_total"
            return (
                moved(before, scraped, sent, notifier="webhook", outcome="sent") == 2
                and moved(before, scraped, sent, notifier="log", outcome="sent") == 2
            )

        after = wait_for(client, notified, "two notifications sent to each notifier")

    events = "modelstats_alert_events_total"
    assert moved(before, after, events, outcome="evaluated") == 3
    assert moved(before, after, events, outcome="duplicate") == 1
    assert moved(before, after, events, outcome="unmatched") == 1
    transitions = "modelstats_alert_transitions_total"
    for kind in ("pending", "firing", "resolved"):
        assert moved(before, after, transitions, rule=RULE, kind=kind) == 1, kind
    assert moved(before, after, transitions, rule=RULE, kind="inactive") == 0
    timed = "modelstats_http_request_duration_seconds_count"
    assert moved(before, after, timed, function="alert", route="/", code="204") == 3
    assert moved(before, after, timed, function="alert", route="/", code="200") == 2


def test_a_failing_notifier_is_counted_as_failed(clean_db, monkeypatch, tmp_path):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    with (
        Receiver(script=[Reply(503)], default=Reply(204)) as hook,
        alert_function(monkeypatch, rules_path, webhook=hook.url) as client,
    ):
        before = scrape(client)
        assert post(client, report(0.1)).status_code == 200
        hook.wait_for(2)  # refused once, then delivered after the backoff

        def retried(scraped: Samples) -> bool:
            sent = "modelstats_alert_notifications_total"
            return (
                moved(before, scraped, sent, notifier="webhook", outcome="failed") == 1
                and moved(before, scraped, sent, notifier="webhook", outcome="sent") == 1
            )

        wait_for(client, retried, "one failed and one sent webhook notification")
