"""Stats over the stored samples: summaries per metric, time buckets, versions side by side.

Short windows are computed exactly over raw samples (percentiles as percentile_cont). Windows
that cover at least ROLLUP_MIN_DAYS whole UTC days that closed more than SETTLE ago take those
days from daily rollups (rollups.py) and the rest of the window from raw samples: count,
mean, min, max and stddev stay exact; percentiles come from merged sketches (sketch.py,
within 0.5% of the exact value); `"percentiles": "sketch"` in the answer says so, and
`exact=true` asks for raw samples instead. first, last and last_value are always exact.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row, scalar_row
from psycopg.types.json import Jsonb

from modelstats.core import timestamps
from modelstats.core.errors import BadInput, DatabaseUnavailable, NotFound
from modelstats.stats import rollups, sketch
from modelstats.stats.params import StatsQuery
from modelstats.store import db, queries

FRACTIONS = (0.5, 0.9, 0.95, 0.99)
PERCENTILES = ("p50", "p90", "p95", "p99")
# The numbers a baseline comparison reports a difference for.
COMPARED = ("count", "mean", "min", "max", "stddev", *PERCENTILES, "last_value")
ROLLUP_MIN_DAYS = 3
SETTLE = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass
class Moments:
    """Count, mean, sum of squared deviations, min and max: mergeable without the samples."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf

    def add(self, n: int, mean: float, m2: float, lo: float, hi: float) -> None:
        if n == 0:
            return
        total = self.n + n
        delta = mean - self.mean
        # Chan et al.: combine two groups' means and squared deviations.
        self.m2 += m2 + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total
        self.lo = min(self.lo, lo)
        self.hi = max(self.hi, hi)

    @property
    def stddev(self) -> float | None:
        return math.sqrt(max(self.m2, 0.0) / (self.n - 1)) if self.n > 1 else None


@dataclass
class Group:
    """The series of one version and metric (several when labels differ)."""

    version: str
    metric: str
    ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SeriesEnds:
    """One series' first and last sample in a window, and the last one's value."""

    series_id: int
    first: datetime
    last: datetime
    last_value: float


@dataclass
class Ends:
    """The first and last sample of a group's series (merged with `add`)."""

    first: datetime | None = None
    last: datetime | None = None
    last_value: float | None = None

    def add(self, series: SeriesEnds) -> None:
        if self.first is None or series.first < self.first:
            self.first = series.first
        newest = (series.last, series.last_value)
        if self.last is None or newest > (self.last, self.last_value or -math.inf):
            self.last, self.last_value = newest


@asynccontextmanager
async def connection() -> AsyncIterator[AsyncConnection[Any]]:
    """A pooled connection; a query stopped by the statement timeout becomes a 503."""
    try:
        async with db.async_connection() as conn:
            yield conn
    except psycopg.errors.QueryCanceled as error:
        raise DatabaseUnavailable(
            "the query ran past the statement timeout: narrow the window, or drop exact=true"
        ) from error


