"""The alert function against a real PostgreSQL and real HTTP receivers.

Each test posts `modelstats.metric.stored` events (as ingest replies them) to the function and
checks its reply, the recorded history, and what the receivers got from the outbox senders.
"""

from __future__ import annotations

import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from modelstats.alert import outbox
from modelstats.core import timestamps
from tests.alert.alerting import (
    INGEST_SOURCE,
    LOW_ACCURACY,
    STORED,
    alert_function,
    at,
    configure,
    evaluate,
    report,
    rows,
    stored,
    undelivered,
    write_rules,
)
from tests.clients import function_client
from tests.receivers import Receiver, Reply


@pytest.fixture
def webhook():
    with Receiver(default=Reply(200)) as receiver:
        yield receiver


def post(client, *reports, id=None):
    headers, body = stored(*reports, id=id)
    return client.post("/", headers=headers, content=body)


def wait_delivered(url: str, seconds: float = 10) -> None:
    """Until the outbox is empty (bounded)."""
    deadline = time.monotonic() + seconds
    while undelivered(url):
        assert time.monotonic() < deadline, "notifications still undelivered"
        time.sleep(0.02)


def test_fires_once_and_notifies_log_slack_and_webhook(clean_db, monkeypatch, tmp_path, caplog):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    caplog.set_level(logging.WARNING, logger="modelstats.alerts")
    with (
        Receiver(default=Reply(200, body=b"ok")) as slack,
        Receiver(default=Reply(200)) as hook,
        alert_function(monkeypatch, rules_path, webhook=hook.url, slack=slack.url) as client,
    ):
        response = post(client, report(0.19), id="stored-1")
        assert response.status_code == 200
        assert response.headers["ce-type"] == "modelstats.alert.fired"
        assert response.headers["ce-source"] == "/modelstats/alert"
        data = response.json()
        assert data["status"] == "firing"
        (alert,) = data["alerts"]
        assert alert["labels"] == {
            "alertname": "LowPredictionAccuracy",
            "model": "Mistral",
            "version": "v1",
            "metric": "prediction_accuracy",
            "severity": "warning",
        }
        assert alert["value"] == 0.19
        assert alert["annotations"]["summary"] == "prediction_accuracy lower than 0.3"
        assert alert["startsAt"] == at(0)
        assert alert["endsAt"] is None

        (request,) = hook.wait_for(1)
        payload = request.json()
        assert payload["version"] == "4"
        assert payload["status"] == "firing"
        assert payload["receiver"] == "modelstats"
        assert payload["groupLabels"] == {"alertname": "LowPredictionAccuracy"}
        assert payload["commonLabels"] == alert["labels"]
        assert payload["commonAnnotations"]["summary"] == "prediction_accuracy lower than 0.3"
        assert payload["externalURL"] == "http://127.0.0.1:8081"
        (sent,) = payload["alerts"]
        assert set(sent) == {
            "status",
            "labels",
            "annotations",
            "startsAt",
            "endsAt",
            "generatorURL",
            "fingerprint",
        }
        assert sent["endsAt"] == "0001-01-01T00:00:00Z"
        assert sent["fingerprint"] == alert["fingerprint"]
        assert sent["generatorURL"] == (
            "http://127.0.0.1:8081/stats/Mistral/v1?metric=prediction_accuracy"
        )

        (message,) = slack.wait_for(1)
        body = message.json()
        assert body["text"].startswith("[FIRING] LowPredictionAccuracy: prediction_accuracy lower")
        assert [block["type"] for block in body["blocks"]] == ["header", "section", "context"]

        wait_delivered(clean_db)
        (record,) = [r for r in caplog.records if r.name == "modelstats.alerts"]
        # The first version's line, then the rule, severity, sample time and how late the
        # sample was evaluated (the report is from T0, an hour before the test started).
        first = (
            "ALERT prediction_accuracy lower than 0.3,"
            " {'name': 'Mistral', 'version': 'v1', 'prediction_accuracy': 0.19, 'drift': 0.11}"
        )
        details = (
            rf" \(rule LowPredictionAccuracy, severity warning, sample {re.escape(at(0))},"
            r" evaluated 1h(\d+m)? later\)"
        )
        assert re.fullmatch(re.escape(first) + details, record.getMessage())
        fields = record.fields
        assert (fields["rule"], fields["severity"], fields["sample_time"]) == (
            "LowPredictionAccuracy",
            "warning",
            at(0),
        )
        assert 3600 <= fields["lateness_seconds"] < 3600 + 600

        # Still low a minute later: still firing, nothing new to say.
        assert post(client, report(0.18, seconds=60)).status_code == 204
        assert len(hook.quiet_for(0.4)) == 1
        assert len(slack.requests) == 1
    states = rows(clean_db, "SELECT state, value FROM alerts")
    assert states == [("firing", 0.19)]


