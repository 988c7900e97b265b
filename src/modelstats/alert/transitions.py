"""Writing one alert change in the evaluating transaction: the alert row (opened, or updated),
its transition, and, when it notifies, the notification (built from the row as written) and one
outbox row per notifier.

An alert is one episode of a rule on a series, from pending or firing until it ends (resolved,
or back to inactive before firing); `alert_states.alert_id` points at the open one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Json

from modelstats.alert.notification import Notification
from modelstats.alert.observations import Observation, alert_labels
from modelstats.alert.rules import format_number
from modelstats.alert.state import AlertState, Change
from modelstats.core.cloudevents import Event
from modelstats.store import queries
from modelstats.store.alert_history import Alert

# What an alert row says while the change that produced it is its latest.
EPISODE_STATE = {
    "pending": "pending",
    "firing": "firing",
    "repeat": "firing",
    "resolved": "resolved",
    "inactive": "inactive",
}


SQL = queries.Group("alerts")


@dataclass(frozen=True)
class Context:
    """Where a change is written from: the event evaluated, when, and who will be notified."""

    event: Event
    now: datetime
    notifiers: list[str]


async def record(
    conn: psycopg.AsyncConnection[Any],
    context: Context,
    obs: Observation,
    state: AlertState,
    change: Change,
) -> Notification | None:
    """Write one change; its notification, or None when the change does not notify."""
    rule, report = obs.rule, obs.report
    summary = rule.render_summary(report.model, report.version, report.labels, change.value)
    annotations = {"summary": summary, "value": format_number(change.value)}
    if change.from_state == "inactive":
        alert = await _open_alert(conn, context, obs, change, annotations)
        state.alert_id = alert.id
    else:
        alert = await _update_alert(conn, context, state, change, annotations)
    if change.kind in ("resolved", "inactive"):
        state.alert_id = None  # the episode is over
    notification = (
        Notification.of(alert, change, rule, report, context.now) if change.notifies else None
    )
    transition_id = await _insert_transition(conn, context, obs, alert.id, change, notification)
    if notification is not None and context.notifiers:
        await conn.execute(
            SQL["insert_notifications"],
            {
                "transition_id": transition_id,
                "rule": rule.name,
                "fingerprint": obs.fingerprint,
                "now": context.now,
                "notifiers": context.notifiers,
            },
        )
    return notification


async def _open_alert(
    conn: psycopg.AsyncConnection[Any],
    context: Context,
    obs: Observation,
    change: Change,
    annotations: dict[str, str],
) -> Alert:
    rule, report = obs.rule, obs.report
    async with conn.cursor(row_factory=class_row(Alert)) as cursor:
        await cursor.execute(
            SQL["insert_alert"],
            {
                "rule": rule.name,
                "fingerprint": obs.fingerprint,
                "state": change.to_state,
                "model": report.model,
                "version": report.version,
                "metric": rule.metric,
                "labels": Json(alert_labels(rule, report)),
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
    obs: Observation,
    alert_id: int,
    change: Change,
    notification: Notification | None,
) -> int:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            SQL["insert_transition"],
            {
                "alert_id": alert_id,
                "rule": obs.rule.name,
                "fingerprint": obs.fingerprint,
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
