"""Stats latency: one stats process over 10M samples (1M with --quick), beside the raw SQL.

The data set is 50 models x 2 versions x 3 metrics over 30 days, written with binary COPY
straight into `samples`, then vacuumed (as autovacuum would have done for closed days). Each
case sends sequential keep-alive requests and reports the client-side p50/p99; the same exact
query runs as raw SQL through psycopg in the same run. The 30-day case reads closed days from
the daily rollups (computed by the first request for each model version: reported as "cold").
Beside them, a monitored model (`fraud`) as the etl's inference job writes it: 30 days of 5-minute
windows, 20 features and the prediction, each judged for drift, with accuracy and coverage
(about 610,000 samples); /drift, /accuracy and /overview are timed over a day and the month.
Ingest-side cost of the stats schema: COPY into an open day (no trigger, as always for live
data) against COPY of late rows into a day sealed by a rollup (the trigger fires per row).
"""

from __future__ import annotations

import json
import random
import struct
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from modelstats.store import queries

from .common import Context, Row, percentile

MODELS, VERSIONS = 50, 2
METRICS = ("prediction_accuracy", "drift", "inference_time")
DAYS = 30
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_ROW = struct.Struct(">hiiiqid")  # 3 fields: int4 series, timestamptz (us), float8 value
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)


def _values(count: int) -> list[list[float]]:
    """A pool of plausible values per metric (cycled through: generating 10M is slow)."""
    rng = random.Random(42)
    return [
        [rng.betavariate(8, 2) for _ in range(count)],
        [rng.expovariate(10) for _ in range(count)],
        [rng.lognormvariate(2.5, 0.3) for _ in range(count)],
    ]


def _copy(conn: psycopg.Connection[Any], rows: Any) -> None:
    with conn.cursor().copy(queries.get("store", "copy_samples")) as copy:
        copy.write(_HEADER)
        chunk: list[bytes] = []
        for series_id, micros, value in rows:
            chunk.append(_ROW.pack(3, 4, series_id, 8, micros, 8, value))
            if len(chunk) >= 50_000:
                copy.write(b"".join(chunk))
                chunk.clear()
        copy.write(b"".join(chunk))
        copy.write(_TRAILER)


def load(url: str, total: int, end: datetime) -> tuple[list[int], float]:
    """Series and `total` samples over DAYS days up to `end`, time-major as ingest writes them."""
    started = time.perf_counter()
    keys = [
        (f"model-{m:02d}", f"v{v + 1}", metric)
        for m in range(MODELS)
        for v in range(VERSIONS)
        for metric in METRICS
    ]
    start = end - timedelta(days=DAYS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            queries.get("store", "upsert_series"),
            ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], ["{}"] * len(keys)),
        )
        ids = [
            row[0]
            for row in conn.execute(
                queries.get("store", "select_series"),
                (
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [k[2] for k in keys],
                    ["{}"] * len(keys),
                ),
            )
        ]
        days = [(start + timedelta(days=i)).date() for i in range(DAYS + 2)]
        conn.execute(queries.get("store", "ensure_partitions"), (days,))
        pool = _values(99_991)
        base = int((start - _EPOCH).total_seconds() * 1_000_000)
        step = DAYS * 86_400 * 1_000_000 / total
        n_series = len(ids)

        def rows() -> Any:
            for i in range(total):
                which = i % n_series
                yield ids[which], base + int(i * step), pool[which % 3][i % 99_991]

        _copy(conn, rows())
        conn.execute("VACUUM ANALYZE samples")
    return ids, time.perf_counter() - started


INFERENCE = {"source": "inference"}
FEATURES = [f"f{i:02d}" for i in range(20)]
WINDOW = timedelta(minutes=5)
BINARY = ("feature_drifted", "dataset_drift", "drift_rows_short")
WINDOW_METRICS = (
    "requests",
    "rows",
    "drift_rows_short",
    "drift_share",
    "dataset_drift",
    "label_coverage",
    "prediction_accuracy",
)


def _inference_keys() -> list[tuple[str, str]]:
    """(metric, labels as JSON) of each series the monitored model has."""
    keys = [(metric, json.dumps(INFERENCE)) for metric in WINDOW_METRICS]
    for feature in [*FEATURES, "prediction"]:
        labels = json.dumps({**INFERENCE, "feature": feature, "method": "ks"})
        keys += [("feature_drift", labels), ("feature_drifted", labels)]
        keys.append(("feature_mean", json.dumps({**INFERENCE, "feature": feature})))
    return keys


def load_inference(url: str, end: datetime) -> int:
    """The monitored model's samples over DAYS days up to `end`; how many."""
    keys = _inference_keys()
    with psycopg.connect(url, autocommit=True) as conn:
        columns = (["fraud"] * len(keys), ["v1"] * len(keys), [k[0] for k in keys])
        labels = [k[1] for k in keys]
        conn.execute(queries.get("store", "upsert_series"), (*columns, labels))
        found = conn.execute(queries.get("store", "select_series"), (*columns, labels))
        ids = {(row[3], json.dumps(row[4])): row[0] for row in found}
        windows = int(timedelta(days=DAYS) / WINDOW)
        start = end - windows * WINDOW
        rng = random.Random(7)

        def rows() -> Any:
            for window in range(windows):
                micros = int((start + window * WINDOW - _EPOCH).total_seconds() * 1_000_000)
                for (metric, _), series in ids.items():
                    value = rng.random()
                    yield series, micros, float(value < 0.1) if metric in BINARY else value

        _copy(conn, rows())
        conn.execute("VACUUM ANALYZE samples")
    return windows * len(keys)


