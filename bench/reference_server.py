"""The yardstick: what the first version of modelstats did with an event, nothing more.

    python -m bench.reference_server --port 9000 --database-url postgresql://...

A Starlette app under uvicorn (the first version was FastAPI, i.e. Starlette) takes a binary-mode
CloudEvent holding one flat or nested report, puts it on an in-process queue of 1,000 (when full,
the request waits for room) and answers 202. ONE worker thread takes each report off the queue
and stores what ingest stores (the dedup record and one sample per metric) in ONE transaction
per event, then checks the accuracy threshold in process. Events that
are queued when the process dies are lost: that is part of what the pipeline improves on, not
something this server tries to do.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import threading
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

QUEUE_SIZE = 1000
THRESHOLD = 0.3
log = logging.getLogger("reference")

Pending = tuple[str, str, dict[str, Any]]


def _series_id(
    conn: psycopg.Connection[Any], cache: dict[tuple[str, ...], int], key: tuple[str, ...]
) -> int:
    if key not in cache:
        conn.execute(
            "INSERT INTO series (model, version, metric) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            key,
        )
        row = conn.execute(
            "SELECT id FROM series WHERE model = %s AND version = %s AND metric = %s"
            " AND labels = '{}'",
            key,
        ).fetchone()
        assert row is not None
        cache[key] = int(row[0])
    return cache[key]


def _store(
    conn: psycopg.Connection[Any],
    cache: dict[tuple[str, ...], int],
    days: set[date],
    item: Pending,
) -> None:
    """One event, one transaction: the same rows ingest writes (dedup record and samples)."""
    source, event_id, report = item
    model = str(report.get("model") or report.get("name"))
    version = str(report.get("version"))
    metrics = report.get("metrics") or {
        k: v for k, v in report.items() if k not in ("name", "model", "version", "time", "labels")
    }
    moment = datetime.fromisoformat(report["time"]) if "time" in report else datetime.now(UTC)
    if moment.date() not in days:
        conn.execute("SELECT ensure_sample_partitions(ARRAY[%s::date])", (moment.date(),))
        days.add(moment.date())
    with conn.transaction():
        ids = [_series_id(conn, cache, (model, version, name)) for name in metrics]
        conn.execute(
            "INSERT INTO ingest_events (source, id, received_at, samples)"
            " VALUES (%s, %s, clock_timestamp(), %s)",
            (source, event_id, len(metrics)),
        )
        conn.execute(
            "INSERT INTO samples (series_id, time, value)"
            " SELECT unnest(%s::int[]), %s, unnest(%s::float8[])",
            (ids, moment, list(metrics.values())),
        )
    accuracy = metrics.get("prediction_accuracy")
    if isinstance(accuracy, int | float) and accuracy < THRESHOLD:
        log.warning("ALERT prediction_accuracy lower than %s, %s", THRESHOLD, report)


def _worker(database_url: str, pending: queue.Queue[Pending]) -> None:
    cache: dict[tuple[str, ...], int] = {}
    days: set[date] = set()
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            _store(conn, cache, days, pending.get())


def create_app(database_url: str) -> Starlette:
    pending: queue.Queue[Pending] = queue.Queue(QUEUE_SIZE)
    threading.Thread(target=_worker, args=(database_url, pending), daemon=True).start()

    async def receive(request: Request) -> Response:
        if request.method == "GET":
            return Response("ok")
        headers = request.headers
        try:
            report = json.loads(await request.body())
        except ValueError:
            return Response("data: not JSON", 400)
        if not isinstance(report, dict) or "ce-id" not in headers:
            return Response("not a binary CloudEvent with a report", 400)
        # A full queue makes the request wait for room (a FastAPI sync endpoint blocking on
        # put), so clients are slowed down rather than refused.
        item = (headers.get("ce-source", ""), headers["ce-id"], report)
        await run_in_threadpool(pending.put, item)
        return Response(status_code=202)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["GET", "POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reference_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.database_url),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
