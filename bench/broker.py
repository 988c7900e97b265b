"""End to end through `modelstats run`'s broker: what users get when they post to the ingress.

The whole local stack (the manifests of infra/knative, every function as its container runs it,
the local broker) on the bench's PostgreSQL. wrk posts single-report events (3 metrics, unique
ids) to the ingress; an event counts once ingest has stored it AND alert has evaluated it (its
`alert_events` row, written in the transaction that evaluates it). The rate is evaluated events
/ (last evaluation - load start), so the backlog held in the broker when wrk stops is paid for.

Also: the ingress latency wrk sees (the ingress answers 202 once the event is held), at
saturation and at an offered load the pipeline carries (16 clients pausing between requests),
the broker's
CPU time per delivery (each event is two deliveries: to ingest, and its reply to alert), and how
long a reply loop takes to spend its 255 hops of TTL on a broker alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

from modelstats.local.broker.launch import BrokerConfig
from modelstats.local.stack.ports import free_port

from .common import (
    ROOT,
    Context,
    LocalStack,
    Row,
    database_now,
    event_lua,
    ratio_to_reference,
    run_wrk,
    settled_count,
)
from .ingest import _reports

SOURCE = "/bench/broker"
CONNECTIONS = (16, 64)
# 16 connections pausing 16 ms on average offer about 1,000 events/s: more than the reference
# stores, about half of what the pipeline carries here.
PACED_CONNECTIONS, PACED_PAUSE_MS = 16, 16
_STORED = "SELECT count(*) FROM ingest_events WHERE source = %s AND id LIKE %s"
# ingest replies with id = derived_id(source, id); alert claims (reply source, that id).
_EVALUATED = """
SELECT count(*), extract(epoch FROM max(a.received_at) - %s) * 1000
FROM ingest_events e
JOIN alert_events a ON a.source = '/modelstats/ingest'
  AND a.id = left(encode(sha256(convert_to(e.source || chr(31) || e.id, 'UTF8')), 'hex'), 32)
WHERE e.source = %s AND e.id LIKE %s
"""


def _process_group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in a process group (a broker may fork)."""
    total = 0
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp ... utime(12) stime(13), counted from state = 0.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _throughput(
    ctx: Context, stack: LocalStack, connections: int, seconds: int, pause_ms: int = 0
) -> list[Row]:
    """Saturating load (every connection sends again as soon as it is answered), or with
    `pause_ms` an offered load below what the pipeline carries: the latency a sender sees when
    the broker keeps up, as against the queueing of a saturated pipeline."""
    prefix = f"b{connections}p{pause_ms}"
    body = json.dumps(_reports(1)[0])
    started = database_now(ctx.database_url)
    cpu_before = _process_group_cpu_seconds(stack.broker_pid)
    lua = event_lua(body, prefix, SOURCE, pause_ms)
    result = run_wrk(stack.ingress, lua, seconds, connections)
    # Quiet for longer than the broker's first retry waits: a retried event still counts.
    stored = settled_count(ctx.database_url, _STORED, (SOURCE, prefix + "-%"), quiet_seconds=5)
    evaluated = settled_count(
        ctx.database_url, _EVALUATED, (started, SOURCE, prefix + "-%"), quiet_seconds=5
    )
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        row = conn.execute(_EVALUATED, (started, SOURCE, prefix + "-%")).fetchone()
        letters = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert row is not None and letters is not None
    last_ms = float(row[1] or 0)
    cpu = _process_group_cpu_seconds(stack.broker_pid) - cpu_before
    paced = f", {pause_ms} ms pauses" if pause_ms else ""
    # wrk does not count the requests in flight when it stops: accepted <= stored is normal.
    accepted = result.requests - result.non_2xx
    rate = evaluated / (last_ms / 1000) if last_ms else 0.0
    note = (
        f"wrk -c{connections} {seconds}s{paced}; {stored} stored, {evaluated} evaluated,"
        f" {result.non_2xx} refused, {int(letters[0])} dead letters, {stack.spooled()} spooled"
    )
    if accepted > stored or evaluated < stored:
        note += f"; LOST: {accepted} accepted, {stored} stored, {evaluated} evaluated"
    case = f"broker, {connections} clients" + (f" paused {pause_ms} ms" if pause_ms else "")
    rows = [
        Row(
            case,
            "stored+evaluated events/s",
            rate,
            "events/s",
            note,
            None if pause_ms else ratio_to_reference(rate, connections),
        ),
        Row(case, "ingress latency p50", result.latency_p50_ms, "ms"),
        Row(case, "ingress latency p99", result.latency_p99_ms, "ms"),
    ]
    if evaluated:
        rows.append(
            Row(
                case,
                "broker CPU per delivery",
                cpu * 1000 / (2 * evaluated),
                "ms",
                f"{cpu:.1f} s CPU / {2 * evaluated} deliveries",
            )
        )
    return rows


