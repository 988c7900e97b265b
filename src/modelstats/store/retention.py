"""Retention: old samples go by dropping whole daily partitions, never row by row.

Rows kept only to recognise redeliveries go by age with them: dedup records, evaluated alert
events, sent notifications and replayed dead letters. Alert history and undelivered work stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from psycopg.rows import scalar_row

from modelstats.store import queries
from modelstats.store.db import connection

# What `forgotten` counts, by the query that deletes it.
FORGOTTEN = {
    "dedup records": "forget_ingest_events",
    "evaluated alert events": "forget_alert_events",
    "sent notifications": "forget_sent_notifications",
    "replayed dead letters": "forget_replayed_dead_letters",
}


@dataclass(frozen=True)
class RetentionResult:
    cutoff: date
    dropped_partitions: list[str]
    forgotten: dict[str, int]


def apply(older_than: timedelta, now: datetime | None = None) -> RetentionResult:
    """Drop every day of samples that ends at or before `now - older_than` (UTC days).

    An event redelivered after its dedup record was forgotten would be stored again: the
    dedup horizon is the retention, as documented.
    """
    now = now or datetime.now(UTC)
    cutoff = (now - older_than).astimezone(UTC).date()
    with connection() as conn:
        partitions = conn.cursor(row_factory=scalar_row)
        dropped = partitions.execute(
            queries.get("retention", "drop_partitions"), (cutoff,)
        ).fetchall()
        forgotten = {
            what: conn.execute(queries.get("retention", name), (cutoff,)).rowcount
            for what, name in FORGOTTEN.items()
        }
    return RetentionResult(cutoff, dropped, forgotten)
