"""Ingest throughput: one ingest process under wrk, beside raw COPY of the same rows.

Two cases: single-report events (3 metrics each) and events of 1,000 reports (3,000 samples).
Every request carries a unique ce-id, so each one is stored; afterwards the rows in PostgreSQL
are counted, so the figures are stored events, not answered requests.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import psycopg

from .common import Context, Row, event_lua, ratio_to_reference, run_wrk

SOURCE = "/bench/ingest"


def _reports(count: int) -> list[dict[str, object]]:
    start = datetime.now(UTC) - timedelta(hours=1)
    return [
        {
            "model": f"model-{i % 50}",
            "version": "v1",
            "time": (start + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z"),
            "metrics": {
                "prediction_accuracy": 0.5 + i % 7 / 100,
                "drift": 0.1,
                "inference_time": 12.5,
            },
            "labels": {"env": "bench"},
        }
        for i in range(count)
    ]


def _counts(url: str) -> tuple[int, int]:
    """Event and sample rows, once requests still in flight when wrk stopped have landed."""
    last: tuple[int, int] | None = None
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(50):
            events = conn.execute("SELECT count(*) FROM ingest_events").fetchone()
            samples = conn.execute("SELECT count(*) FROM samples").fetchone()
            assert events and samples
            current = (int(events[0]), int(samples[0]))
            if current == last:
                return current
            last = current
            time.sleep(0.3)
    raise RuntimeError("row counts did not settle")


def _raw_copy(url: str, events: int, samples_per_event: int, tag: str) -> float:
    """Seconds to COPY `events` dedup rows and their samples, one transaction, binary."""
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        series_id = conn.execute("SELECT min(id) FROM series").fetchone()
        assert series_id and series_id[0] is not None
        sid = int(series_id[0])
        started = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(
                "COPY ingest_events (source, id, received_at, samples) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "text", "timestamptz", "int4"])
                for i in range(events):
                    copy.write_row(("/bench/raw", f"{tag}-{i}", now, samples_per_event))
            with cur.copy(
                "COPY samples (series_id, time, value) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int4", "timestamptz", "float8"])
                moment = now - timedelta(minutes=30)
                for i in range(events * samples_per_event):
                    copy.write_row((sid, moment, i * 0.001))
        conn.commit()
        return time.perf_counter() - started


def _case(
    ctx: Context, url: str, name: str, reports: int, seconds: int, connections: int
) -> list[Row]:
    body = json.dumps({"reports": _reports(reports)} if reports > 1 else _reports(1)[0])
    samples_per_event = reports * 3
    before_events, before_samples = _counts(ctx.database_url)
    lua = event_lua(body, name.split(" ")[0], SOURCE)
    result = run_wrk(url, lua, seconds, connections)
    after_events, after_samples = _counts(ctx.database_url)
    stored = after_events - before_events
    samples = after_samples - before_samples
    assert samples == stored * samples_per_event, "samples do not match stored events"
    copy_seconds = _raw_copy(ctx.database_url, stored, samples_per_event, name)
    rows = [
        Row(
            name,
            "stored events/s",
            stored / result.seconds,
            "events/s",
            f"wrk -c{connections} {seconds}s; {result.non_2xx} non-2xx, {result.errors} errors",
            ratio_to_reference(stored / result.seconds, connections) if reports == 1 else None,
        ),
        Row(name, "stored samples/s", samples / result.seconds, "samples/s"),
        Row(name, "latency p50", result.latency_p50_ms, "ms"),
        Row(name, "latency p99", result.latency_p99_ms, "ms"),
        Row(
            name,
            "raw COPY, same rows",
            stored / copy_seconds,
            "events/s",
            f"{samples / copy_seconds:,.0f} samples/s, one transaction",
        ),
    ]
    return rows


def run(ctx: Context) -> list[Row]:
    url = ctx.start_function("ingest", "functions/ingest/main.py")
    seconds = 5 if ctx.quick else 15
    # Warm up: series rows and the day's partition exist before measuring.
    run_wrk(url, event_lua(json.dumps(_reports(1)[0]), "warm", SOURCE), 2, 4)
    run_wrk(url, event_lua(json.dumps({"reports": _reports(1000)}), "warmbig", SOURCE), 2, 2)
    rows = _case(ctx, url, "single-report events", 1, seconds, 64)
    rows += _case(ctx, url, "1,000-report events", 1000, seconds, 4)
    return rows
