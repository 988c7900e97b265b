"""Daily rollups per series, computed lazily for closed days and kept in `stats_daily`.

A rollup holds one series' day: count, mean, sum of squared deviations, min, max and a sketch
(sketch.py). It is computed at query time the first time a day is needed, under a lock
that keeps late samples out of the day while it is read; the same step seals the day's
partition with a trigger that forgets the day's rollups when a late sample arrives
(migrations/0003_stats.sql). Ingest pays nothing for any of this on open days.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row, scalar_row

from modelstats.store import queries

log = logging.getLogger("modelstats.stats")

# How long a query waits for a day's partition lock before using raw samples instead.
LOCK_TIMEOUT = "200ms"


@dataclass(frozen=True)
class Part:
    """One series' mergeable moments over part of a window: a whole day, or the raw rest."""

    series_id: int
    n: int
    mean: float
    m2: float
    lo: float
    hi: float


async def ensure(
    conn: AsyncConnection[Any], ids: Sequence[int], start: datetime, stop: datetime
) -> bool:
    """Compute the missing rollups of these series for the days in [start, stop).

    Each day is its own transaction (one partition lock at a time), so call this outside any
    transaction. False when a day could not be locked or sealed: use raw samples instead.
    """
    window = {"ids": list(ids), "first": start.date(), "end": stop.date()}
    cursor = conn.cursor(row_factory=scalar_row)
    await cursor.execute(queries.get("stats", "partition_days"), window)
    days = set(await cursor.fetchall())
    keys = conn.cursor(row_factory=dict_row)
    await keys.execute(queries.get("stats", "rollup_keys"), window)
    have: dict[date, int] = {}
    for key in await keys.fetchall():
        have[key["day"]] = have.get(key["day"], 0) + 1
    await conn.commit()
    missing = sorted(day for day in days if have.get(day, 0) < len(set(ids)))
    if missing:
        await conn.execute(queries.get("stats", "forget_dropped"))
        await conn.commit()
    for day in missing:
        try:
            async with conn.transaction():
                await conn.execute(queries.get("stats", "lock_timeout"), {"timeout": LOCK_TIMEOUT})
                locked = conn.cursor(row_factory=scalar_row)
                await locked.execute(queries.get("stats", "lock_day"), {"day": day})
                part = await locked.fetchone()
                if part is None:
                    continue  # dropped by retention meanwhile: nothing to roll up
                start_of_day = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                await conn.execute(
                    queries.get("stats", "compute_rollups"),
                    {
                        "ids": list(ids),
                        "day": day,
                        "part": part,
                        "start": start_of_day,
                        "end": start_of_day + timedelta(days=1),
                    },
                )
        except (psycopg.errors.LockNotAvailable, psycopg.errors.InsufficientPrivilege) as error:
            log.warning("rollup of %s skipped, using raw samples: %s", day, error)
            return False
    return True


def _window(
    ids: Sequence[int], since: datetime, until: datetime, start: datetime, stop: datetime
) -> dict[str, Any]:
    """Whole days [start, stop) come from rollups, the rest of [since, until) from samples."""
    return {
        "ids": list(ids),
        "first": start.date(),
        "end": stop.date(),
        "since": since,
        "until": until,
        "rollup_start": max(since, start) if stop > start else until,
        "rollup_end": stop if stop > start else until,
    }


async def moments(
    conn: AsyncConnection[Any],
    ids: Sequence[int],
    since: datetime,
    until: datetime,
    start: datetime,
    stop: datetime,
) -> dict[int, list[Part]]:
    """Each series' parts (whole days and the raw rest) of the window; merge them to combine."""
    cursor = conn.cursor(row_factory=class_row(Part))
    await cursor.execute(queries.get("stats", "moments"), _window(ids, since, until, start, stop))
    parts: dict[int, list[Part]] = {}
    for part in await cursor.fetchall():
        parts.setdefault(part.series_id, []).append(part)
    return parts


async def sketches(
    conn: AsyncConnection[Any],
    ids: Sequence[int],
    since: datetime,
    until: datetime,
    start: datetime,
    stop: datetime,
) -> dict[int, list[tuple[int, int]]]:
    """Each series' sketch of the window: (bucket, count) in bucket order."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(queries.get("stats", "histogram"), _window(ids, since, until, start, stop))
    found: dict[int, list[tuple[int, int]]] = {}
    for row in await cursor.fetchall():
        found.setdefault(row["series_id"], []).append((row["key"], row["n"]))
    return found


async def first_day(conn: AsyncConnection[Any]) -> datetime | None:
    """Midnight (UTC) of the oldest day that has a partition."""
    cursor = conn.cursor(row_factory=scalar_row)
    await cursor.execute(
        queries.get("stats", "partition_days"), {"first": date.min, "end": date.max}
    )
    days = await cursor.fetchall()
    if not days:
        return None
    return datetime.combine(min(days), datetime.min.time(), tzinfo=UTC)
