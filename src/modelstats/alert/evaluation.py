"""Alert evaluation: one `modelstats.metric.stored` event in, alert transitions and a reply out.

For each report and each rule that applies to it (metric present, match passes), the rule is
evaluated on the series (model, version, labels): on the sample itself, or on an aggregate of the
store's samples in the window that ends at the sample's time. `alert_state.step` moves the
series' state; every change is written, with the event's `alert_events` row, the alert history
and the outbox rows of its notifications, in ONE transaction that holds the states' row locks.
So concurrent processes agree (they queue on the locks), and a redelivered event conflicts on
its `alert_events` row, changes nothing and gets the first delivery's reply again.

The reply: when the event produced notifications (firing, repeat, resolved), ONE CloudEvent,
`modelstats.alert.fired` if any of them is firing else `modelstats.alert.resolved`, whose data
lists them all: `{"status": "firing"|"resolved", "alerts": [alert, ...]}` (the shape of an
Alertmanager group). One shape whatever the count, so that a consumer never misses a transition
because a batch produced two; otherwise no reply (204).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import psycopg
from cloudevents.http import CloudEvent
from psycopg.types.json import Json

from modelstats.alert import outbox, rules
from modelstats.alert.notifiers import configured
from modelstats.alert.rules import Rule, format_number
from modelstats.alert.state import AlertState, Change, step
from modelstats.core import cloudevents, durations, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput
from modelstats.core.reports import Report, parse_reports
from modelstats.core.settings import get_settings
from modelstats.store import db, queries

STORED = "modelstats.metric.stored"
FIRED = "modelstats.alert.fired"
RESOLVED = "modelstats.alert.resolved"
REPLY_SOURCE = "/modelstats/alert"
# A lost race on a lock ordering we did not foresee is retried, not answered with a 500.
_RETRIED_STATES = ("40001", "40P01")
_ATTEMPTS = 3
_AGGREGATE_COLUMN = {
    "count": 1,
    "mean": 2,
    "min": 3,
    "max": 4,
    "p50": 5,
    "p95": 6,
    "p99": 7,
    "last": 8,
}
_EPISODE_STATE = {
    "pending": "pending",
    "firing": "firing",
    "repeat": "firing",
    "resolved": "resolved",
    "inactive": "inactive",
}


def _q(name: str) -> str:
    return queries.get("alerts", name)


def labels_json(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(rule: str, model: str, version: str, labels: dict[str, str]) -> str:
    """Stable identity of one rule on one series: 16 hex digits, as Alertmanager shows them."""
    text = json.dumps([rule, model, version, labels], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def alert_labels(rule: Rule, report: Report) -> dict[str, str]:
    """The series' labels plus alertname, model, version, metric, severity (these win)."""
    return {
        **report.labels,
        "alertname": rule.name,
        "model": report.model,
        "version": report.version,
        "metric": rule.metric,
        "severity": rule.severity,
    }


def generator_url(model: str, version: str, metric: str) -> str:
    base = get_settings().stats_public_url
    return f"{base}/stats/{quote(model, safe='')}/{quote(version, safe='')}?metric={quote(metric)}"


@dataclass(frozen=True)
class Observation:
    """One rule applied to one report: the rule's metric in that report, at its time."""

    index: int
    rule: Rule
    report: Report
    fingerprint: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule.name, self.fingerprint)

    @property
    def sample(self) -> float:
        return self.report.metrics[self.rule.metric]


@dataclass
class Outcome:
    reply: CloudEvent | None
    duplicate: bool = False
    alerts: list[dict[str, Any]] = field(default_factory=list)


def validate(event: Event, now: datetime) -> list[Report]:
    if event.type != STORED:
        raise BadInput("type", f"expected {STORED!r}, got {event.type!r}")
    return parse_reports(event.data, default_time=event.time or now, now=now)


def plan(reports: list[Report], rule_set: list[Rule]) -> list[Observation]:
    found: list[Observation] = []
    for report in reports:
        for rule in rule_set:
            if rule.metric in report.metrics and rule.match.matches(
                report.model, report.version, report.labels
            ):
                fp = fingerprint(rule.name, report.model, report.version, report.labels)
                found.append(Observation(len(found), rule, report, fp))
    return found


