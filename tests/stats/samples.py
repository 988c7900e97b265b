"""Helpers of the stats tests: known samples written straight into the store, the function's
test client, and reference implementations of the aggregates (no tests here)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from starlette.testclient import TestClient

from tests.clients import function_client

ROOT = Path(__file__).resolve().parents[2]
SOURCE = str(ROOT / "functions" / "stats" / "main.py")

Sample = tuple[str, str, str, dict[str, str], datetime, float]  # model, version, metric, labels


def add_samples(url: str, samples: Iterable[Sample]) -> None:
    """Store samples as ingest would (series rows, daily partitions), in one transaction."""
    rows = list(samples)
    with psycopg.connect(url) as conn:
        days = sorted({row[4].astimezone(UTC).date() for row in rows})
        conn.execute("SELECT ensure_sample_partitions(%s::date[])", (days,))
        ids: dict[tuple[str, str, str, str], int] = {}
        for model, version, metric, labels, _, _ in rows:
            key = (model, version, metric, json.dumps(labels, sort_keys=True))
            if key in ids:
                continue
            conn.execute(
                "INSERT INTO series (model, version, metric, labels) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                key,
            )
            found = conn.execute(
                "SELECT id FROM series WHERE model = %s AND version = %s AND metric = %s"
                " AND labels = %s::jsonb",
                key,
            ).fetchone()
            assert found is not None
            ids[key] = found[0]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO samples (series_id, time, value) VALUES (%s, %s, %s)",
                [
                    (ids[(m, v, k, json.dumps(lab, sort_keys=True))], t, x)
                    for m, v, k, lab, t, x in rows
                ],
            )


@contextmanager
def client() -> Iterator[TestClient]:
    with function_client("stats", SOURCE) as test_client:
        yield test_client


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont, for checking answers."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    if below + 1 >= len(ordered):
        return ordered[below]
    return ordered[below] + (position - below) * (ordered[below + 1] - ordered[below])


def expected(values: list[float]) -> dict[str, Any]:
    n = len(values)
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else None
    return {
        "count": n,
        "mean": mean,
        "min": min(values),
        "max": max(values),
        "stddev": math.sqrt(variance) if variance is not None else None,
        "p50": percentile_cont(values, 0.5),
        "p90": percentile_cont(values, 0.9),
        "p95": percentile_cont(values, 0.95),
        "p99": percentile_cont(values, 0.99),
    }


def assert_close(actual: dict[str, Any], wanted: dict[str, Any], rel: float = 1e-9) -> None:
    for key, value in wanted.items():
        got = actual[key]
        if value is None or isinstance(value, str):
            assert got == value, key
        else:
            assert math.isclose(got, value, rel_tol=rel, abs_tol=1e-12), (key, got, value)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hours_ago(hours: float, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(hours=hours)
