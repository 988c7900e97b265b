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
one at a time.

The reply: when an event produced notifications (firing, repeat, resolved), ONE CloudEvent,
`modelstats.alert.fired` if any of them is firing else `modelstats.alert.resolved`, whose data
lists them all: `{"status": "firing"|"resolved", "alerts": [alert, ...]}` (the shape of an
Alertmanager group), so a consumer never misses a transition because a batch produced two;
otherwise no reply (204).

Counted (core/metrics.py), once the batch has committed: events by outcome (evaluated,
duplicate, unmatched) and state changes by rule and kind; each change is a DEBUG line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from cloudevents.http import CloudEvent
from psycopg.rows import dict_row
from psycopg.types.json import Json

from modelstats.alert import outbox, rules
from modelstats.alert.notification import Notification
from modelstats.alert.notifiers import configured
from modelstats.alert.observations import Observation, plan
from modelstats.alert.rules import Rule
from modelstats.alert.state import AlertState, step
from modelstats.alert.transitions import Context, record
from modelstats.core import cloudevents, contract, metrics, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput
from modelstats.core.holder import Holder
from modelstats.core.reports import Report, labels_json, parse_reports
from modelstats.store import db, queries
from modelstats.store.batching import GroupCommit, Pending

log = logging.getLogger("modelstats.alerts")

STORED = contract.METRIC_STORED
FIRED = contract.ALERT_FIRED
RESOLVED = contract.ALERT_RESOLVED
REPLY_SOURCE = contract.ALERT_SOURCE
# A lost race on a lock ordering we did not foresee is retried, not answered with a 500.
_RETRIED_STATES = ("40001", "40P01")
_ATTEMPTS = 3

_events = metrics.Children(metrics.ALERT_EVENTS)
_transitions = metrics.Children(metrics.ALERT_TRANSITIONS)


SQL = queries.Group("alerts")


@dataclass
class Verdict:
    """What evaluating one event came to: its reply, and the alerts it notified."""

    reply: CloudEvent | None
    duplicate: bool = False
    alerts: list[Notification] = field(default_factory=list)
    # Every state change the event made, notifying or not: (rule, kind).
    changes: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Work:
    """One event to evaluate, with its observations."""

    event: Event
    observations: list[Observation]
    context: Context

    @property
    def key(self) -> tuple[str, str]:
        return (self.event.source, self.event.id)


Batch = list[Pending[Work, Verdict]]


def validate(event: Event, now: datetime) -> list[Report]:
    if event.type != STORED:
        raise BadInput("type", f"expected {STORED!r}, got {event.type!r}")
    return parse_reports(event.data, default_time=event.time or now, now=now)


async def evaluate(
    event: Event, rule_set: list[Rule] | None = None, now: datetime | None = None
) -> Verdict:
    """Evaluate one stored event; its notifications are in the outbox when this returns."""
    now = now or timestamps.now()
    reports = validate(event, now)
    observations = plan(reports, rules.current() if rule_set is None else rule_set)
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
    """What the function does per request: evaluate, then wake the senders of this process."""
    verdict = await evaluate(event)
    if verdict.alerts and not verdict.duplicate:
        outbox.dispatcher().wake()
    return verdict.reply


async def _commit_with_retries(batch: Batch) -> None:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with db.async_connection() as conn, conn.transaction():
                verdicts = await _evaluate_batch(conn, [pending.item for pending in batch])
        except psycopg.Error as error:
            if attempt == _ATTEMPTS or (error.sqlstate or "") not in _RETRIED_STATES:
                raise
            continue
        # Committed: only now may the callers be answered.
        for pending, verdict in zip(batch, verdicts, strict=True):
            pending.resolve(verdict)
        return


_evaluators: Holder[GroupCommit[Work, Verdict]] = Holder(
    lambda: GroupCommit(
        _commit_with_retries, weight=lambda work: len(work.observations), max_weight=5000
    ),
    per_loop=True,
)


async def _evaluate_batch(conn: psycopg.AsyncConnection[Any], works: list[Work]) -> list[Verdict]:
    """Evaluate the batch in the caller's transaction; one verdict per work, in order."""
    first: dict[tuple[str, str], Work] = {}
    for work in works:
        first.setdefault(work.key, work)
    claimed = await _claim(conn, list(first.values()))
    fresh = [work for key, work in first.items() if key in claimed]
    notified, changed = await _step_all(conn, fresh) if fresh else ({}, {})
    verdicts: dict[tuple[str, str], Verdict] = {}
    for work in fresh:
        alerts = notified.get(work.key, [])
        reply = _reply(work, alerts)
        if reply is not None:
            await conn.execute(
                SQL["save_reply"],
                {
                    "type": reply["type"],
                    "id": reply["id"],
                    "time": work.context.now,
                    "data": Json(reply.data),
                    "event_source": work.event.source,
                    "event_id": work.event.id,
                },
            )
        verdicts[work.key] = Verdict(reply, alerts=alerts, changes=changed.get(work.key, []))
    # Evaluated before, or twice in this batch: the first evaluation's reply, nothing changed.
    again = {work.key for work in works if work.key not in verdicts or first[work.key] is not work}
    stored = await _stored_replies(conn, again) if again else {}
    return [
        verdicts[work.key]
        if first[work.key] is work and work.key in verdicts
        else Verdict(stored.get(work.key), duplicate=True)
        for work in works
    ]


