"""Logged inference: what the loggers' traffic costs, through the broker and in the window job.

- Through `modelstats run`'s broker (wrk, 16 clients): KServe V2 one-row request + response
  pairs with 10 features, logger events stored per second, beside the metric events (stored
  and evaluated) per second of the same stack in the same minute; then V2 batches of 100 rows,
  request rows stored per second.
- The window job (in process, on the bench's PostgreSQL): rows x 10 features profiled per
  second, from KServe-shaped blocks (requests and responses of 100 rows, paired), the median
  of three ticks on fresh rows, each after VACUUM ANALYZE and CHECKPOINT; and what a tick that
  finds nothing new costs.
- Storage: bytes per million rows of the raw blocks (the days kept until their windows are
  profiled), for one-row pairs (merged by group commit) and batches of 100.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

from modelstats.core.columns import Columns
from modelstats.etl import jobs, runner
from modelstats.ingest.inference import BLOCK_TYPES, block_row
from modelstats.ingest.logged import Block, meta_columns

from .broker import _EVALUATED
from .broker import SOURCE as METRIC_SOURCE
from .common import (
    THREADS_LUA,
    Context,
    LocalStack,
    Row,
    database_now,
    event_lua,
    run_wrk,
    settled_count,
)
from .ingest import _reports

SOURCE = "/bench/inference"
CLIENTS = 16
FEATURES = 10

LOGGER_LUA = (
    THREADS_LUA
    + """
local counter = 0
local request_body = [==[%(request)s]==]
local response_body = [==[%(response)s]==]
request = function()
  counter = counter + 1
  local call = math.floor((counter + 1) / 2)
  local headers = {}
  headers["ce-specversion"] = "1.0"
  headers["ce-id"] = "%(prefix)s-" .. tid .. "-" .. call
  headers["ce-source"] = "%(source)s"
  headers["ce-inferenceservicename"] = "%(model)s"
  headers["ce-endpoint"] = "default"
  headers["ce-component"] = "predictor"
  headers["content-type"] = "application/json"
  if counter %% 2 == 1 then
    headers["ce-type"] = "org.kubeflow.serving.inference.request"
    return wrk.format("POST", nil, headers, request_body)
  end
  headers["ce-type"] = "org.kubeflow.serving.inference.response"
  return wrk.format("POST", nil, headers, response_body)
