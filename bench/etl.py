"""ETL: JSONL records processed per second, in-process and through the function, and tick latency.

Cases:
- backlog: a log whose windows are all closed, read in one run (parse, group, figures, PSI);
- live: the same volume inside one open window: the first run keeps the records pending in
  PostgreSQL, a later run (the window closed) takes them back and reports;
- function: ticks POSTed to a real functions-framework process, one at a time: a synthetic
  tick, an idle JSONL tick (nothing new), and a JSONL tick that reads 10,000 new records.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from modelstats.core import contract, settings, timestamps
from modelstats.etl import jobs, runner, windows
from modelstats.store import db

from .common import Context, Row

MODELS = [f"model-{i}" for i in range(10)]
PINGSOURCE = "/apis/v1/namespaces/bench/pingsources/etl"


def _write(path: Path, count: int, start: Any, spread_s: float, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("a") as handle:
        for i in range(count):
            moment = start + timedelta(seconds=spread_s * i / count)
            line = {
                "model": MODELS[i % len(MODELS)],
                "version": "v1",
                "time": timestamps.format(moment),
                "prediction": rng.randrange(3),
                "label": rng.randrange(3),
                "latency_ms": round(rng.lognormvariate(3, 0.5), 3),
                "score": rng.random(),
            }
            handle.write(json.dumps(line) + "\n")


def _job(path: Path, **fields: Any) -> jobs.Job:
    return jobs.parse({"source": "jsonl", "path": str(path), "max_bytes": 1 << 30, **fields})


def _in_process(tmp: Path, count: int) -> list[Row]:
    rows = []
    now = timestamps.now()
    hour = windows.start_of(now, timedelta(hours=1))
    backlog = tmp / "backlog.jsonl"
    _write(backlog, count, hour - timedelta(hours=2), 3600, seed=1)
    started = time.perf_counter()
    outcome = runner.run(_job(backlog, lateness="0s"))
    seconds = time.perf_counter() - started
    note = f"{count:,} records, 60 windows x 10 models -> {len(outcome.reports)} reports"
    rows.append(Row("etl backlog, one run", "records/s", count / seconds, "rec/s", note))

    live = tmp / "live.jsonl"
    _write(live, count, hour, 1, seed=2)  # all inside the current hour
    job = _job(live, window="1h", lateness="0s")
    started = time.perf_counter()
    opened = runner.run(job, now=hour + timedelta(seconds=2))
    keep_s = time.perf_counter() - started
    assert opened.event() is None
    started = time.perf_counter()
    closed = runner.run(job, now=hour + timedelta(hours=1))
    close_s = time.perf_counter() - started
    assert sum(r["metrics"]["requests"] for r in closed.reports) == count
    rows.append(Row("etl live: window open", "records/s", count / keep_s, "rec/s", "to pending"))
    rows.append(
        Row("etl live: window closes", "records/s", count / close_s, "rec/s", "from pending")
    )
    return rows


def _tick(client: httpx.Client, url: str, job: dict[str, Any]) -> tuple[float, int]:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-source": PINGSOURCE,
        "ce-type": contract.PING,
        "ce-time": timestamps.format(timestamps.now()),
        "content-type": "application/json",
    }
    started = time.perf_counter()
    response = client.post(url, headers=headers, content=json.dumps(job), timeout=60)
    return (time.perf_counter() - started) * 1000, response.status_code


def _function(ctx: Context, tmp: Path, ticks: int) -> list[Row]:
    url = ctx.start_function("etl", "functions/etl/main.py", {"ETL_ROOT": str(tmp)})
    rows = []
    with httpx.Client() as client:  # one client: its setup is not the function's latency
        synthetic = [_tick(client, url, {"source": "synthetic"}) for _ in range(ticks)]
        assert all(status == 200 for _, status in synthetic)
        median = statistics.median(ms for ms, _ in synthetic)
        rows.append(Row("etl function: synthetic tick", "latency p50", median, "ms", "3 reports"))

        idle_log = tmp / "idle.jsonl"
        idle_log.touch()
        idle_job = {"source": "jsonl", "path": str(idle_log)}
        idle = [_tick(client, url, idle_job) for _ in range(ticks)]
        assert all(status == 204 for _, status in idle)
        median = statistics.median(ms for ms, _ in idle)
        rows.append(Row("etl function: idle jsonl tick", "latency p50", median, "ms", "204"))

        log = tmp / "function.jsonl"
        start = windows.start_of(timestamps.now(), timedelta(minutes=1)) - timedelta(minutes=20)
        _write(log, 10_000, start, 600, seed=3)
        job = {"source": "jsonl", "path": str(log), "window": "1m", "lateness": "0s"}
        ms, status = _tick(client, url, job)
        assert status == 200
    note = f"10,000 new records in one tick ({ms:,.0f} ms)"
    rows.append(Row("etl function: jsonl tick", "records/s", 10_000 / (ms / 1000), "rec/s", note))
    return rows


def run(ctx: Context) -> list[Row]:
    os.environ["DATABASE_URL"] = ctx.database_url
    tmp = Path(tempfile.mkdtemp(prefix="modelstats-bench-etl-"))
    os.environ["ETL_ROOT"] = str(tmp)  # jobs read only under it, as in the function
    settings.forget()  # read again from the environment the function process gets too
    try:
        rows = _in_process(tmp, 20_000 if ctx.quick else 200_000)
        rows += _function(ctx, tmp, 10 if ctx.quick else 50)
    finally:
        db.close_pools()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows
