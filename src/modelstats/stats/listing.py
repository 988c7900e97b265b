"""GET /models: each model's versions with their metric names, label values, sample counts,
first and last seen. The dashboard builds its selects and its label filter from it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from modelstats.core import timestamps
from modelstats.stats import rollups
from modelstats.stats.summaries import (
    DAY,
    ROLLUP_MIN_DAYS,
    SeriesEnds,
    connection,
    rollup_days,
    series_ends,
)
from modelstats.store import queries


async def _counts(
    conn: AsyncConnection[Any], ids: list[int], since: datetime, until: datetime
) -> dict[int, int]:
    """Samples per series in the window: whole closed days from rollups when it is long."""
    start, stop = rollup_days(since, until, timestamps.now())
    use_rollups = stop - start >= ROLLUP_MIN_DAYS * DAY
    if use_rollups:
        await conn.commit()
        use_rollups = await rollups.ensure(conn, ids, start, stop)
    if not use_rollups:
        start = stop = since
    parts = await rollups.moments(conn, ids, since, until, start, stop)
    return {series_id: sum(part.n for part in found) for series_id, found in parts.items()}


def _version(version: str, first: datetime, last: datetime) -> dict[str, Any]:
    return {
        "version": version,
        "metrics": set(),
        "labels": {},
        "samples": 0,
        "first_seen": first,
        "last_seen": last,
    }


def _listing(
    series: list[dict[str, Any]], counts: dict[int, int], ends: dict[int, SeriesEnds]
) -> dict[str, Any]:
    """model -> version -> entry, from the series that have samples in the window."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for one in series:
        window = ends.get(one["id"])
        if window is None:
            continue
        first, last, version = window.first, window.last, one["version"]
        entry = found.setdefault(one["model"], {}).setdefault(
            version, _version(version, first, last)
        )
        entry["metrics"].add(one["metric"])
        for key, value in one["labels"].items():
            entry["labels"].setdefault(key, set()).add(value)
        entry["samples"] += counts.get(one["id"], 0)
        entry["first_seen"] = min(entry["first_seen"], first)
        entry["last_seen"] = max(entry["last_seen"], last)
    return found


def _version_json(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        **entry,
        "metrics": sorted(entry["metrics"]),
        "labels": {key: sorted(values) for key, values in sorted(entry["labels"].items())},
        "first_seen": timestamps.format(entry["first_seen"]),
        "last_seen": timestamps.format(entry["last_seen"]),
    }


async def models(since: datetime | None, until: datetime) -> dict[str, Any]:
    """GET /models over [since, until); all time when since is None."""
    async with connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(queries.get("stats", "models"))
        series = await cursor.fetchall()
        ids = [one["id"] for one in series]
        if since is None:
            since = await rollups.first_day(conn) or until
        counts: dict[int, int] = {}
        ends: dict[int, SeriesEnds] = {}
        if ids and since < until:
            counts = await _counts(conn, ids, since, until)
            ends = await series_ends(conn, ids, since, until)
    listing = _listing(series, counts, ends)
    return {
        "since": timestamps.format(since) if since else None,
        "until": timestamps.format(until),
        "models": [
            {"model": model, "versions": [_version_json(e) for e in versions.values()]}
            for model, versions in listing.items()
        ],
    }