def _day_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def rollup_days(since: datetime, until: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The whole, closed UTC days inside [since, until): [start, stop), possibly empty."""
    start = _day_floor(since)
    if start < since:
        start += DAY
    stop = _day_floor(min(until, now - SETTLE))
    return start, max(start, stop)


async def _groups(
    conn: AsyncConnection[Any], model: str, version: str | None, query: StatsQuery
) -> list[Group]:
    params = {
        "model": model,
        "version": version,
        "metrics": list(query.metrics) if query.metrics else None,
        "labels": [Jsonb({key: value}) for key, value in query.labels],
    }
    exists = conn.cursor(row_factory=scalar_row)
    await exists.execute(queries.get("stats", "model_exists"), params)
    if not await exists.fetchone():
        what = f"model {model!r}" + (f" version {version!r}" if version is not None else "")
        raise NotFound(f"{what} has no samples")
    groups: dict[tuple[str, str], Group] = {}
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(queries.get("stats", "series"), params)
    for series in await cursor.fetchall():
        key = (series["version"], series["metric"])
        groups.setdefault(key, Group(*key)).ids.append(series["id"])
    return sorted(groups.values(), key=lambda g: (g.version, g.metric))


def _ids_and_groups(groups: list[Group]) -> tuple[list[int], list[int]]:
    ids, numbers = [], []
    for number, group in enumerate(groups):
        ids.extend(group.ids)
        numbers.extend([number] * len(group.ids))
    return ids, numbers


async def series_ends(
    conn: AsyncConnection[Any], ids: list[int], since: datetime, until: datetime
) -> dict[int, SeriesEnds]:
    """The ends of each series that has samples in the window."""
    cursor = conn.cursor(row_factory=class_row(SeriesEnds))
    await cursor.execute(queries.get("stats", "ends"), {"ids": ids, "since": since, "until": until})
    return {ends.series_id: ends for ends in await cursor.fetchall()}


def _metric_json(moments: Moments, percentiles: list[float], ends: Ends) -> dict[str, Any]:
    result: dict[str, Any] = {
        "count": moments.n,
        "mean": moments.mean,
        "min": moments.lo,
        "max": moments.hi,
        "stddev": moments.stddev,
    }
    result.update(zip(PERCENTILES, percentiles, strict=True))
    result["first"] = timestamps.format(ends.first) if ends.first else None
    result["last"] = timestamps.format(ends.last) if ends.last else None
    result["last_value"] = ends.last_value
    return result


async def _exact(
    conn: AsyncConnection[Any], groups: list[Group], query: StatsQuery
) -> dict[int, tuple[Moments, list[float]]]:
    ids, numbers = _ids_and_groups(groups)
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        queries.get("stats", "exact_summary"),
        {
            "ids": ids,
            "groups": numbers,
            "since": query.since,
            "until": query.until,
            "fractions": list(FRACTIONS),
        },
    )
    found = {}
    for row in await cursor.fetchall():
        n = row["n"]
        m2 = (row["stddev"] or 0.0) ** 2 * (n - 1)
        moments = Moments(n, row["mean"], m2, row["lo"], row["hi"])
        found[row["grp"]] = (moments, list(row["percentiles"]))
    return found


async def _from_rollups(
    conn: AsyncConnection[Any],
    groups: list[Group],
    query: StatsQuery,
    start: datetime,
    stop: datetime,
) -> dict[int, tuple[Moments, list[float]]]:
    ids, numbers = _ids_and_groups(groups)
    group_of = dict(zip(ids, numbers, strict=True))
    moments = await rollups.moments(conn, ids, query.since, query.until, start, stop)
    sketches = await rollups.sketches(conn, ids, query.since, query.until, start, stop)
    merged: dict[int, Moments] = {}
    for series_id, parts in moments.items():
        target = merged.setdefault(group_of[series_id], Moments())
        for part in parts:
            target.add(part.n, part.mean, part.m2, part.lo, part.hi)
    found = {}
    for number, total in merged.items():
        if total.n == 0:
            continue
        combined = sketch.merge(sketches.get(i, []) for i in groups[number].ids)
        found[number] = (total, sketch.percentiles(combined, FRACTIONS, total.lo, total.hi))
    return found


async def _summaries(
    conn: AsyncConnection[Any], groups: list[Group], query: StatsQuery, now: datetime
) -> tuple[dict[int, dict[str, Any]], str]:
    """Each group's metric object (groups without samples left out), and the method used."""
    ids, numbers = _ids_and_groups(groups)
    if not ids:
        return {}, "exact"
    start, stop = rollup_days(query.since, query.until, now)
    method = "exact"
    found: dict[int, tuple[Moments, list[float]]] | None = None
    if not query.exact and stop - start >= ROLLUP_MIN_DAYS * DAY:
        # Rollups are kept per day and computed on first use; a lock that cannot be had at
        # once (a late batch being written to one of the days) means raw samples this time.
        await conn.commit()
        if await rollups.ensure(conn, ids, start, stop):
            found = await _from_rollups(conn, groups, query, start, stop)
            method = "sketch"
    if found is None:
        found = await _exact(conn, groups, query)
    group_of = dict(zip(ids, numbers, strict=True))
    ends: dict[int, Ends] = {}
    for series_id, series in (await series_ends(conn, ids, query.since, query.until)).items():
        ends.setdefault(group_of[series_id], Ends()).add(series)
    return {
        number: _metric_json(moments, percentiles, ends.get(number, Ends()))
        for number, (moments, percentiles) in found.items()
    }, method


async def _series(
    conn: AsyncConnection[Any], groups: list[Group], query: StatsQuery
) -> dict[int, list[dict[str, Any]]]:
    ids, numbers = _ids_and_groups(groups)
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        queries.get("stats", "buckets"),
        {
            "ids": ids,
            "groups": numbers,
            "since": query.since,
            "until": query.until,
            "bucket": query.bucket,
        },
    )
    series: dict[int, list[dict[str, Any]]] = {}
    for row in await cursor.fetchall():
        series.setdefault(row["grp"], []).append(
            {
                "time": timestamps.format(row["t"]),
                "count": row["n"],
                "mean": row["mean"],
                "min": row["lo"],
                "max": row["hi"],
                "p95": row["p95"],
            }
        )
    return series