def evaluate(
    event: Event, rule_set: list[Rule] | None = None, now: datetime | None = None
) -> Outcome:
    """Evaluate one stored event; its notifications are in the outbox when this returns."""
    now = now or timestamps.now()
    reports = validate(event, now)
    observations = plan(reports, rules.current() if rule_set is None else rule_set)
    if not observations:
        return Outcome(None)
    notifier_names = sorted(configured())
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with db.connection() as conn:
                return _evaluate(conn, event, observations, notifier_names, now)
        except psycopg.Error as error:
            if attempt == _ATTEMPTS or (error.sqlstate or "") not in _RETRIED_STATES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def handle(event: Event) -> Outcome:
    """What the function does per request: evaluate, then wake the senders of this process."""
    sender = outbox.dispatcher()
    outcome = evaluate(event)
    if outcome.alerts and not outcome.duplicate:
        sender.wake()
    return outcome


def _evaluate(
    conn: psycopg.Connection[Any],
    event: Event,
    observations: list[Observation],
    notifier_names: list[str],
    now: datetime,
) -> Outcome:
    if conn.execute(_q("claim_event"), (event.source, event.id, now)).fetchone() is None:
        return Outcome(_stored_reply(conn, event), duplicate=True)
    keys = sorted({o.key for o in observations})
    columns = ([k[0] for k in keys], [k[1] for k in keys])
    conn.execute(_q("ensure_states"), columns)
    states = {
        (row[0], row[1]): AlertState(*row[2:])
        for row in conn.execute(_q("lock_states"), columns).fetchall()
    }
    values = _values(conn, observations)
    notified: list[dict[str, Any]] = []
    # Per series in time order (a batch may hold several samples of one series).
    for obs in sorted(observations, key=lambda o: (o.key, o.report.time, o.index)):
        state = states[obs.key]
        fired_at = state.fired_at
        change = step(state, obs.rule, obs.report.time, values[obs.index], now)
        if change is not None:
            alert = _record(conn, event, obs, state, change, fired_at, notifier_names, now)
            if alert is not None:
                notified.append(alert)
    _save_states(conn, states)
    reply = _reply(event, notified, now)
    if reply is not None:
        conn.execute(
            _q("save_reply"),
            (reply["type"], reply["id"], now, Json(reply.data), event.source, event.id),
        )
    return Outcome(reply, alerts=notified)


def _values(conn: psycopg.Connection[Any], observations: list[Observation]) -> list[float | None]:
    """The value each observation is judged on: the sample, or its window's aggregate."""
    values: list[float | None] = [o.sample for o in observations]
    windowed = [o for o in observations if o.rule.window is not None]
    if not windowed:
        return values
    rows = conn.execute(
        _q("window_aggregates"),
        (
            [o.index for o in windowed],
            [o.report.model for o in windowed],
            [o.report.version for o in windowed],
            [o.rule.metric for o in windowed],
            [labels_json(o.report.labels) for o in windowed],
            [o.report.time - o.rule.window for o in windowed if o.rule.window is not None],
            [o.report.time for o in windowed],
        ),
    ).fetchall()
    by_index = {row[0]: row for row in rows}
    for obs in windowed:
        row = by_index[obs.index]
        count = int(row[1])
        aggregate = obs.rule.aggregation or "mean"
        value = row[_AGGREGATE_COLUMN[aggregate]]
        enough = count >= obs.rule.min_samples and count > 0
        values[obs.index] = float(value) if enough and value is not None else None
    return values


