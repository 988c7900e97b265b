"""Evaluation on a schedule: the alert function's own PingSource tick (`alert-schedule`).

Threshold rules are judged when their samples arrive (evaluation.py); a tick judges what only
time changes, as Prometheus re-evaluates every rule on its interval:

- every open alert of a threshold rule: it ends once its series went stale (its rule judged
  no sample for `stale_after`), and while it stays firing it repeats every `repeat_interval`
  (state.expire); the alert's last value and summary go with the notification;
- absence rules: each model (or series) seen within `seen_within` is judged on the seconds since
  its newest sample: `absent_for` or more fires, less resolves (the data came back); a model not
  seen within `seen_within` is no longer watched, and its open alert resolves.

A tick is an event like the others: claimed once (a redelivered tick changes nothing and gets
the same reply), evaluated in one transaction holding the row locks of the states it touches,
answered with one alert.fired / .resolved reply listing its notifications, or 204.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from modelstats.alert import claims, rulebook
from modelstats.alert.claims import Verdict
from modelstats.alert.notification import Notification
from modelstats.alert.notifiers import configured
from modelstats.alert.observations import Subject
from modelstats.alert.rules import AbsenceRule, AnyRule, Rule
from modelstats.alert.state import AlertState, Change, end, expire, step
from modelstats.alert.transitions import Context, lock_states, record, retrying, save_states
from modelstats.core import contract, durations, metrics, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput
from modelstats.store import db, queries
from modelstats.store.alert_history import Alert

log = logging.getLogger("modelstats.alerts")

SQL = queries.Group("alerts")

_events = metrics.Children(metrics.ALERT_EVENTS)
_transitions = metrics.Children(metrics.ALERT_TRANSITIONS)


@dataclass(frozen=True)
class Seen:
    """A series with a recent sample (`newest_samples`)."""

    model: str
    version: str
    metric: str
    labels: dict[str, str]
    newest: datetime


@dataclass(frozen=True)
class Target:
    """One subject a tick judges: an open alert of a threshold rule, or a subject of an absence
    rule (`newest` None: no longer seen within `seen_within`)."""

    subject: Subject
    alert: Alert | None = None  # its open alert
    newest: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.subject.key


def validate(event: Event) -> None:
    if event.type != contract.PING:
        raise BadInput("type", f"expected {contract.PING!r}, got {event.type!r}")


async def tick(
    event: Event, rule_set: list[AnyRule] | None = None, now: datetime | None = None
) -> Verdict:
    """Evaluate one tick; its notifications are in the outbox when this returns."""
    validate(event)
    now = now or timestamps.now()
    rule_set = rulebook.current() if rule_set is None else rule_set
    context = Context(event, now, sorted(configured()))
    try:
        verdict = await retrying(lambda conn: _evaluate(conn, context, rule_set))
    except psycopg.Error as error:
        # The same classification as an event's in a group commit: 503 or a bug (500).
        raise db.judge(error) from error
    _events("duplicate" if verdict.duplicate else "evaluated").inc()
    for rule, kind in verdict.changes:
        _transitions(rule, kind).inc()
    return verdict


async def _evaluate(
    conn: psycopg.AsyncConnection[Any], context: Context, rule_set: list[AnyRule]
) -> Verdict:
    event, now = context.event, context.now
    if not await claims.claim(conn, [(event, now)]):
        stored = await claims.stored_replies(conn, [claims.key(event)])
        return Verdict(stored.get(claims.key(event)), duplicate=True)
    targets = await _targets(conn, rule_set, now)
    states = await lock_states(conn, sorted({target.key for target in targets}))
    notified: list[Notification] = []
    changes: list[tuple[str, str]] = []
    for target in sorted(targets, key=lambda target: target.key):
        state = states[target.key]
        judged = _judge(target, state, now)
        if judged is None:
            continue
        change, annotations = judged
        notification = await record(
            conn, context, target.subject, state, change, annotations=annotations
        )
        if notification is not None:
            notified.append(notification)
        changes.append((target.subject.rule.name, change.kind))
        log.debug(
            "rule %s on %s (%s), on schedule: %s -> %s",
            target.subject.rule.name,
            target.subject.model,
            target.subject.fingerprint,
            change.from_state,
            change.to_state,
        )
    await save_states(conn, states)
    reply = await claims.answer(conn, event, notified, now)
    return Verdict(reply, alerts=notified, changes=changes)


async def _targets(
    conn: psycopg.AsyncConnection[Any], rule_set: list[AnyRule], now: datetime
) -> list[Target]:
    """The open alerts of threshold rules, and every subject of the absence rules."""
    by_name = {rule.name: rule for rule in rule_set}
    async with conn.cursor(row_factory=class_row(Alert)) as cursor:
        await cursor.execute(SQL["open_alerts"])
        open_alerts = await cursor.fetchall()
    targets = [
        Target(Subject.of_alert(rule, alert), alert)
        for alert in open_alerts
        if isinstance(rule := by_name.get(alert.rule), Rule)
    ]
    absence = [rule for rule in rule_set if isinstance(rule, AbsenceRule)]
    if absence:
        since = now - max(rule.seen_within for rule in absence)
        async with conn.cursor(row_factory=class_row(Seen)) as cursor:
            await cursor.execute(SQL["newest_samples"], {"since": since})
            seen = await cursor.fetchall()
        for rule in absence:
            open_ones = [alert for alert in open_alerts if alert.rule == rule.name]
            targets += _watched(rule, seen, open_ones, now)
    return targets


def _watched(
    rule: AbsenceRule, seen: Iterable[Seen], open_alerts: list[Alert], now: datetime
) -> list[Target]:
    """The subjects of one absence rule with their newest sample, and its open alerts whose
    subject is no longer seen (newest None)."""
    newest: dict[tuple[str, str], tuple[Subject, datetime]] = {}
    for series in seen:
        if series.newest <= now - rule.seen_within:
            continue
        if rule.metric is not None and series.metric != rule.metric:
            continue
        if not rule.match.matches(series.model, series.version, series.labels):
            continue
        if rule.per == "model":
            subject = Subject.of(rule, series.model, metric=rule.metric)
        else:
            subject = Subject.of(rule, series.model, series.version, series.metric, series.labels)
        known = newest.get(subject.key)
        if known is None or series.newest > known[1]:
            newest[subject.key] = (subject, series.newest)
    opened = {(alert.rule, alert.fingerprint): alert for alert in open_alerts}
    targets = [Target(subject, opened.get(key), time) for key, (subject, time) in newest.items()]
    targets += [
        Target(Subject.of_alert(rule, alert), alert)
        for key, alert in opened.items()
        if key not in newest
    ]
    return targets


def _judge(
    target: Target, state: AlertState, now: datetime
) -> tuple[Change, dict[str, str] | None] | None:
    """What this tick changes for one target, and what the change says (None: the rule's
    summary of the change's value)."""
    rule, alert = target.subject.rule, target.alert
    if alert is not None and state.alert_id != alert.id:
        return None  # changed since it was read (an event got there first): the next tick
    if isinstance(rule, Rule):
        assert alert is not None and alert.value is not None
        last_judged = state.last_eval_at
        change = expire(state, rule, alert.value, now)
        if change is None or last_judged is None:
            return None
        if change.kind == "repeat":
            return change, alert.annotations
        went = f"no sample to judge since {timestamps.format(last_judged)}: the series went stale"
        return change, {**alert.annotations, "description": went}
    if target.newest is None:
        assert alert is not None
        change = end(state, now, alert.value or 0.0)
        if change is None:
            return None
        gone = f"no sample for over {durations.format(rule.seen_within)}: no longer watched"
        return change, {**alert.annotations, "description": gone}
    silent = round(max(0.0, (now - target.newest).total_seconds()))
    change = step(state, rule, now, silent, now)
    if change is None:
        return None
    newest = f"newest sample at {timestamps.format(target.newest)}"
    summary = target.subject.summary(silent)
    return change, {"summary": summary, "value": str(silent), "description": newest}