def _window(query: StatsQuery, method: str) -> dict[str, Any]:
    window: dict[str, Any] = {
        "since": timestamps.format(query.since),
        "until": timestamps.format(query.until),
        "percentiles": method,
    }
    if query.bucket is not None:
        window["bucket_seconds"] = int(query.bucket.total_seconds())
    return window


async def _last_samples(
    conn: AsyncConnection[Any], groups: list[Group], versions: set[str]
) -> dict[str, str | None]:
    """The time of the newest sample of each of these versions at any time, or None.

    Asked only for a window without samples, so that the answer can say where the data is.
    """
    names = sorted(versions)
    ids: list[int] = []
    numbers: list[int] = []
    for group in groups:
        if group.version in versions:
            ids.extend(group.ids)
            numbers.extend([names.index(group.version)] * len(group.ids))
    found: dict[str, str | None] = dict.fromkeys(names)
    if ids:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(queries.get("stats", "last_samples"), {"ids": ids, "groups": numbers})
        for row in await cursor.fetchall():
            found[names[row["grp"]]] = timestamps.format(row["newest"])
    return found


async def version_stats(model: str, version: str, query: StatsQuery) -> dict[str, Any]:
    """GET /stats/{model}/{version}."""
    now = timestamps.now()
    async with connection() as conn:
        groups = await _groups(conn, model, version, query)
        summaries, method = await _summaries(conn, groups, query, now)
        result: dict[str, Any] = {"model": model, "version": version, **_window(query, method)}
        result["metrics"] = {
            groups[number].metric: summary for number, summary in summaries.items()
        }
        if query.bucket is not None:
            series = await _series(conn, groups, query)
            result["series"] = {groups[number].metric: points for number, points in series.items()}
        if not result["metrics"]:
            result["last_sample"] = (await _last_samples(conn, groups, {version}))[version]
    return result


def _compare(metric: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    for name in COMPARED:
        value, reference = metric.get(name), base.get(name)
        if value is None or reference is None:
            changes[name] = {"difference": None, "relative_change": None}
            continue
        difference = value - reference
        relative = difference / abs(reference) if reference else None
        changes[name] = {"difference": difference, "relative_change": relative}
    return changes


async def model_stats(model: str, query: StatsQuery) -> dict[str, Any]:
    """GET /stats/{model}: every version side by side, optionally against a baseline."""
    now = timestamps.now()
    async with connection() as conn:
        groups = await _groups(conn, model, None, query)
        if query.baseline is not None and query.baseline not in {g.version for g in groups}:
            raise BadInput("baseline", f"model {model!r} has no version {query.baseline!r}")
        summaries, method = await _summaries(conn, groups, query, now)
        series = await _series(conn, groups, query) if query.bucket is not None else {}
        versions: dict[str, dict[str, Any]] = {}
        for number, group in enumerate(groups):
            entry = versions.setdefault(group.version, {"metrics": {}})
            if number in summaries:
                entry["metrics"][group.metric] = summaries[number]
            if query.bucket is not None:
                entry.setdefault("series", {})
                if number in series:
                    entry["series"][group.metric] = series[number]
        empty = {version for version, entry in versions.items() if not entry["metrics"]}
        if empty:
            for version, moment in (await _last_samples(conn, groups, empty)).items():
                versions[version]["last_sample"] = moment
    if query.baseline is not None:
        base = versions[query.baseline]["metrics"]
        for entry in versions.values():
            for metric, summary in entry["metrics"].items():
                if metric in base:
                    summary["vs_baseline"] = _compare(summary, base[metric])
    result: dict[str, Any] = {"model": model, **_window(query, method)}
    if query.baseline is not None:
        result["baseline"] = query.baseline
    result["versions"] = versions
    return result
