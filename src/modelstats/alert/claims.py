"""Each event evaluated once: claimed in the transaction that evaluates it (its `alert_events`
row), its reply saved with it, and a redelivery answered with that same reply, changing nothing.

The reply: when an event produced notifications (firing, repeat, resolved), ONE CloudEvent,
`modelstats.alert.fired` if any of them is firing else `modelstats.alert.resolved`, whose data
lists them all: `{"status": "firing"|"resolved", "alerts": [alert, ...]}` (the shape of an
Alertmanager group), so a consumer never misses a transition because one event produced two;
otherwise no reply (204).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from cloudevents.http import CloudEvent
from psycopg.rows import dict_row
from psycopg.types.json import Json

from modelstats.alert.notification import Notification
from modelstats.core import cloudevents, contract
from modelstats.core.cloudevents import Event
from modelstats.store import queries

SQL = queries.Group("alerts")

EventKey = tuple[str, str]  # (source, id): the CloudEvents identity


@dataclass
class Verdict:
    """What evaluating one event came to: its reply, and the alerts it notified."""

    reply: CloudEvent | None
    duplicate: bool = False
    alerts: list[Notification] = field(default_factory=list)
    # Every state change the event made, notifying or not: (rule, kind).
    changes: list[tuple[str, str]] = field(default_factory=list)


def key(event: Event) -> EventKey:
    return (event.source, event.id)


async def claim(
    conn: psycopg.AsyncConnection[Any], arrivals: list[tuple[Event, datetime]]
) -> set[EventKey]:
    """Of these (event, received at), the events never evaluated before; the others are
    another delivery's to answer."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            SQL["claim_events"],
            {
                "sources": [event.source for event, _ in arrivals],
                "ids": [event.id for event, _ in arrivals],
                "received": [received for _, received in arrivals],
            },
        )
        return {(row["source"], row["id"]) for row in await cursor.fetchall()}


def reply(event: Event, notified: list[Notification], now: datetime) -> CloudEvent | None:
    if not notified:
        return None
    firing = any(notification.status == "firing" for notification in notified)
    data = {
        "status": "firing" if firing else "resolved",
        "alerts": [notification.to_json() for notification in notified],
    }
    reply_id = cloudevents.derived_id(event.source, event.id, contract.ALERT_SOURCE)
    kind = contract.ALERT_FIRED if firing else contract.ALERT_RESOLVED
    return cloudevents.reply(kind, contract.ALERT_SOURCE, reply_id, data, time=now)


async def answer(
    conn: psycopg.AsyncConnection[Any], event: Event, notified: list[Notification], now: datetime
) -> CloudEvent | None:
    """The claimed event's reply, saved for its redeliveries."""
    answered = reply(event, notified, now)
    if answered is not None:
        await conn.execute(
            SQL["save_reply"],
            {
                "type": answered["type"],
                "id": answered["id"],
                "time": now,
                "data": Json(answered.data),
                "event_source": event.source,
                "event_id": event.id,
            },
        )
    return answered


async def stored_replies(
    conn: psycopg.AsyncConnection[Any], keys: Iterable[EventKey]
) -> dict[EventKey, CloudEvent | None]:
    """What the first evaluation of each of these events answered."""
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
                contract.ALERT_SOURCE,
                row["reply_id"],
                row["reply_data"],
                time=row["reply_time"],
            )
            if row["reply_type"] is not None
            else None
        )
        for row in rows
    }
