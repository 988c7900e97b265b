"""Alert evaluation: `modelstats.metric.stored` events in, alert transitions and replies out.

For each report and each rule that applies to it (observations.py), the rule is evaluated on the
series (model, version, labels): on the sample itself, or on an aggregate of the store's samples
in the window that ends at the sample's time. `state.step` moves the series' state; every change
is written (transitions.py) with the event's `alert_events` row, in the transaction that holds
the states' row locks. So concurrent processes agree (they queue on the locks), and a redelivered
event conflicts on its `alert_events` row, changes nothing and gets the first delivery's reply.

Concurrent events share that transaction (group commit, store/batching.py): one commit for all
the events that arrived while the previous batch was written, each answered once it commits.
Within a batch every series sees its observations in arrival order, as if the events had come
one at a time. Each event's reply: claims.py. What time alone changes (stale series, repeats,
absence rules) is the schedule's (schedule.py), on the function's own PingSource tick.

Counted (core/metrics.py), once the batch has committed: events by outcome (evaluated,
duplicate, unmatched) and state changes by rule and kind; each change is a DEBUG line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from cloudevents.http import CloudEvent
from psycopg.rows import dict_row

from modelstats.alert import claims, outbox, rulebook, schedule
from modelstats.alert.claims import EventKey, Verdict
from modelstats.alert.notification import Notification
from modelstats.alert.notifiers import configured
from modelstats.alert.observations import Observation, plan
from modelstats.alert.rules import AnyRule
from modelstats.alert.state import step
from modelstats.alert.transitions import Context, lock_states, record, retrying, save_states
from modelstats.core import contract, metrics, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput
from modelstats.core.holder import Holder
from modelstats.core.reports import Report, labels_json, parse_reports
from modelstats.store import queries
from modelstats.store.batching import GroupCommit, Pending

log = logging.getLogger("modelstats.alerts")

STORED = contract.METRIC_STORED

_events = metrics.Children(metrics.ALERT_EVENTS)
_transitions = metrics.Children(metrics.ALERT_TRANSITIONS)


SQL = queries.Group("alerts")


@dataclass(frozen=True)
class Work:
    """One event to evaluate, with its observations."""

    event: Event
    observations: list[Observation]
    context: Context

    @property
    def key(self) -> EventKey:
        return claims.key(self.event)


Batch = list[Pending[Work, Verdict]]


def validate(event: Event, now: datetime) -> list[Report]:
    if event.type != STORED:
        expected = f"{STORED!r} (or a tick of the schedule, {contract.PING!r})"
        raise BadInput("type", f"expected {expected}, got {event.type!r}")
    return parse_reports(event.data, default_time=event.time or now, now=now)


async def evaluate(
    event: Event, rule_set: list[AnyRule] | None = None, now: datetime | None = None
) -> Verdict:
    """Evaluate one stored event; its notifications are in the outbox when this returns."""
    now = now or timestamps.now()
    reports = validate(event, now)
    observations = plan(reports, rulebook.current() if rule_set is None else rule_set)
    if not observations:
        _events("unmatched").inc()
        return Verdict(None)
    context = Context(event, now, sorted(configured()))
    verdict = await _evaluators.get().submit(Work(event, observations, context))
    _events("duplicate" if verdict.duplicate else "evaluated").inc()
    for rule, kind in verdict.changes:
        _transitions(rule, kind).inc()
    return verdict


async def handle(event: Event) -> CloudEvent | None:
    """What the function does per request: evaluate a stored event (or a tick of the schedule),
    then wake the senders of this process."""
    verdict = await (schedule.tick(event) if event.type == contract.PING else evaluate(event))
    if verdict.alerts and not verdict.duplicate:
        outbox.dispatcher().wake()
    return verdict.reply


async def _commit_with_retries(batch: Batch) -> None:
    works = [pending.item for pending in batch]
    verdicts = await retrying(lambda conn: _evaluate_batch(conn, works))
    # Committed: only now may the callers be answered.
    for pending, verdict in zip(batch, verdicts, strict=True):
        pending.resolve(verdict)


_evaluators: Holder[GroupCommit[Work, Verdict]] = Holder(
    lambda: GroupCommit(
        _commit_with_retries, weight=lambda work: len(work.observations), max_weight=5000
    ),
    per_loop=True,
)


async def _evaluate_batch(conn: psycopg.AsyncConnection[Any], works: list[Work]) -> list[Verdict]:
    """Evaluate the batch in the caller's transaction; one verdict per work, in order."""
    first: dict[EventKey, Work] = {}
    for work in works:
        first.setdefault(work.key, work)
    claimed = await claims.claim(conn, [(w.event, w.context.now) for w in first.values()])
    fresh = [work for key, work in first.items() if key in claimed]
    notified, changed = await _step_all(conn, fresh) if fresh else ({}, {})
    verdicts: dict[EventKey, Verdict] = {}
    for work in fresh:
        alerts = notified.get(work.key, [])
        reply = await claims.answer(conn, work.event, alerts, work.context.now)
        verdicts[work.key] = Verdict(reply, alerts=alerts, changes=changed.get(work.key, []))
    # Evaluated before, or twice in this batch: the first evaluation's reply, nothing changed.
    again = {work.key for work in works if work.key not in verdicts or first[work.key] is not work}
    stored = await claims.stored_replies(conn, again) if again else {}
    return [
        verdicts[work.key]
        if first[work.key] is work and work.key in verdicts
        else Verdict(stored.get(work.key), duplicate=True)
        for work in works
    ]


