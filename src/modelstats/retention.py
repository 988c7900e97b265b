"""Retention: old samples go by dropping whole daily partitions, never row by row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from . import queries
from .db import connection


@dataclass(frozen=True)
class RetentionResult:
    cutoff: date
    dropped_partitions: list[str]
    forgotten_events: int


def apply(older_than: timedelta, now: datetime | None = None) -> RetentionResult:
    """Drop every day of samples that ends at or before `now - older_than` (UTC days).

    Dedup records older than the cutoff go too: an event redelivered after its samples were
    dropped could be stored again, which is the documented dedup horizon.
    """
    now = now or datetime.now(UTC)
    cutoff = (now - older_than).astimezone(UTC).date()
    with connection() as conn:
        dropped = [
            row[0] for row in conn.execute(queries.get("store", "drop_partitions"), (cutoff,))
        ]
        forgotten = conn.execute(queries.get("store", "forget_events"), (cutoff,)).rowcount
    return RetentionResult(cutoff, dropped, forgotten)