def test_structured_mode(clean_db, monkeypatch, tmp_path, webhook):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    envelope = {
        "specversion": "1.0",
        "id": "s-1",
        "source": "/modelstats/ingest",
        "type": STORED,
        "datacontenttype": "application/json",
        "data": {"reports": [report(0.1)]},
    }
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        response = client.post(
            "/",
            headers={"content-type": "application/cloudevents+json"},
            content=json.dumps(envelope),
        )
        assert response.status_code == 200
        assert response.headers["ce-type"] == "modelstats.alert.fired"
        assert webhook.wait_for(1)[0].json()["status"] == "firing"


def test_no_repeat_inside_the_interval_then_repeat_after_it(clean_db, monkeypatch, tmp_path):
    """The clock is injected: repeat_interval counts wall-clock time between notifications."""
    rules_path = write_rules(tmp_path, LOW_ACCURACY + "    repeat_interval: 1h\n")
    configure(monkeypatch, ALERT_RULES_FILE=str(rules_path))
    start = timestamps.now()
    kinds = []
    for minutes, seconds in ((0, 0), (30, 60), (59, 120), (60, 180), (61, 240), (125, 300)):
        headers, body = stored(report(0.1, seconds=seconds))
        outcome = evaluate(headers, body, now=start + timedelta(minutes=minutes))
        kinds.append([a.kind for a in outcome.alerts])
    assert kinds == [["firing"], [], [], ["repeat"], [], ["repeat"]]
    with Receiver(default=Reply(200)) as hook:
        configure(monkeypatch, ALERT_WEBHOOK_URL=hook.url)
        # The webhook was not configured when these were recorded: only the log had rows.
        # They fall due at the injected times (hours ahead): --force sends them now.
        assert outbox.flush().delivered == 1
        assert outbox.flush(force=True).delivered == 2
        assert hook.quiet_for(0.2) == []
    history = rows(clean_db, "SELECT kind FROM alert_transitions ORDER BY id")
    assert history == [("firing",), ("repeat",), ("repeat",)]


def test_repeat_reaches_the_webhook(clean_db, monkeypatch, tmp_path, webhook):
    rules_path = write_rules(tmp_path, LOW_ACCURACY + "    repeat_interval: 1s\n")
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        assert post(client, report(0.1)).status_code == 200
        assert post(client, report(0.1, seconds=10)).status_code == 204
        time.sleep(1.05)
        response = post(client, report(0.1, seconds=20))
        assert response.status_code == 200
        assert response.json()["alerts"][0]["notification"] == "repeat"
        first, second = webhook.wait_for(2)
        assert first.json()["alerts"][0]["fingerprint"] == second.json()["alerts"][0]["fingerprint"]
        assert second.json()["status"] == "firing"


def test_for_keeps_the_alert_pending_until_it_has_held_long_enough(
    clean_db, monkeypatch, tmp_path, webhook
):
    rules_path = write_rules(tmp_path, LOW_ACCURACY + "    for: 2m\n")
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        assert post(client, report(0.1, seconds=0)).status_code == 204
        assert rows(clean_db, "SELECT state FROM alerts") == [("pending",)]
        assert post(client, report(0.1, seconds=60)).status_code == 204
        assert post(client, report(0.1, seconds=119)).status_code == 204
        assert webhook.quiet_for(0.3) == []
        response = post(client, report(0.1, seconds=120))
        assert response.status_code == 200
        (alert,) = response.json()["alerts"]
        assert alert["startsAt"] == at(120)
        assert len(webhook.wait_for(1)) == 1

        # Another series goes pending, then recovers before `for`: never notified.
        assert post(client, report(0.1, model="Other")).status_code == 204
        assert post(client, report(0.9, seconds=60, model="Other")).status_code == 204
    assert rows(clean_db, "SELECT model, state, fired_at IS NOT NULL FROM alerts ORDER BY id") == [
        ("Mistral", "firing", True),
        ("Other", "inactive", False),
    ]
    kinds = rows(clean_db, "SELECT kind FROM alert_transitions ORDER BY id")
    assert kinds == [("pending",), ("firing",), ("pending",), ("inactive",)]
    assert len(webhook.requests) == 1