async def _step_all(
    conn: psycopg.AsyncConnection[Any], works: list[Work]
) -> tuple[dict[EventKey, list[Notification]], dict[EventKey, list[tuple[str, str]]]]:
    """Lock the states the batch touches, step them, write the changes; what each event
    notified, and the (rule, kind) of every change it made, by event key."""
    flat = [(position, obs) for position, work in enumerate(works) for obs in work.observations]
    states = await lock_states(conn, sorted({obs.key for _, obs in flat}))
    values = await _values(conn, flat)
    notified: dict[EventKey, list[Notification]] = {}
    changed: dict[EventKey, list[tuple[str, str]]] = {}
    # Per series, events in arrival order, and within an event its samples in time order.
    order = sorted(
        range(len(flat)), key=lambda i: (flat[i][1].key, flat[i][0], flat[i][1].report.time, i)
    )
    for i in order:
        position, obs = flat[i]
        work = works[position]
        state = states[obs.key]
        change = step(state, obs.rule, obs.report.time, values[i], work.context.now)
        if change is not None:
            notification = await record(conn, work.context, obs.subject, state, change, obs.report)
            if notification is not None:
                notified.setdefault(work.key, []).append(notification)
            changed.setdefault(work.key, []).append((obs.rule.name, change.kind))
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "rule %s on %s %s (%s): %s -> %s at %s",
                    obs.rule.name,
                    obs.report.model,
                    obs.report.version,
                    obs.subject.fingerprint,
                    change.from_state,
                    change.to_state,
                    timestamps.format(change.at),
                )
    await save_states(conn, states)
    return notified, changed


async def _values(
    conn: psycopg.AsyncConnection[Any], flat: list[tuple[int, Observation]]
) -> list[float | None]:
    """The value each observation is judged on: the sample, or its window's aggregate. Equal
    windows (one series, one end: events sent at one time) are read once."""
    values: list[float | None] = [obs.sample for _, obs in flat]
    windows: dict[tuple[Any, ...], list[int]] = {}
    for i, (_, obs) in enumerate(flat):
        report, rule, window = obs.report, obs.rule, obs.rule.window
        if window is not None:
            series = (report.model, report.version, rule.metric, labels_json(report.labels))
            key = (*series, report.time - window, report.time, rule.aggregation)
            windows.setdefault(key, []).append(i)
    if not windows:
        return values
    keys = list(windows)
    async with conn.cursor(row_factory=dict_row) as cursor:
        columns = [list(column) for column in zip(*keys, strict=True)]
        await cursor.execute(SQL["window_aggregates"], (list(range(len(keys))), *columns))
        by_index = {row["i"]: row for row in await cursor.fetchall()}
    for n, key in enumerate(keys):
        row = by_index[n]
        for i in windows[key]:
            rule = flat[i][1].rule
            enough = row["count"] >= rule.min_samples and row["count"] > 0
            values[i] = float(row["value"]) if enough and row["value"] is not None else None
    return values
