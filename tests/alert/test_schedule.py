"""The schedule's ticks against a real PostgreSQL: what time alone changes.

Ticks are evaluated at chosen moments (`tick(now)`), so an hour passes in a test at no cost;
samples reach the store through the real ingest function. The same through the stack, with
time passing for real: tests/alert/test_schedule_stack.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from modelstats.alert.claims import Verdict
from tests.alert.alerting import (
    INGEST_SOURCE,
    T0,
    alert_function,
    configure,
    evaluate,
    ping,
    report,
    rows,
    stored,
    tick,
    write_rules,
)
from tests.clients import function_client

MINUTE = timedelta(minutes=1)

STALE = """
rules:
  - name: Low
    metric: prediction_accuracy
    op: "<"
    threshold: 0.3
    repeat_interval: 10m
    stale_after: 30m
"""

SILENT = """
rules:
  - name: ModelSilent
    absent_for: 15m
    seen_within: 1d
    repeat_interval: 1h
"""


def kinds(verdict: Verdict) -> list[str]:
    return [notification.kind for notification in verdict.alerts]


@pytest.fixture
def store(clean_db: str) -> Iterator[Callable[..., None]]:
    """Store reports through the real ingest function (`store(report, ...)`)."""
    with function_client("ingest", INGEST_SOURCE) as client:

        def post(*reports: dict[str, Any]) -> None:
            headers = {
                "ce-specversion": "1.0",
                "ce-id": uuid.uuid4().hex,
                "ce-source": "/tests/model-server",
                "ce-type": "modelstats.metric.reported",
                "content-type": "application/json",
            }
            answer = client.post("/", headers=headers, content=json.dumps({"reports": reports}))
            assert answer.status_code == 200, answer.text

        yield post


def test_a_firing_alert_repeats_on_ticks_then_resolves_when_its_series_goes_stale(
    clean_db, monkeypatch, tmp_path
):
    configure(monkeypatch, ALERT_RULES_FILE=str(write_rules(tmp_path, STALE)))
    headers, body = stored(report(0.1))  # a sample at T0, evaluated at T0
    assert kinds(evaluate(headers, body, now=T0)) == ["firing"]
    seen = [kinds(tick(T0 + minutes * MINUTE)) for minutes in (5, 10, 15, 20, 29)]
    assert seen == [[], ["repeat"], [], ["repeat"], []]

    resolved = tick(T0 + 31 * MINUTE)
    (notification,) = resolved.alerts
    assert (notification.status, notification.kind) == ("resolved", "resolved")
    assert notification.ends_at == T0 + 30 * MINUTE  # when it went stale, not when seen
    assert notification.value == 0.1 and notification.report is None
    assert notification.annotations["summary"] == "prediction_accuracy lower than 0.3"
    assert "went stale" in notification.annotations["description"]
    assert resolved.reply is not None
    assert resolved.reply["type"] == "modelstats.alert.resolved"
    assert resolved.reply.data["alerts"] == [notification.to_json()]
    assert tick(T0 + 60 * MINUTE).reply is None

    history = rows(clean_db, "SELECT kind, at FROM alert_transitions ORDER BY id")
    assert [kind for kind, _ in history] == ["firing", "repeat", "repeat", "resolved"]
    assert history[-1][1] == T0 + 30 * MINUTE
    assert rows(clean_db, "SELECT state, ended_at FROM alerts") == [("resolved", T0 + 30 * MINUTE)]
    # The log notifier has one outbox row per notification, the schedule's included.
    assert rows(clean_db, "SELECT count(*) FROM alert_notifications")[0][0] == 4

    # The series comes back below the threshold: a new alert.
    headers, body = stored(report(0.1, seconds=3600))
    assert kinds(evaluate(headers, body, now=T0 + 61 * MINUTE)) == ["firing"]
    assert rows(clean_db, "SELECT count(*) FROM alerts WHERE state = 'firing'")[0][0] == 1


def test_a_pending_alert_goes_back_to_inactive_when_its_series_goes_stale(
    clean_db, monkeypatch, tmp_path
):
    text = "rules: [{name: Slow, metric: prediction_accuracy, op: '<', threshold: 0.3, for: 10m}]"
    configure(monkeypatch, ALERT_RULES_FILE=str(write_rules(tmp_path, text)))
    headers, body = stored(report(0.1))
    assert evaluate(headers, body, now=T0).changes == [("Slow", "pending")]
    assert tick(T0 + 14 * MINUTE).changes == []
    quiet = tick(T0 + 15 * MINUTE)  # the default stale_after of a rule on the sample
    assert quiet.changes == [("Slow", "inactive")]
    assert quiet.alerts == [] and quiet.reply is None
    assert rows(clean_db, "SELECT state FROM alerts") == [("inactive",)]


def test_a_redelivered_tick_changes_nothing_and_gets_the_same_reply(
    clean_db, monkeypatch, tmp_path
):
    configure(monkeypatch, ALERT_RULES_FILE=str(write_rules(tmp_path, STALE)))
    headers, body = stored(report(0.1))
    evaluate(headers, body, now=T0)
    first = tick(T0 + 10 * MINUTE, id="tick-1")
    again = tick(T0 + 11 * MINUTE, id="tick-1")
    assert kinds(first) == ["repeat"] and again.duplicate and again.alerts == []
    assert first.reply is not None and again.reply is not None
    assert (again.reply["id"], again.reply.data) == (first.reply["id"], first.reply.data)
    assert rows(clean_db, "SELECT count(*) FROM alert_transitions")[0][0] == 2


def test_a_silent_model_fires_repeats_and_resolves_when_its_samples_come_back(
    clean_db, monkeypatch, tmp_path, store
):
    configure(monkeypatch, ALERT_RULES_FILE=str(write_rules(tmp_path, SILENT)))
    store(
        report(0.9),  # Mistral v1 at T0
        report(0.9, seconds=-600, version="v2"),
        report(0.8, model="fraud-detector", version="v3", seconds=60, labels={"env": "prod"}),
        report(metrics={"drift": 0.1}, model="fraud-detector", version="v4"),
        # Silent for two days: retired, never watched.
        report(0.5, model="retired", seconds=-2 * 86400),
    )
    assert tick(T0 + 14 * MINUTE).changes == []  # Mistral: silent for 14 minutes

    fired = tick(T0 + 15 * MINUTE)
    (silent,) = fired.alerts
    assert silent.labels == {"alertname": "ModelSilent", "model": "Mistral", "severity": "warning"}
    assert silent.value == 900 and silent.report is None
    assert silent.annotations["summary"] == "Mistral has sent no sample for 15m"
    assert silent.annotations["description"] == f"newest sample at {report(seconds=0)['time']}"
    assert silent.generator_url == "http://127.0.0.1:8081/stats/Mistral"
    assert fired.reply is not None and fired.reply["type"] == "modelstats.alert.fired"

    # fraud-detector's newest sample (v3, at T0 + 1m) counts, whatever its version or metric.
    assert kinds(tick(T0 + 16 * MINUTE)) == ["firing"]
    assert rows(clean_db, "SELECT model FROM alerts ORDER BY id") == [
        ("Mistral",),
        ("fraud-detector",),
    ]
    assert tick(T0 + 30 * MINUTE).changes == []
    assert kinds(tick(T0 + 75 * MINUTE)) == ["repeat"]  # Mistral, an hour after firing

    store(report(0.9, seconds=80 * 60))  # Mistral v1 again
    back = {n.labels["model"]: n for n in tick(T0 + 81 * MINUTE).alerts}
    assert (back["Mistral"].kind, back["Mistral"].value) == ("resolved", 60)
    assert back["Mistral"].ends_at == T0 + 81 * MINUTE
    assert back["fraud-detector"].kind == "repeat"  # still silent, an hour after firing


def test_a_model_silent_for_longer_than_seen_within_is_no_longer_watched(
    clean_db, monkeypatch, tmp_path, store
):
    configure(monkeypatch, ALERT_RULES_FILE=str(write_rules(tmp_path, SILENT)))
    store(report(0.9))
    assert kinds(tick(T0 + 15 * MINUTE)) == ["firing"]
    assert kinds(tick(T0 + timedelta(days=1, seconds=-1))) == ["repeat"]  # still watched
    gone = tick(T0 + timedelta(days=1))
    (notification,) = gone.alerts
    assert notification.kind == "resolved"
    assert "no longer watched" in notification.annotations["description"]
    assert tick(T0 + timedelta(days=2)).changes == []


def test_an_absence_rule_per_series_watches_each_metric_of_each_version(
    clean_db, monkeypatch, tmp_path, store
):
    text = """
    rules:
      - name: NoAccuracy
        absent_for: 15m
        per: series
        metric: prediction_accuracy
        match: {labels: {env: prod}}
    """
    configure(monkeypatch, ALERT_RULES_FILE=str(write_rules(tmp_path, text)))
    prod = {"env": "prod"}
    store(
        report(0.9, version="v1", labels=prod),
        report(0.9, version="v2", seconds=300, labels=prod),
        report(0.9, version="v3", labels={"env": "dev"}),  # not matched
        report(metrics={"drift": 0.1}, version="v1", seconds=600, labels=prod),  # not the metric
    )
    (silent,) = tick(T0 + 15 * MINUTE).alerts
    assert silent.labels == {
        "env": "prod",
        "alertname": "NoAccuracy",
        "model": "Mistral",
        "version": "v1",
        "metric": "prediction_accuracy",
        "severity": "warning",
    }
    assert silent.annotations["summary"] == (
        "prediction_accuracy of Mistral v1 has had no sample for 15m"
    )
    assert [n.labels["version"] for n in tick(T0 + 20 * MINUTE).alerts] == ["v2"]


def test_the_function_answers_its_ticks(clean_db, monkeypatch, tmp_path, store):
    """Through HTTP, at the wall clock: 204 while nothing changes, the reply when it does."""
    rules_path = write_rules(tmp_path, SILENT)
    with alert_function(monkeypatch, rules_path) as client:
        # As the PingSource sends it: no data at all.
        bare = {k: v for k, v in ping()[0].items() if k != "content-type"}
        assert client.post("/", headers=bare, content=b"").status_code == 204
        store(report(0.9, seconds=3600 - 16 * 60))  # 16 minutes ago
        headers, body = ping("tick-1")
        fired = client.post("/", headers=headers, content=body)
        assert fired.status_code == 200, fired.text
        assert fired.headers["ce-type"] == "modelstats.alert.fired"
        assert fired.json()["alerts"][0]["labels"]["model"] == "Mistral"
        again = client.post("/", headers=headers, content=body)
        assert (again.status_code, again.json()) == (200, fired.json())
        assert client.post("/", headers=ping()[0], content=b"{}").status_code == 204