def test_resolves_and_notifies_resolved(clean_db, monkeypatch, tmp_path, webhook, caplog):
    caplog.set_level(logging.WARNING, logger="modelstats.alerts")
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        assert post(client, report(0.1)).status_code == 200
        response = post(client, report(0.8, seconds=60))
        assert response.status_code == 200
        assert response.headers["ce-type"] == "modelstats.alert.resolved"
        (alert,) = response.json()["alerts"]
        assert (alert["status"], alert["startsAt"], alert["endsAt"]) == ("resolved", at(0), at(60))
        fired, resolved = webhook.wait_for(2)
        assert fired.json()["status"] == "firing"
        assert resolved.json()["status"] == "resolved"
        assert resolved.json()["alerts"][0]["endsAt"] == at(60)
        # Healthy again: nothing more to say; low again: a new alert fires.
        assert post(client, report(0.9, seconds=120)).status_code == 204
        assert post(client, report(0.2, seconds=180)).status_code == 200
        assert len(webhook.wait_for(3)) == 3
        wait_delivered(clean_db)
    lines = [r.getMessage() for r in caplog.records if r.name == "modelstats.alerts"]
    assert [line.split(" ", 1)[0] for line in lines] == ["ALERT", "RESOLVED", "ALERT"]
    assert rows(clean_db, "SELECT state, ended_at IS NOT NULL FROM alerts ORDER BY id") == [
        ("resolved", True),
        ("firing", False),
    ]


def test_keep_firing_for(clean_db, monkeypatch, tmp_path, webhook):
    rules_path = write_rules(tmp_path, LOW_ACCURACY + "    keep_firing_for: 5m\n")
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        assert post(client, report(0.1)).status_code == 200
        assert post(client, report(0.9, seconds=60)).status_code == 204
        assert post(client, report(0.9, seconds=299)).status_code == 204
        response = post(client, report(0.9, seconds=300))
        assert response.headers["ce-type"] == "modelstats.alert.resolved"
        assert len(webhook.wait_for(2)) == 2


def test_late_sample_changes_nothing(clean_db, monkeypatch, tmp_path, webhook):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        assert post(client, report(0.1, seconds=60)).status_code == 200
        # A healthy sample from before the firing one arrives late: not a resolve.
        assert post(client, report(0.9, seconds=0)).status_code == 204
    assert rows(clean_db, "SELECT state FROM alerts") == [("firing",)]


def test_a_replaced_sample_is_judged_again(clean_db, monkeypatch, tmp_path, webhook):
    """A sample at the time already evaluated (a window's figure recomputed once late labels
    came in) is judged again: its new value can fire, and it can resolve."""
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        assert post(client, report(0.9, seconds=60)).status_code == 204
        replaced = post(client, report(0.1, seconds=60))
        assert replaced.headers["ce-type"] == "modelstats.alert.fired"
        assert post(client, report(0.9, seconds=0)).status_code == 204  # older: changes nothing
        resolved = post(client, report(0.5, seconds=60))
        assert resolved.headers["ce-type"] == "modelstats.alert.resolved"
        (alert,) = resolved.json()["alerts"]
        assert (alert["value"], alert["endsAt"]) == (0.5, at(60))
    transitions = rows(clean_db, "SELECT kind, at, value FROM alert_transitions ORDER BY id")
    assert [(kind, value) for kind, _, value in transitions] == [("firing", 0.1), ("resolved", 0.5)]


COVERED = """
rules:
  - name: LowAccuracy
    metric: prediction_accuracy
    op: "<"
    threshold: 0.5
    when: {label_coverage: ">= 0.5"}
"""