end
"""
)

_STORED = """
SELECT count(*), extract(epoch FROM max(received_at) - %s)
FROM ingest_events WHERE source = %s AND id LIKE %s
"""
_ROWS = "SELECT coalesce(sum(rows), 0) FROM inference_blocks WHERE model = %s AND kind = %s"


def _bodies(rows: int) -> tuple[str, str]:
    rng = np.random.default_rng(1)
    data = [round(float(v), 4) for v in rng.normal(size=rows * FEATURES)]
    request = {
        "inputs": [{"name": "x", "shape": [rows, FEATURES], "datatype": "FP64", "data": data}]
    }
    probabilities = [0.3, 0.7] * rows
    response = {
        "model_name": "bench",
        "model_version": "v1",
        "outputs": [{"name": "p", "shape": [rows, 2], "datatype": "FP64", "data": probabilities}],
    }
    return json.dumps(request), json.dumps(response)


def _logger_load(ctx: Context, stack: LocalStack, model: str, rows: int, seconds: int) -> tuple:
    prefix = f"{model}-{rows}"
    request, response = _bodies(rows)
    started = database_now(ctx.database_url)
    lua = LOGGER_LUA % {
        "request": request,
        "response": response,
        "prefix": prefix,
        "source": SOURCE,
        "model": model,
    }
    result = run_wrk(stack.ingress, lua, seconds, CLIENTS)
    stored = settled_count(
        ctx.database_url,
        "SELECT count(*) FROM ingest_events WHERE source = %s AND id LIKE %s",
        (SOURCE, prefix + "-%"),
        quiet_seconds=5,
    )
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        count, elapsed = conn.execute(_STORED, (started, SOURCE, prefix + "-%")).fetchone()
        request_rows = conn.execute(_ROWS, (model, "request")).fetchone()[0]
        letters = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    accepted = result.requests - result.non_2xx
    note = f"wrk -c{CLIENTS} {seconds}s; {stored} events stored, {letters} dead letters"
    if accepted > stored:
        note += f"; LOST: {accepted} accepted, {stored} stored"
    return float(count) / float(elapsed or 1), float(request_rows) / float(elapsed or 1), note


def _metric_load(ctx: Context, stack: LocalStack, seconds: int) -> float:
    prefix = "inference-metrics"
    started = database_now(ctx.database_url)
    run_wrk(
        stack.ingress,
        event_lua(json.dumps(_reports(1)[0]), prefix, METRIC_SOURCE),
        seconds,
        CLIENTS,
    )
    evaluated = settled_count(
        ctx.database_url, _EVALUATED, (started, METRIC_SOURCE, prefix + "-%"), quiet_seconds=5
    )
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        row = conn.execute(_EVALUATED, (started, METRIC_SOURCE, prefix + "-%")).fetchone()
    return evaluated / (float(row[1] or 1) / 1000)


def _seed(ctx: Context, model: str, rows: int, per_block: int, start: datetime) -> None:
    """KServe-shaped blocks straight into the store: requests and responses of `per_block`
    rows, one block per call, spread over 5-minute windows from `start`."""
    rng = np.random.default_rng(5)
    calls = rows // per_block
    spacing = 300.0 / max(1, calls // 5)  # about five windows
    with psycopg.connect(ctx.database_url) as conn:
        days = sorted({(start + timedelta(seconds=spacing * calls)).date(), start.date()})
        conn.execute("SELECT ensure_daily_partitions('inference_blocks', %s::date[])", (days,))
        conn.execute(
            "INSERT INTO inference_models (model) VALUES (%s) ON CONFLICT DO NOTHING", (model,)
        )
        with conn.cursor().copy(
            "COPY inference_blocks (model, kind, time_min, time_max, rows,"
            " meta, features, outputs, scores) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(BLOCK_TYPES)
            for call in range(calls):
                at = (start + timedelta(seconds=spacing * call)).timestamp()
                ids = [f"c{call}:{i}" for i in range(per_block)]
                meta = meta_columns(ids, [at] * per_block, ["v1"] * per_block)
                features = Columns(per_block)
                for j in range(FEATURES):
                    features.numeric[f"x_{j}"] = array("d", rng.normal(j, 1, per_block).tobytes())
                copy.write_row(block_row(Block(model, "request", meta, features=features)))
                answer = meta_columns(ids, [at + 0.02] * per_block, ["v1"] * per_block)
                outputs = Columns(
                    per_block,
                    {"p": array("d", (rng.random(per_block) > 0.5).astype(float).tobytes())},
                )
                scores = Columns(per_block, {"p": array("d", rng.random(per_block).tobytes())})
                copy.write_row(
                    block_row(Block(model, "response", answer, outputs=outputs, scores=scores))
                )


def _storage(ctx: Context, model: str) -> float:
    """Bytes per million rows of the model's raw blocks (requests and responses)."""
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE inference_blocks")
        size, rows = conn.execute(
            "SELECT sum(pg_column_size(b.*)), sum(rows) FILTER (WHERE kind = 'request')"
            " FROM inference_blocks b WHERE model = %s",
            (model,),
        ).fetchone()
    return float(size) / float(rows) * 1e6


def _settle(ctx: Context) -> None:
    """Let the database catch up before a timed tick: the seeding (and the load cases before
    it) leave autovacuum and checkpoint work that would otherwise land on the tick."""
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE inference_blocks")
        conn.execute("CHECKPOINT")


# The window job's rows start here; its ticks run at JOB_NOW, when all their windows are closed.
JOB_START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
JOB_NOW = JOB_START + timedelta(hours=2)


