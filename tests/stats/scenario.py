"""A day in the life of three models, written straight into the store (no tests here).

Mistral v1 and v2 report prediction_accuracy, drift and inference_time every 5 minutes for a
day and hourly for a week before; v2's accuracy collapses for 28 minutes, and an alert fired
and resolved around it; another alert (drift) is firing now. v2 also runs in staging, where its
accuracy differs. Llama and Phi report a little. Two dead letters arrived in the last day.
Alerts and their transitions are written as the alert function writes them (a resolved alert's
series goes back to inactive); `add_alert` writes more.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.stats.samples import Sample, add_samples


@dataclass(frozen=True)
class Scenario:
    now: datetime
    collapse_start: datetime
    collapse_end: datetime
    fired_at: datetime
    resolved_at: datetime
    drift_fired_at: datetime


def _value(metric: str, version: str, moment: datetime, scenario: Scenario) -> float:
    phase = moment.timestamp() / 3600
    if metric == "prediction_accuracy":
        if version == "v2" and scenario.collapse_start <= moment < scenario.collapse_end:
            return 0.18 + 0.02 * math.sin(phase * 40)
        return (0.86 if version == "v1" else 0.9) + 0.02 * math.sin(phase)
    if metric == "drift":
        return 0.05 + 0.03 * (1 + math.sin(phase / 3)) + (0.1 if version == "v2" else 0.0)
    daily = math.sin(2 * math.pi * phase / 24)  # busier by day: slower inference
    return (14.0 if version == "v1" else 11.0) + 3 * (1 + daily) + math.sin(phase * 7) / 2  # ms


def _times(now: datetime) -> list[datetime]:
    recent = [now - timedelta(minutes=5 * i) for i in range(1, 24 * 12 + 1)]
    older = [now - timedelta(hours=h) for h in range(25, 24 * 7)]
    return recent + older


def _samples(scenario: Scenario) -> list[Sample]:
    rows: list[Sample] = []
    prod = {"env": "prod"}
    for moment in _times(scenario.now):
        for version in ("v1", "v2"):
            for metric in ("prediction_accuracy", "drift", "inference_time"):
                value = _value(metric, version, moment, scenario)
                rows.append(("Mistral", version, metric, prod, moment, value))
        rows.append(("Mistral", "v2", "prediction_accuracy", {"env": "staging"}, moment, 0.61))
    for hours in range(1, 48):
        moment = scenario.now - timedelta(hours=hours)
        rows.append(("Llama", "v1", "prediction_accuracy", {}, moment, 0.8))
        rows.append(("Phi", "v3", "inference_time", {}, moment, 30.0 + hours % 5))
    return rows


ALERT_COLUMNS = (
    "rule, fingerprint, state, model, version, metric, labels, annotations, value, active_at,"
    " fired_at, ended_at, created_at, updated_at"
)


def add_alert(
    conn: psycopg.Connection[Any],
    values: dict[str, Any],
    moves: list[tuple],
    model: str = "Mistral",
    version: str = "v2",
) -> None:
    """One alert (of Mistral v2 unless said; in `values["env"]`, prod by default) and its
    transitions."""
    labels = {
        "alertname": values["rule"],
        "model": model,
        "version": version,
        "metric": values["metric"],
        "severity": values["severity"],
        "env": values.get("env", "prod"),
    }
    row = conn.execute(
        f"INSERT INTO alerts ({ALERT_COLUMNS}) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now()) RETURNING id",
        (
            values["rule"],
            hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16],
            values["state"],
            model,
            version,
            values["metric"],
            Jsonb(labels),
            Jsonb({"summary": values["summary"]}),
            values["value"],
            values["active_at"],
            values["fired_at"],
            values.get("ended_at"),
        ),
    ).fetchone()
    assert row is not None
    for kind, before, after, at in moves:
        conn.execute(
            "INSERT INTO alert_transitions (alert_id, rule, fingerprint, kind, from_state,"
            " to_state, at, value, recorded_at, event_source, event_id)"
            " VALUES (%s, %s, 'f', %s, %s, %s, %s, %s, now(), '/test', %s)",
            (row[0], values["rule"], kind, before, after, at, values["value"], f"{kind}-{at}"),
        )


def _alerts(conn: psycopg.Connection[Any], scenario: Scenario) -> None:
    active = scenario.collapse_start
    add_alert(
        conn,
        {
            "rule": "LowPredictionAccuracy",
            "state": "resolved",
            "metric": "prediction_accuracy",
            "severity": "critical",
            "summary": "prediction_accuracy lower than 0.3",
            "value": 0.19,
            "active_at": active,
            "fired_at": scenario.fired_at,
            "ended_at": scenario.resolved_at,
        },
        [
            ("pending", "inactive", "pending", active),
            ("firing", "pending", "firing", scenario.fired_at),
            ("resolved", "firing", "inactive", scenario.resolved_at),
        ],
    )
    add_alert(
        conn,
        {
            "rule": "drift_high",
            "state": "firing",
            "metric": "drift",
            "severity": "warning",
            "summary": "drift higher than 0.2",
            "value": 0.21,
            "active_at": scenario.drift_fired_at - timedelta(minutes=5),
            "fired_at": scenario.drift_fired_at,
        },
        [("firing", "pending", "firing", scenario.drift_fired_at)],
    )


def _dead_letters(conn: psycopg.Connection[Any]) -> None:
    for hours, reason in ((5, "metrics.accuracy: not a finite number"), (2, "model: missing")):
        conn.execute(
            "INSERT INTO dead_letters (event_source, event_id, event_type, error_dest,"
            " error_code, error_data, attributes, data, received_at)"
            " VALUES ('/model-server', %s, 'modelstats.metric.reported', 'ingest', 400, %s,"
            " '{}', NULL, now() - %s * interval '1 hour')",
            (f"dl-{hours}", reason, hours),
        )


def seed(url: str, now: datetime) -> Scenario:
    """Store the scenario relative to `now` (whole minutes, so that URLs stay short)."""
    now = now.replace(second=0, microsecond=0)
    collapse_start = now - timedelta(hours=3, minutes=14)
    scenario = Scenario(
        now=now,
        collapse_start=collapse_start,
        collapse_end=collapse_start + timedelta(minutes=28),
        fired_at=collapse_start + timedelta(minutes=5),
        resolved_at=collapse_start + timedelta(minutes=33),
        drift_fired_at=now - timedelta(minutes=20),
    )
    add_samples(url, _samples(scenario))
    with psycopg.connect(url) as conn:
        _alerts(conn, scenario)
        _dead_letters(conn)
    return scenario