def test_when_judges_only_reports_whose_other_metrics_meet_their_conditions(
    clean_db, monkeypatch, tmp_path
):
    rules_path = write_rules(tmp_path, COVERED)
    low = {"prediction_accuracy": 0.2}
    with alert_function(monkeypatch, rules_path) as client:
        # Too few labels, or no coverage at all: the report is not judged.
        thin = report(metrics={**low, "label_coverage": 0.49})
        assert post(client, thin).status_code == 204
        assert post(client, report(metrics=low, seconds=1)).status_code == 204
        assert rows(clean_db, "SELECT count(*) FROM alert_states")[0][0] == 0
        covered = post(client, report(metrics={**low, "label_coverage": 0.5}, seconds=2))
        assert covered.headers["ce-type"] == "modelstats.alert.fired"
        (alert,) = covered.json()["alerts"]
        assert alert["report"]["metrics"]["label_coverage"] == 0.5
        # A report the rule does not judge never resolves it either.
        assert (
            post(client, report(metrics={"prediction_accuracy": 0.9}, seconds=3)).status_code == 204
        )
        good = report(metrics={"prediction_accuracy": 0.9, "label_coverage": 0.8}, seconds=4)
        assert post(client, good).headers["ce-type"] == "modelstats.alert.resolved"


WINDOW_RULES = """
rules:
  - name: MeanAccuracyLow
    metric: prediction_accuracy
    op: "<"
    threshold: 0.5
    window: 10m
    min_samples: 3
"""


@pytest.fixture
def ingest_client(clean_db):
    with function_client("ingest", INGEST_SOURCE) as client:
        yield client


def through_ingest(ingest_client, alert_client, *reports):
    """Report to ingest (which stores the samples), then hand its reply to the alert function."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": f"r-{reports[0]['time']}-{reports[0]['model']}-{len(reports)}",
        "ce-source": "/tests/model-server",
        "ce-type": "modelstats.metric.reported",
        "content-type": "application/json",
    }
    stored_reply = ingest_client.post(
        "/", headers=headers, content=json.dumps({"reports": list(reports)})
    )
    assert stored_reply.status_code == 200, stored_reply.text
    forwarded = {k: v for k, v in stored_reply.headers.items() if k.startswith("ce-")}
    forwarded["content-type"] = stored_reply.headers["content-type"]
    return alert_client.post("/", headers=forwarded, content=stored_reply.content)


def test_window_aggregate_needs_min_samples_then_fires(
    clean_db, monkeypatch, tmp_path, webhook, ingest_client
):
    rules_path = write_rules(tmp_path, WINDOW_RULES)
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        # An old sample outside the window, and another series: neither counts.
        assert through_ingest(ingest_client, client, report(0.0, seconds=-601)).status_code == 204
        other = report(0.0, seconds=30, labels={"env": "dev"})
        assert through_ingest(ingest_client, client, other).status_code == 204
        assert through_ingest(ingest_client, client, report(0.9, seconds=0)).status_code == 204
        # Two samples in the window (mean 0.55): not enough samples anyway.
        assert through_ingest(ingest_client, client, report(0.2, seconds=60)).status_code == 204
        # Three samples, mean 0.4333: fires.
        response = through_ingest(ingest_client, client, report(0.2, seconds=120))
        assert response.status_code == 200, response.data
        (alert,) = response.json()["alerts"]
        assert alert["value"] == pytest.approx((0.9 + 0.2 + 0.2) / 3)
        assert alert["window"] == "10m"
        assert alert["aggregate"] == "mean"
        assert alert["annotations"]["summary"] == (
            "mean of prediction_accuracy over 10m lower than 0.5"
        )
        assert len(webhook.wait_for(1)) == 1
        # The 0.9 sample leaves the window at 600s: the mean drops, still firing.
        assert through_ingest(ingest_client, client, report(0.9, seconds=601)).status_code == 204
        # Mean of 0.2, 0.9, 0.9 (at 120, 601, 602) = 0.667: resolved.
        response = through_ingest(ingest_client, client, report(0.9, seconds=602))
        assert response.headers["ce-type"] == "modelstats.alert.resolved"


def test_samples_sent_at_one_time_share_their_window(
    clean_db, monkeypatch, tmp_path, ingest_client
):
    rules = WINDOW_RULES.replace("min_samples: 3", "min_samples: 1")
    with alert_function(monkeypatch, write_rules(tmp_path, rules)) as client:
        # One event, two samples of one series at one time, then two more a minute later:
        # each pair is judged on one window (the first on 2 samples, the second on 4).
        first = [report(0.1, seconds=0), report(0.3, seconds=0)]
        response = through_ingest(ingest_client, client, *first)
        assert response.status_code == 200, response.text
        (fired,) = response.json()["alerts"]
        assert fired["value"] == pytest.approx(0.2)
        later = [report(0.9, seconds=60), report(0.9, seconds=60)]
        response = through_ingest(ingest_client, client, *later)
        assert response.status_code == 200, response.text
        (resolved,) = response.json()["alerts"]
    assert resolved["status"] == "resolved"
    assert resolved["value"] == pytest.approx((0.1 + 0.3 + 0.9 + 0.9) / 4)


def test_every_aggregate(clean_db, monkeypatch, tmp_path, ingest_client):
    names = ["mean", "min", "max", "p50", "p95", "p99", "count", "last"]
    text = "rules:\n" + "".join(
        f"  - {{name: {n}, metric: m, op: '>=', threshold: -1000, window: 1h, aggregate: {n}}}\n"
        for n in names
    )
    rules_path = write_rules(tmp_path, text)
    earlier = [4.0, 1.0, 10.0, 2.0, 3.0]
    with alert_function(monkeypatch, rules_path) as client:
        # Earlier samples go to the store only; the last one is evaluated on the whole window.
        headers = {
            "ce-specversion": "1.0",
            "ce-id": "earlier",
            "ce-source": "/tests",
            "ce-type": "modelstats.metric.reported",
            "content-type": "application/json",
        }
        batch = [report(metrics={"m": v}, seconds=i) for i, v in enumerate(earlier)]
        stored_reply = ingest_client.post(
            "/", headers=headers, content=json.dumps({"reports": batch})
        )
        assert stored_reply.status_code == 200
        response = through_ingest(ingest_client, client, report(metrics={"m": 5.0}, seconds=10))
        assert response.status_code == 200
        got = {a["rule"]: a["value"] for a in response.json()["alerts"]}
    assert set(got) == set(names)
    samples = [*earlier, 5.0]
    assert got["mean"] == pytest.approx(sum(samples) / 6)
    assert (got["min"], got["max"], got["count"], got["last"]) == (1.0, 10.0, 6.0, 5.0)
    # percentile_cont interpolates between closest ranks of 1, 2, 3, 4, 5, 10.
    assert got["p50"] == pytest.approx(3.5)
    assert got["p95"] == pytest.approx(5 + 0.75 * 5)
    assert got["p99"] == pytest.approx(5 + 0.95 * 5)


MATCH_RULES = """
rules:
  - name: ProdAccuracy
    metric: prediction_accuracy
    op: "<="
    threshold: 0.3
    match: {model: "Mis*", version: v1, labels: {env: prod}}
