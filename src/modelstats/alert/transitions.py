"""Writing one alert change in the evaluating transaction: the alert row (opened, or updated),
its transition, and, when it notifies, one outbox row per notifier.

An alert is one episode of a rule on a series, from pending or firing until it ends (resolved,
or back to inactive before firing); `alert_states.alert_id` points at the open one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Json

from modelstats.alert.observations import Observation, alert_labels
from modelstats.alert.rules import format_number
from modelstats.alert.state import AlertState, Change
from modelstats.core import durations, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.settings import get_settings
from modelstats.store import queries

# What an alert row says while the change that produced it is its latest.
EPISODE_STATE = {
    "pending": "pending",
    "firing": "firing",
    "repeat": "firing",
    "resolved": "resolved",
    "inactive": "inactive",
}


SQL = queries.Group("alerts")


def generator_url(model: str, version: str, metric: str) -> str:
    base = get_settings().stats_public_url
    return f"{base}/stats/{quote(model, safe='')}/{quote(version, safe='')}?metric={quote(metric)}"


def snapshot(
    obs: Observation,
    alert_id: int,
    change: Change,
    fired_at: datetime | None,
    annotations: dict[str, str],
    evaluated_at: datetime,
) -> dict[str, Any]:
    """The alert as notifiers and the reply see it, recorded with its transition.
    `evaluatedAt` (wall clock) against `report.time` (the sample's) says how late it came."""
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
        "evaluatedAt": timestamps.format(evaluated_at),
        "report": report.to_json(),
    }


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
    fired_at: datetime | None,
) -> dict[str, Any] | None:
    """Write one change; the alert as notified, or None when the change does not notify."""
    rule, report = obs.rule, obs.report
    summary = rule.render_summary(report.model, report.version, report.labels, change.value)
    annotations = {"summary": summary, "value": format_number(change.value)}
    if change.from_state == "inactive":
        state.alert_id = await _open_alert(conn, context, obs, change, annotations)
    else:
        await _update_alert(conn, context, state, change, annotations)
    assert state.alert_id is not None
    alert_id = state.alert_id
    if change.kind in ("resolved", "inactive"):
        state.alert_id = None  # the episode is over
    if change.kind == "firing":
        fired_at = change.at
    alert = (
        snapshot(obs, alert_id, change, fired_at, annotations, context.now)
        if change.notifies
        else None
    )
    transition_id = await _insert_transition(conn, context, obs, alert_id, change, alert)
    if alert is not None and context.notifiers:
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
    return alert


async def _open_alert(
    conn: psycopg.AsyncConnection[Any],
    context: Context,
    obs: Observation,
    change: Change,
    annotations: dict[str, str],
) -> int:
    rule, report = obs.rule, obs.report
    async with conn.cursor(row_factory=dict_row) as cursor:
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
        row = await cursor.fetchone()
    assert row is not None
    return int(row["id"])


async def _update_alert(
    conn: psycopg.AsyncConnection[Any],
    context: Context,
    state: AlertState,
    change: Change,
    annotations: dict[str, str],
) -> None:
    ended = change.kind in ("resolved", "inactive")
    await conn.execute(
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


async def _insert_transition(
    conn: psycopg.AsyncConnection[Any],
    context: Context,
    obs: Observation,
    alert_id: int,
    change: Change,
    alert: dict[str, Any] | None,
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
                "alert": Json(alert) if alert is not None else None,
            },
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row["id"])
