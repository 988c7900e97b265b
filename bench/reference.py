"""The yardstick every throughput row is divided by: the first version's one commit per event.

`bench/reference_server.py` (POST -> in-process queue -> one worker thread -> INSERT + COMMIT)
runs on the bench's PostgreSQL under the same wrk load as the broker case: single-report
events, 16 and then 64 connections. Its rate is rows stored / (last row's commit - load start),
so events still queued when wrk stops count only once they are in the table.
"""

from __future__ import annotations

import json
import subprocess
import sys

from modelstats.local.stack.ports import free_port

from .common import (
    REFERENCE_RATES,
    ROOT,
    Context,
    Row,
    database_now,
    event_lua,
    run_wrk,
    settled_count,
)
from .ingest import _reports

SOURCE = "/bench/reference"
CONNECTIONS = (16, 64)


def _rate(ctx: Context, url: str, connections: int, seconds: int) -> tuple[float, str]:
    body = json.dumps(_reports(1)[0])
    prefix = f"ref{connections}"
    started = database_now(ctx.database_url)
    result = run_wrk(url, event_lua(body, prefix, SOURCE), seconds, connections)
    where = "FROM ingest_events WHERE source = %s AND id LIKE %s"
    stored = settled_count(ctx.database_url, f"SELECT count(*) {where}", (SOURCE, prefix + "-%"))
    last = settled_count(
        ctx.database_url,
        f"SELECT extract(epoch FROM max(received_at) - %s) * 1000 {where}",
        (started, SOURCE, prefix + "-%"),
    )
    accepted = result.requests - result.non_2xx
    note = f"wrk -c{connections} {seconds}s; {stored} stored, {result.non_2xx} refused (503)"
    if stored < accepted:
        note += f"; {accepted - stored} accepted but not stored"
    return stored / (last / 1000), note


def run(ctx: Context) -> list[Row]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.reference_server",
            "--port",
            str(port),
            "--database-url",
            ctx.database_url,
        ],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        from tests.functions import wait_until_healthy

        wait_until_healthy(url.rstrip("/"), server)
        seconds = 5 if ctx.quick else 15
        run_wrk(url, event_lua(json.dumps(_reports(1)[0]), "warm", SOURCE), 2, 4)
        rows = []
        for connections in CONNECTIONS:
            rate, note = _rate(ctx, url, connections, seconds)
            REFERENCE_RATES[connections] = rate
            rows.append(
                Row(f"reference, {connections} clients", "stored events/s", rate, "events/s", note)
            )
        return rows
    finally:
        server.terminate()
        server.wait(10)