def _ticks(ctx: Context, rows: int, rounds: int, labelled: bool) -> list[tuple[float, float, int]]:
    """`rounds` ticks, each profiling `rows` fresh rows of a new model (the machine's speed
    varies by a fifth from run to run): (rows/s, seconds, rows) each. A `labelled` model has
    a label before its tick, so its predictions are kept in the id index."""
    job = jobs.parse({"source": "inference"})
    rates = []
    for round_ in range(rounds):
        model = f"bench-job-{'labelled-' if labelled else ''}{round_}"
        _seed(ctx, model, rows, 100, JOB_START)
        if labelled:
            with psycopg.connect(ctx.database_url) as conn:
                conn.execute(
                    "INSERT INTO inference_labels (model, id, label, time)"
                    " VALUES (%s, 'no-such-row', '1', %s)",
                    (model, JOB_START),
                )
        _settle(ctx)
        began = time.perf_counter()
        result = runner.run(job, now=JOB_NOW)
        seconds = time.perf_counter() - began
        profiled = sum(
            r["metrics"].get("rows", 0) for r in result.reports if "feature" not in r["labels"]
        )
        rates.append((profiled / seconds, seconds, profiled))
    return rates


def _job(ctx: Context, rows: int, rounds: int = 3) -> list[Row]:
    """The window job's tick on `rows` fresh rows, for a model without labels and one with
    (the median of `rounds` each), then ticks with nothing new."""
    found = []
    for labelled in (False, True):
        rates = _ticks(ctx, rows, rounds, labelled)
        rate, seconds, profiled = sorted(rates)[len(rates) // 2]
        others = ", ".join(f"{r:,.0f}" for r, _, _ in rates)
        found.append(
            Row(
                "inference window job" + (", a model with labels" if labelled else ""),
                f"rows x {FEATURES} features profiled",
                rate,
                "rows/s",
                f"median of {rounds} ticks ({others} rows/s): {int(profiled):,} rows"
                f" (KServe pairs, blocks of 100) in {seconds:.2f} s; predictions kept"
                + (", in the id index" if labelled else ", no label yet: not indexed by id"),
            )
        )
    job = jobs.parse({"source": "inference"})
    idle = []
    for _ in range(20):
        began = time.perf_counter()
        assert runner.run(job, now=JOB_NOW).event() is None
        idle.append((time.perf_counter() - began) * 1000)
    return [
        *found,
        Row(
            "inference window job",
            "tick with nothing new, p50",
            statistics.median(idle),
            "ms",
            f"max {max(idle):.1f} ms over 20 ticks",
        ),
    ]


def run(ctx: Context) -> list[Row]:
    seconds = 5 if ctx.quick else 15
    home = Path(tempfile.mkdtemp(prefix="modelstats-bench-inference-"))
    stack = LocalStack(ctx, home, demo=False)
    rows: list[Row] = []
    try:
        _logger_load(ctx, stack, "bench-warm", 1, 2)
        metric_rate = _metric_load(ctx, stack, seconds)
        pair_rate, _, note = _logger_load(ctx, stack, "bench-pairs", 1, seconds)
        rows.append(
            Row(
                "inference, KServe one-row pairs, 16 clients",
                "logger events stored",
                pair_rate,
                "events/s",
                f"{note}; {pair_rate / metric_rate:.2f}x the metric events"
                f" (stored+evaluated) of the same stack: {metric_rate:,.0f}/s",
            )
        )
        _, batch_rows, note = _logger_load(ctx, stack, "bench-batches", 100, seconds)
        rows.append(
            Row(
                "inference, KServe V2 batches of 100 rows, 16 clients",
                "request rows stored",
                batch_rows,
                "rows/s",
                note,
            )
        )
        rows.append(
            Row(
                "inference storage, one-row pairs",
                "raw blocks per million rows",
                _storage(ctx, "bench-pairs") / 1e6,
                "MB",
                "requests + responses, 10 features",
            )
        )
        rows.append(
            Row(
                "inference storage, batches of 100",
                "raw blocks per million rows",
                _storage(ctx, "bench-batches") / 1e6,
                "MB",
                "requests + responses, 10 features",
            )
        )
    finally:
        stack.stop()
    # The job runs in this process, on the bench's database, with the checkout's monitors.
    ctx.work_in_process()
    rows += _job(ctx, 200_000 if ctx.quick else 1_000_000)
    return rows