"""


def test_label_matching(clean_db, monkeypatch, tmp_path, webhook):
    rules_path = write_rules(tmp_path, MATCH_RULES)
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        assert post(client, report(0.1, labels={"env": "dev"})).status_code == 204
        assert post(client, report(0.1)).status_code == 204  # no env label
        assert post(client, report(0.1, model="GPT", labels={"env": "prod"})).status_code == 204
        assert post(client, report(0.1, version="v2", labels={"env": "prod"})).status_code == 204
        assert post(client, report(0.31, labels={"env": "prod"})).status_code == 204
        response = post(client, report(0.3, labels={"env": "prod", "region": "eu"}))
        assert response.status_code == 200
        (alert,) = response.json()["alerts"]
        assert alert["labels"]["region"] == "eu"
        assert alert["labels"]["env"] == "prod"
        # Another series (other labels) of the same rule is its own alert.
        response = post(client, report(0.1, model="Mistral-7B", labels={"env": "prod"}))
        assert response.status_code == 200
        assert response.json()["alerts"][0]["fingerprint"] != alert["fingerprint"]
        assert len(webhook.wait_for(2)) == 2
    # Three series were evaluated (the 0.31 one too); two of them fired.
    assert rows(clean_db, "SELECT count(*) FROM alert_states")[0][0] == 3
    assert rows(clean_db, "SELECT count(*) FROM alerts")[0][0] == 2


def test_redelivery_changes_nothing_and_gets_the_same_reply(
    clean_db, monkeypatch, tmp_path, webhook
):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        first = post(client, report(0.1), id="same")
        again = post(client, report(0.1), id="same")
        assert first.status_code == again.status_code == 200
        assert first.headers["ce-id"] == again.headers["ce-id"]
        assert first.headers["ce-time"] == again.headers["ce-time"]
        assert first.json() == again.json()
        # Redelivered at the same moment, many times over: still one evaluation.
        headers, body = stored(report(0.9, seconds=60), id="resolve")
        with ThreadPoolExecutor(8) as pool:
            replies = list(
                pool.map(lambda _: client.post("/", headers=headers, content=body), range(8))
            )
        assert {r.status_code for r in replies} == {200}
        assert len({r.headers["ce-id"] for r in replies}) == 1
        assert len(webhook.wait_for(2)) == 2
        assert len(webhook.quiet_for(0.3)) == 2
    assert rows(clean_db, "SELECT kind FROM alert_transitions ORDER BY id") == [
        ("firing",),
        ("resolved",),
    ]
    assert rows(clean_db, "SELECT count(*) FROM alert_events")[0][0] == 2


def test_one_event_with_several_transitions_replies_once_listing_them(
    clean_db, monkeypatch, tmp_path, webhook
):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        assert post(client, report(0.1, model="A")).status_code == 200
        response = post(client, report(0.9, seconds=60, model="A"), report(0.1, model="B"))
        assert response.status_code == 200
        assert response.headers["ce-type"] == "modelstats.alert.fired"
        data = response.json()
        assert data["status"] == "firing"
        assert sorted((a["labels"]["model"], a["status"]) for a in data["alerts"]) == [
            ("A", "resolved"),
            ("B", "firing"),
        ]
        assert len(webhook.wait_for(3)) == 3


@pytest.mark.parametrize(
    ("headers", "body", "field"),
    [
        (
            {"ce-type": "modelstats.metric.reported"},
            {"reports": [report(0.1)]},
            "type",
        ),
        ({}, {"reports": "nope"}, "reports"),
        (
            {},
            {"reports": [{**report(0.1), "metrics": {"prediction_accuracy": "low"}}]},
            "reports[0].metrics.prediction_accuracy",
        ),
        ({}, {"reports": [{**report(0.1), "time": "yesterday"}]}, "reports[0].time"),
        ({"ce-id": ""}, {"reports": [report(0.1)]}, "id"),
    ],
)
def test_bad_events_answer_400_naming_the_field(
    clean_db, monkeypatch, tmp_path, webhook, headers, body, field
):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    base, _ = stored()
    with alert_function(monkeypatch, rules_path, webhook=webhook.url) as client:
        response = client.post("/", headers={**base, **headers}, content=json.dumps(body))
        assert response.status_code == 400
        assert response.json()["field"] == field
    assert rows(clean_db, "SELECT count(*) FROM alert_events")[0][0] == 0


def test_not_a_cloudevent_and_wrong_method(clean_db, monkeypatch, tmp_path):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    with alert_function(monkeypatch, rules_path) as client:
        response = client.post("/", content=b"{}", headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["field"] == "content-type"
        assert client.get("/").status_code == 405
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "rules": 1}


def test_malformed_rules_file_fails_every_request_naming_rule_and_field(
    clean_db, monkeypatch, tmp_path
):
    rules_path = write_rules(
        tmp_path,
        """
        rules:
          - name: Fine
            metric: m
            op: "<"
            threshold: 1
          - name: Broken
            metric: m
            op: "<"
            threshold: 1
            window: soon
        """,
    )
    # Importing the function does not read the file; the first request does.
    with alert_function(monkeypatch, rules_path) as client:
        for response in (post(client, report(0.1)), client.get("/healthz")):
            assert response.status_code == 500
            message = response.json()["message"]
            assert "rule 'Broken' (rules[1]), field 'window'" in message
            assert str(rules_path) in message


def test_database_down_answers_503(monkeypatch, tmp_path, database_url):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    from modelstats.local.stack.ports import free_port
    from modelstats.store import db

    db.close_pools()
    try:
        with alert_function(
            monkeypatch,
            rules_path,
            DATABASE_URL=f"postgresql://127.0.0.1:{free_port()}/nothing",
            DB_POOL_TIMEOUT_S="1",
        ) as client:
            response = post(client, report(0.1))
            assert response.status_code == 503
            assert response.json()["error"] == "database_unavailable"
    finally:
        db.close_pools()