async def _claim(conn: psycopg.AsyncConnection[Any], works: list[Work]) -> set[tuple[str, str]]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            SQL["claim_events"],
            {
                "sources": [w.event.source for w in works],
                "ids": [w.event.id for w in works],
                "received": [w.context.now for w in works],
            },
        )
        return {(row["source"], row["id"]) for row in await cursor.fetchall()}


EventKey = tuple[str, str]


async def _step_all(
    conn: psycopg.AsyncConnection[Any], works: list[Work]
) -> tuple[dict[EventKey, list[Notification]], dict[EventKey, list[tuple[str, str]]]]:
    """Lock the states the batch touches, step them, write the changes; what each event
    notified, and the (rule, kind) of every change it made, by event key."""
    flat = [(position, obs) for position, work in enumerate(works) for obs in work.observations]
    states = await _lock_states(conn, sorted({obs.key for _, obs in flat}))
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
            notification = await record(conn, work.context, obs, state, change)
            if notification is not None:
                notified.setdefault(work.key, []).append(notification)
            changed.setdefault(work.key, []).append((obs.rule.name, change.kind))
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "rule %s on %s %s (%s): %s -> %s at %s",
                    obs.rule.name,
                    obs.report.model,
                    obs.report.version,
                    obs.fingerprint,
                    change.from_state,
                    change.to_state,
                    timestamps.format(change.at),
                )
    await _save_states(conn, states)
    return notified, changed


async def _lock_states(
    conn: psycopg.AsyncConnection[Any], keys: list[tuple[str, str]]
) -> dict[tuple[str, str], AlertState]:
    columns = ([k[0] for k in keys], [k[1] for k in keys])
    await conn.execute(SQL["ensure_states"], columns)
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(SQL["lock_states"], columns)
        rows = await cursor.fetchall()
    return {(row.pop("rule"), row.pop("fingerprint")): AlertState(**row) for row in rows}


async def _values(
    conn: psycopg.AsyncConnection[Any], flat: list[tuple[int, Observation]]
) -> list[float | None]:
    """The value each observation is judged on: the sample, or its window's aggregate."""
    values: list[float | None] = [obs.sample for _, obs in flat]
    windowed = [(i, obs) for i, (_, obs) in enumerate(flat) if obs.rule.window is not None]
    if not windowed:
        return values
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            SQL["window_aggregates"],
            (
                [i for i, _ in windowed],
                [obs.report.model for _, obs in windowed],
                [obs.report.version for _, obs in windowed],
                [obs.rule.metric for _, obs in windowed],
                [labels_json(obs.report.labels) for _, obs in windowed],
                [obs.report.time - obs.rule.window for _, obs in windowed if obs.rule.window],
                [obs.report.time for _, obs in windowed],
            ),
        )
        by_index = {row["i"]: row for row in await cursor.fetchall()}
    for i, obs in windowed:
        row = by_index[i]
        value = row[obs.rule.aggregation or "mean"]
        enough = row["count"] >= obs.rule.min_samples and row["count"] > 0
        values[i] = float(value) if enough and value is not None else None
    return values


async def _save_states(
    conn: psycopg.AsyncConnection[Any], states: dict[tuple[str, str], AlertState]
) -> None:
    keys = sorted(states)
    await conn.execute(
        SQL["save_states"],
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


def _reply(work: Work, notified: list[Notification]) -> CloudEvent | None:
    if not notified:
        return None
    firing = any(notification.status == "firing" for notification in notified)
    data = {
        "status": "firing" if firing else "resolved",
        "alerts": [notification.to_json() for notification in notified],
    }
    reply_id = cloudevents.derived_id(work.event.source, work.event.id, REPLY_SOURCE)
    kind = FIRED if firing else RESOLVED
    return cloudevents.reply(kind, REPLY_SOURCE, reply_id, data, time=work.context.now)


async def _stored_replies(
    conn: psycopg.AsyncConnection[Any], keys: set[tuple[str, str]]
) -> dict[tuple[str, str], CloudEvent | None]:
    ordered = sorted(keys)
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            SQL["event_replies"],
            {"sources": [k[0] for k in ordered], "ids": [k[1] for k in ordered]},
        )
        rows = await cursor.fetchall()
    return {
        (row["source"], row["id"]): (
            cloudevents.reply(
                row["reply_type"],
                REPLY_SOURCE,
                row["reply_id"],
                row["reply_data"],
                time=row["reply_time"],
            )
            if row["reply_type"] is not None
            else None
        )
        for row in rows
    }