def _latencies(client: httpx.Client, urls: list[str]) -> list[float]:
    found = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        found.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
    return found


def _sql_latencies(url: str, ids: list[list[int]], since: timedelta, runs: int) -> list[float]:
    """The exact summary statement, as the stats function runs it, straight through psycopg."""
    found = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(runs):
            series = ids[i % len(ids)]
            until = datetime.now(UTC)
            params = {
                "ids": series,
                "groups": list(range(len(series))),
                "since": until - since,
                "until": until,
                "fractions": [0.5, 0.9, 0.95, 0.99],
            }
            started = time.perf_counter()
            conn.execute(queries.get("stats", "exact_summary"), params).fetchall()
            conn.execute(queries.get("stats", "ends"), params).fetchall()
            found.append((time.perf_counter() - started) * 1000)
    return found


def _rows(case: str, values: list[float], note: str = "") -> list[Row]:
    return [
        Row(case, "p50", percentile(values, 50), "ms", note),
        Row(case, "p99", percentile(values, 99), "ms", f"{len(values)} sequential requests"),
    ]


def _ingest_cost(url: str, ids: list[int], end: datetime, count: int) -> list[Row]:
    """COPY rate into an open day (live data) and into a sealed day (late data)."""
    sealed_day = end - timedelta(days=DAYS // 2)
    rows = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(queries.get("store", "ensure_partitions"), ([end.date()],))
        for case, moment in (("open day", end), ("sealed day (late rows)", sealed_day)):
            micros = int((moment - _EPOCH).total_seconds() * 1_000_000)
            started = time.perf_counter()
            with conn.transaction():
                _copy(conn, ((ids[i % len(ids)], micros + i, 1.0) for i in range(count)))
            rate = count / (time.perf_counter() - started)
            rows.append(Row(f"ingest COPY into {case}", "rows/s", rate, "rows/s", f"{count} rows"))
    return rows


def run(ctx: Context) -> list[Row]:
    total = 1_000_000 if ctx.quick else 10_000_000
    requests = 100 if ctx.quick else 200
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    ids, load_seconds = load(ctx.database_url, total, end)
    per_version = [ids[i : i + len(METRICS)] for i in range(0, len(ids), len(METRICS))]
    names = [(f"model-{m:02d}", f"v{v + 1}") for m in range(MODELS) for v in range(VERSIONS)]
    out = [
        Row("stats data set", "samples", total, "rows", "50 models x 2 versions x 3 metrics, 30d"),
        Row("stats data set", "load", load_seconds, "s", "binary COPY + VACUUM ANALYZE"),
    ]
    base = ctx.start_function("stats", "functions/stats/main.py")
    with httpx.Client(base_url=base, timeout=60) as client:
        cold = _latencies(client, [f"/stats/{m}/{v}?since=30d" for m, v in names])
        out.append(
            Row(
                "30d window, first request per version",
                "p50",
                percentile(cold, 50),
                "ms",
                "computes that version's daily rollups",
            )
        )
        day = [f"/stats/{m}/{v}" for m, v in names] * (requests // len(names) + 1)
        month = [f"/stats/{m}/{v}?since=30d" for m, v in names] * (requests // len(names) + 1)
        _latencies(client, day[:20])  # warm the connection pool
        out += _rows("1d window, HTTP", _latencies(client, day[:requests]), "exact percentiles")
        out += _rows(
            "1d window, raw SQL",
            _sql_latencies(ctx.database_url, per_version, timedelta(days=1), requests),
        )
        out += _rows(
            "30d window, HTTP", _latencies(client, month[:requests]), "rollups + sketch percentiles"
        )
        exact = [u + "&exact=true" for u in month[: requests // 4]]
        out += _rows("30d window exact=true, HTTP", _latencies(client, exact), "raw samples")
        out += _rows(
            "30d window, raw SQL (exact)",
            _sql_latencies(ctx.database_url, per_version, timedelta(days=DAYS), requests // 4),
        )
        out += _inference_cases(ctx, client, end, requests // 4)
    out += _ingest_cost(ctx.database_url, ids, end, 50_000 if ctx.quick else 200_000)
    return out


def _inference_cases(ctx: Context, client: httpx.Client, end: datetime, runs: int) -> list[Row]:
    count = load_inference(ctx.database_url, end)
    out = [Row("stats: a monitored model", "samples", count, "rows", "30d, 20 features")]
    cases = [
        ("/overview", "every model version, last day", "/overview"),
        ("/drift, 1 day", "288 cells x 21 columns", "/drift/fraud/v1"),
        ("/drift, 30 days", "cells of 29 windows", "/drift/fraud/v1?since=30d"),
        ("/accuracy, 30 days", "cells of 29 windows", "/accuracy/fraud/v1?since=30d"),
    ]
    for case, note, url in cases:
        out += _rows(f"stats {case}, HTTP", _latencies(client, [url] * runs), note)
    return out