class _Echo:
    """Answers every CloudEvent with itself: a reply loop that only the TTL ends. The
    dead letter (the broker's last word on the loop) is noted with its arrival time."""

    def __init__(self) -> None:
        self.hops = 0
        self.dead_letter_at: float | None = None
        echo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle and the peer's
            # delayed ACK add 40 ms to every hop, and the loop would measure them.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path.startswith("/dls"):
                    echo.dead_letter_at = time.monotonic()
                    self.send_response(204)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                echo.hops += 1
                self.send_response(200)
                for name, value in self.headers.items():
                    if name.lower().startswith("ce-") or name.lower() == "content-type":
                        self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


_LOOP_MANIFEST = """\
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: modelstats
  annotations:
    eventing.knative.dev/broker.class: MTChannelBasedBroker
spec:
  delivery:
    retry: 0
    deadLetterSink:
      uri: {echo}/dls
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: loop
  namespace: modelstats
spec:
  broker: default
  filter:
    attributes:
      type: bench.loop
  subscriber:
    uri: {echo}/loop
"""


def _ttl_loop(home: Path) -> list[Row]:
    import httpx

    echo = _Echo()
    manifests = home / "loop"
    manifests.mkdir()
    (manifests / "broker.yaml").write_text(_LOOP_MANIFEST.format(echo=echo.url))
    port = free_port()
    argv = BrokerConfig(manifests, home / "loop-spool.jsonl", port=port).command()
    broker = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the loop broker did not start")
            time.sleep(0.1)
        headers = {
            "ce-specversion": "1.0",
            "ce-id": "loop-1",
            "ce-source": "/bench/loop",
            "ce-type": "bench.loop",
            "content-type": "application/json",
        }
        started = time.monotonic()
        httpx.post(f"{base}/modelstats/default", headers=headers, content=b"{}", timeout=10)
        while echo.dead_letter_at is None and time.monotonic() - started < 60:
            time.sleep(0.005)
        if echo.dead_letter_at is None:
            raise RuntimeError(f"the loop did not end within 60 s ({echo.hops} hops)")
        seconds = echo.dead_letter_at - started
    finally:
        broker.terminate()
        broker.wait(15)
        echo.server.shutdown()
    return [
        Row(
            "broker, reply loop",
            "TTL spent",
            seconds * 1000,
            "ms",
            f"{echo.hops} hops, then the dead letter",
        )
    ]


def run(ctx: Context) -> list[Row]:
    seconds = 5 if ctx.quick else 15
    home = Path(tempfile.mkdtemp(prefix="modelstats-bench-broker-"))
    stack = LocalStack(ctx, home)
    rows: list[Row] = []
    try:
        run_wrk(stack.ingress, event_lua(json.dumps(_reports(1)[0]), "warm", SOURCE), 2, 4)
        settled_count(ctx.database_url, _STORED, (SOURCE, "warm-%"))
        for connections in CONNECTIONS:
            rows += _throughput(ctx, stack, connections, seconds)
        rows += _throughput(ctx, stack, PACED_CONNECTIONS, seconds, PACED_PAUSE_MS)
    finally:
        stack.stop()
    rows += _ttl_loop(home)
    return rows