def snapshot(
    obs: Observation,
    alert_id: int,
    change: Change,
    fired_at: datetime | None,
    annotations: dict[str, str],
) -> dict[str, Any]:
    """The alert as notifiers and the reply see it, recorded with its transition."""
    rule, report = obs.rule, obs.report
    resolved = change.kind == "resolved"
    return {
        "id": alert_id,
        "status": "resolved" if resolved else "firing",
        "notification": change.kind,
        "rule": rule.name,
        "fingerprint": obs.fingerprint,
        "labels": alert_labels(rule, report),
        "annotations": annotations,
        "value": change.value,
        "op": rule.op,
        "threshold": rule.threshold,
        "window": durations.format(rule.window) if rule.window else None,
        "aggregate": rule.aggregation,
        "startsAt": timestamps.format(fired_at or change.at),
        "endsAt": timestamps.format(change.at) if resolved else None,
        "generatorURL": generator_url(report.model, report.version, rule.metric),
        "report": report.to_json(),
    }


def _record(
    conn: psycopg.Connection[Any],
    event: Event,
    obs: Observation,
    state: AlertState,
    change: Change,
    fired_at: datetime | None,
    notifier_names: list[str],
    now: datetime,
) -> dict[str, Any] | None:
    """Write one change: the alert row, the transition, and its outbox rows."""
    rule, report = obs.rule, obs.report
    summary = rule.render_summary(report.model, report.version, report.labels, change.value)
    annotations = {"summary": summary, "value": format_number(change.value)}
    if change.from_state == "inactive":
        row = conn.execute(
            _q("insert_alert"),
            (
                rule.name,
                obs.fingerprint,
                change.to_state,
                report.model,
                report.version,
                rule.metric,
                Json(alert_labels(rule, report)),
                Json(annotations),
                change.value,
                change.at,
                change.at if change.to_state == "firing" else None,
                now,
                now,
            ),
        ).fetchone()
        assert row is not None
        state.alert_id = int(row[0])
    assert state.alert_id is not None
    alert_id = state.alert_id
    if change.from_state != "inactive":
        ended = change.kind in ("resolved", "inactive")
        conn.execute(
            _q("update_alert"),
            (
                _EPISODE_STATE[change.kind],
                change.value,
                Json(annotations),
                change.at if change.kind == "firing" else None,
                change.at if ended else None,
                now,
                alert_id,
            ),
        )
        if ended:
            state.alert_id = None
    if change.kind == "firing":
        fired_at = change.at
    alert = snapshot(obs, alert_id, change, fired_at, annotations) if change.notifies else None
    row = conn.execute(
        _q("insert_transition"),
        (
            alert_id,
            rule.name,
            obs.fingerprint,
            change.kind,
            change.from_state,
            change.to_state,
            change.at,
            change.value,
            now,
            event.source,
            event.id,
            Json(alert) if alert is not None else None,
        ),
    ).fetchone()
    assert row is not None
    if alert is not None and notifier_names:
        conn.execute(
            _q("insert_notifications"),
            (row[0], rule.name, obs.fingerprint, now, now, notifier_names),
        )
    return alert


def _save_states(conn: psycopg.Connection[Any], states: dict[tuple[str, str], AlertState]) -> None:
    keys = sorted(states)
    conn.execute(
        _q("save_states"),
        (
            [k[0] for k in keys],
            [k[1] for k in keys],
            [states[k].state for k in keys],
            [states[k].alert_id for k in keys],
            [states[k].active_since for k in keys],
            [states[k].fired_at for k in keys],
            [states[k].last_true_at for k in keys],
            [states[k].last_eval_at for k in keys],
            [states[k].last_notified_at for k in keys],
        ),
    )


def _reply(event: Event, notified: list[dict[str, Any]], now: datetime) -> CloudEvent | None:
    if not notified:
        return None
    firing = any(alert["status"] == "firing" for alert in notified)
    data = {"status": "firing" if firing else "resolved", "alerts": notified}
    reply_id = cloudevents.derived_id(event.source, event.id, REPLY_SOURCE)
    return cloudevents.reply(FIRED if firing else RESOLVED, REPLY_SOURCE, reply_id, data, time=now)


def _stored_reply(conn: psycopg.Connection[Any], event: Event) -> CloudEvent | None:
    row = conn.execute(_q("event_reply"), (event.source, event.id)).fetchone()
    if row is None or row[0] is None:
        return None
    reply_type, reply_id, reply_time, data = row
    return cloudevents.reply(reply_type, REPLY_SOURCE, reply_id, data, time=reply_time)
