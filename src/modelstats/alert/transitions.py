"""The evaluating transaction: the alert states it touches locked (sorted, so that concurrent
transactions take the locks in one order), each change written (the alert row, opened or
updated; its transition; when it notifies, the notification built from the row as written and
one outbox row per notifier), the states saved at its end; a lost race retried.

An alert is one episode of a rule on a series, from pending or firing until it ends (resolved,
or back to inactive before firing); `alert_states.alert_id` points at the open one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Json

from modelstats.alert.conditions import format_number
from modelstats.alert.notification import Notification
from modelstats.alert.observations import Subject
from modelstats.alert.state import AlertState, Change
from modelstats.core.cloudevents import Event
from modelstats.core.reports import Report
from modelstats.store import db, queries
from modelstats.store.alert_history import Alert

T = TypeVar("T")

# What an alert row says while the change that produced it is its latest.
EPISODE_STATE = {
    "pending": "pending",
    "firing": "firing",
    "repeat": "firing",
    "resolved": "resolved",
    "inactive": "inactive",
}


SQL = queries.Group("alerts")
# A lost race on a lock ordering we did not foresee is retried, not answered with a 500.
_RETRIED_STATES = ("40001", "40P01")
_ATTEMPTS = 3


@dataclass(frozen=True)
class Context:
    """Where a change is written from: the event evaluated, when, and who will be notified."""

    event: Event
    now: datetime
    notifiers: list[str]


async def retrying(body: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
    """`body` in a transaction of its own, tried again after a serialization failure or a
    deadlock; what it returns once committed."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with db.async_connection() as conn, conn.transaction():
                return await body(conn)
        except psycopg.Error as error:
            if attempt == _ATTEMPTS or (error.sqlstate or "") not in _RETRIED_STATES:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


async def lock_states(
    conn: psycopg.AsyncConnection[Any], keys: list[tuple[str, str]]
) -> dict[tuple[str, str], AlertState]:
    columns = ([k[0] for k in keys], [k[1] for k in keys])
    await conn.execute(SQL["ensure_states"], columns)
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(SQL["lock_states"], columns)
        rows = await cursor.fetchall()
    return {(row.pop("rule"), row.pop("fingerprint")): AlertState(**row) for row in rows}


async def save_states(
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


async def record(
    conn: psycopg.AsyncConnection[Any],
    context: Context,
    subject: Subject,
    state: AlertState,
    change: Change,
    report: Report | None = None,
    annotations: dict[str, str] | None = None,
) -> Notification | None:
    """Write one change; its notification, or None when the change does not notify.

    `report`: the report whose sample made the change (none when the schedule made it);
    `annotations`: what to say, else the rule's summary of the change's value."""
    if annotations is None:
        annotations = {
            "summary": subject.summary(change.value),
            "value": format_number(change.value),
        }
    if change.from_state == "inactive":
        alert = await _open_alert(conn, context, subject, change, annotations)
        state.alert_id = alert.id
    else:
        alert = await _update_alert(conn, context, state, change, annotations)
    if change.kind in ("resolved", "inactive"):
        state.alert_id = None  # the episode is over
    notification = (
        Notification.of(alert, change, subject.rule, report, context.now)
        if change.notifies
        else None
    )
    transition_id = await _insert_transition(conn, context, subject, alert.id, change, notification)
    if notification is not None and context.notifiers:
        await conn.execute(
            SQL["insert_notifications"],
            {
                "transition_id": transition_id,
                "rule": subject.rule.name,
                "fingerprint": subject.fingerprint,
                "now": context.now,
                "notifiers": context.notifiers,
            },
        )
    return notification


async def _open_alert(
    conn: psycopg.AsyncConnection[Any],
    context: Context,
    subject: Subject,
    change: Change,
    annotations: dict[str, str],
) -> Alert:
    async with conn.cursor(row_factory=class_row(Alert)) as cursor:
        await cursor.execute(
            SQL["insert_alert"],
            {
                "rule": subject.rule.name,
                "fingerprint": subject.fingerprint,
                "state": change.to_state,
                "model": subject.model,
                "version": subject.version,
                "metric": subject.metric,
                "labels": Json(subject.alert_labels()),
                "annotations": Json(annotations),
                "value": change.value,
                "active_at": change.at,
                "fired_at": change.at if change.to_state == "firing" else None,
                "now": context.now,
            },
        )
        alert = await cursor.fetchone()
    assert alert is not None
    return alert


async def _update_alert(
    conn: psycopg.AsyncConnection[Any],
    context: Context,
    state: AlertState,
    change: Change,
    annotations: dict[str, str],
) -> Alert:
    ended = change.kind in ("resolved", "inactive")
    async with conn.cursor(row_factory=class_row(Alert)) as cursor:
        await cursor.execute(
            SQL["update_alert"],
            {
                "state": EPISODE_STATE[change.kind],
                "value": change.value,
                "annotations": Json(annotations),
                "fired_at": change.at if change.kind == "firing" else None,
                "ended_at": change.at if ended else None,
                "now": context.now,
                "id": state.alert_id,
            },
        )
        alert = await cursor.fetchone()
    assert alert is not None, f"alert {state.alert_id} of an open state is missing"
    return alert


async def _insert_transition(
    conn: psycopg.AsyncConnection[Any],
    context: Context,
    subject: Subject,
    alert_id: int,
    change: Change,
    notification: Notification | None,
) -> int:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            SQL["insert_transition"],
            {
                "alert_id": alert_id,
                "rule": subject.rule.name,
                "fingerprint": subject.fingerprint,
                "kind": change.kind,
                "from_state": change.from_state,
                "to_state": change.to_state,
                "at": change.at,
                "value": change.value,
                "now": context.now,
                "event_source": context.event.source,
                "event_id": context.event.id,
                "alert": Json(notification.to_json()) if notification is not None else None,
            },
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row["id"])
