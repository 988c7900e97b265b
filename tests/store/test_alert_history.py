"""GET /alerts: the alert history read, and the route on the stats function."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelstats.core import timestamps
from modelstats.stats import params
from modelstats.store import alert_history
from tests.alert.alerting import (
    LOW_ACCURACY,
    T0,
    at,
    configure,
    evaluate,
    report,
    stored,
    write_rules,
)


def record(*reports):
    headers, body = stored(*reports)
    return evaluate(headers, body)


@pytest.fixture
def history(clean_db, monkeypatch, tmp_path):
    """Three alerts: Mistral v1 resolved, Mistral v2 firing, GPT v1 pending."""
    rules_path = write_rules(
        tmp_path,
        LOW_ACCURACY + "    match: {model: Mistral}\n"
        "  - {name: GptSlow, metric: prediction_accuracy, op: '<', threshold: 0.5,"
        " match: {model: GPT}, for: 1h}\n",
    )
    configure(monkeypatch, ALERT_RULES_FILE=str(rules_path))
    record(report(0.1, seconds=0))
    record(report(0.9, seconds=600))
    record(report(0.2, seconds=1200, version="v2"))
    record(report(0.4, seconds=1800, model="GPT"))
    return clean_db


def query(**given: str) -> list[dict]:
    parsed = params.parse_alerts(given.items(), timestamps.now())
    found = alert_history.list_alerts(
        parsed.states, parsed.model, parsed.version, parsed.since, parsed.limit
    )
    return [alert.to_json() for alert in found]


def test_lists_current_and_past_alerts_newest_first_with_transitions(history):
    found = query()
    assert [(a["model"], a["version"], a["state"]) for a in found] == [
        ("GPT", "v1", "pending"),
        ("Mistral", "v2", "firing"),
        ("Mistral", "v1", "resolved"),
    ]
    resolved = found[2]
    assert resolved["rule"] == "LowPredictionAccuracy"
    assert (resolved["active_at"], resolved["fired_at"], resolved["ended_at"]) == (
        at(0),
        at(0),
        at(600),
    )
    assert [(t["kind"], t["from"], t["to"], t["at"]) for t in resolved["transitions"]] == [
        ("firing", "inactive", "firing", at(0)),
        ("resolved", "firing", "inactive", at(600)),
    ]
    assert resolved["labels"]["alertname"] == "LowPredictionAccuracy"
    assert resolved["annotations"]["summary"] == "prediction_accuracy lower than 0.3"
    assert found[0]["transitions"][0]["kind"] == "pending"
    assert found[0]["fired_at"] is None


def test_filters(history):
    assert [a["version"] for a in query(state="firing")] == ["v2"]
    assert [a["state"] for a in query(state="firing,pending")] == ["pending", "firing"]
    assert [a["version"] for a in query(model="Mistral")] == ["v2", "v1"]
    assert [a["model"] for a in query(version="v1")] == ["GPT", "Mistral"]
    assert [a["state"] for a in query(model="Mistral", version="v1")] == ["resolved"]
    assert len(query(limit="2")) == 2
    assert query(model="Nobody") == []
    # since: alerts open at any time since then. The resolved one ended at T0+600s.
    since = timestamps.format(T0 + timedelta(seconds=601))
    assert [a["state"] for a in query(since=since)] == ["pending", "firing"]
    assert len(query(since=timestamps.format(T0 + timedelta(seconds=600)))) == 3
    assert len(query(since="2h")) == 3  # a duration back from now


# The route on the stats function.


def test_stats_function_serves_alerts_as_documented(history):
    from jsonschema import Draft202012Validator

    from modelstats.stats import openapi
    from tests.stats.samples import client

    document = openapi.document()
    operation = document["paths"]["/alerts"]["get"]
    schema = {
        **operation["responses"]["200"]["content"]["application/json"]["schema"],
        "components": document["components"],
    }
    with client() as http:
        everything = http.get("/alerts")
        firing = http.get("/alerts", params={"state": "firing", "model": "Mistral"})
        bad_state = http.get("/alerts?state=burning")
        bad_limit = http.get("/alerts?limit=0")
        not_get = http.post("/alerts")
    assert everything.status_code == 200
    errors = list(Draft202012Validator(schema).iter_errors(everything.json()))
    assert not errors, errors[0]
    assert [a["state"] for a in everything.json()["alerts"]] == ["pending", "firing", "resolved"]
    assert [a["version"] for a in firing.json()["alerts"]] == ["v2"]
    for response, field in ((bad_state, "state"), (bad_limit, "limit")):
        assert response.status_code == 400
        assert response.json()["field"] == field
    assert not_get.status_code == 405
