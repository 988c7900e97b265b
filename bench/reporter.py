"""The sending side: a model server reporting through `modelstats.client.Reporter`.

`modelstats run` on the bench's PostgreSQL (the demo off); THREADS threads call report() as
fast as they can, each report holding the same 3 metrics as the other cases, and one Reporter
batches them into events for the broker. The rate is samples stored / (the last event's
arrival in ingest - the first report), counted in PostgreSQL (ingest's `ingest_events`, written
in the transaction that stores the samples), so what the broker still holds when the threads
finish is paid for. Also: what one report() call costs the calling thread.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

from modelstats.client import Reporter

from .common import Context, LocalStack, Row, database_now, ratio_to_reference, settled_count

THREADS = 4
METRICS = {"prediction_accuracy": 0.5, "drift": 0.1, "inference_time": 12.5}
# The reference row counts single-report events: one of its events is one report here.
REFERENCE_CONNECTIONS = 16
_STORED = "SELECT coalesce(sum(samples), 0) FROM ingest_events WHERE source = %s"
_LAST = "SELECT count(*), extract(epoch FROM max(received_at) - %s) FROM ingest_events"


def _report_all(reporter: Reporter, per_thread: int) -> float:
    """Every thread's reports; returns the mean seconds one report() call took."""
    spent: list[float] = []

    def work(thread: int) -> None:
        started = time.perf_counter()
        for i in range(per_thread):
            labels = {"env": "bench", "thread": str(thread)}
            reporter.report(f"model-{i % 50}", "v1", METRICS, labels=labels)
        spent.append(time.perf_counter() - started)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(spent) / (THREADS * per_thread)


def run(ctx: Context) -> list[Row]:
    reports = 20_000 if ctx.quick else 100_000
    per_thread = reports // THREADS
    samples = THREADS * per_thread * len(METRICS)
    home = Path(tempfile.mkdtemp(prefix="modelstats-bench-reporter-"))
    stack = LocalStack(ctx, home, demo=False)
    source = f"/bench/reporter/{uuid.uuid4().hex[:8]}"
    try:
        with Reporter(stack.ingress, source=source + "-warm") as warm:
            _report_all(warm, 500)
        reporter = Reporter(stack.ingress, source=source, max_buffered=reports)
        started = database_now(ctx.database_url)
        per_call = _report_all(reporter, per_thread)
        reporter.close(timeout=300)
        stored = settled_count(ctx.database_url, _STORED, (source,), quiet_seconds=3)
        with psycopg.connect(ctx.database_url, autocommit=True) as conn:
            row = conn.execute(_LAST + " WHERE source = %s", (started, source)).fetchone()
        assert row is not None
        events, seconds = int(row[0]), float(row[1] or 0)
    finally:
        stack.stop()
    counters = reporter.counters
    rate = stored / seconds if seconds else 0.0
    note = (
        f"{THREADS} threads, {THREADS * per_thread} reports x {len(METRICS)} metrics in"
        f" {events} events; {stored} of {samples} samples stored, {counters.dropped} dropped,"
        f" {counters.failed} failed, {counters.retries} retries. vs reference: reports/s"
        f" (samples/s / {len(METRICS)}) / its events/s at {REFERENCE_CONNECTIONS} connections"
    )
    if stored != samples:
        note += f"; LOST: {samples - stored} samples"
    case = "reporter -> broker -> ingest"
    return [
        Row(
            case,
            "stored samples/s",
            rate,
            "samples/s",
            note,
            ratio_to_reference(rate / len(METRICS), REFERENCE_CONNECTIONS),
        ),
        Row(
            case,
            "report() call, mean",
            per_call * 1e6,
            "us",
            f"wall time in the calling thread, {THREADS} threads at once (one GIL)",
        ),
    ]
