"""Labels joined to logged predictions: 1 M logged rows, 800,000 labels arriving in events of
1,000 in random order through a real ingest process, then the inference job's tick.

Measured: the tick that profiles the rows (and keeps their predictions for the horizon), the
labels' ingestion, the tick after the last label (every affected window joined and figured
again, and the model's kept predictions put into the id index), a tick with no new labels, a
tick that profiles as many rows again (the model labelled: each kept in the id index), and
the bytes kept per million predictions.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import psycopg

from modelstats.core.columns import Columns
from modelstats.etl import jobs, runner
from modelstats.ingest.inference import BLOCK_TYPES, block_row
from modelstats.ingest.logged import Block, meta_columns

from .common import Context, Row

MODEL = "bench-labels"
START = datetime(2026, 1, 5, tzinfo=UTC)
PER_BLOCK = 1_000
EVENT = 1_000


def _seed(ctx: Context, rows: int, start: datetime = START, prefix: str = "r") -> list[str]:
    """Record blocks of `rows` over two hours from `start` (24 five-minute windows); their
    ids."""
    rng = np.random.default_rng(3)
    ids: list[str] = []
    span = 7200.0 / rows
    with psycopg.connect(ctx.database_url) as conn:
        days = ([start.date()],)
        conn.execute("SELECT ensure_daily_partitions('inference_blocks', %s::date[])", days)
        conn.execute(
            "INSERT INTO inference_models (model) VALUES (%s) ON CONFLICT DO NOTHING", (MODEL,)
        )
        copy_sql = (
            "COPY inference_blocks (model, kind, time_min, time_max, rows, meta, features,"
            " outputs, scores) FROM STDIN (FORMAT BINARY)"
        )
        with conn.cursor().copy(copy_sql) as copy:
            copy.set_types(BLOCK_TYPES)
            for first in range(0, rows, PER_BLOCK):
                block_ids = [f"{prefix}{first + i}" for i in range(PER_BLOCK)]
                ids += block_ids
                times = [start.timestamp() + span * (first + i) for i in range(PER_BLOCK)]
                meta = meta_columns(block_ids, times, ["v1"] * PER_BLOCK, each_a_call=True)
                meta.numeric["latency_ms"] = array("d", [10.0]) * PER_BLOCK
                features = Columns(
                    PER_BLOCK, {"x": array("d", rng.normal(size=PER_BLOCK).tobytes())}
                )
                predicted = (rng.random(PER_BLOCK) > 0.5).astype(float)
                outputs = Columns(PER_BLOCK, {"prediction": array("d", predicted.tobytes())})
                scores = Columns(
                    PER_BLOCK, {"prediction": array("d", rng.random(PER_BLOCK).tobytes())}
                )
                block = Block(MODEL, "record", meta, features, outputs, scores)
                copy.write_row(block_row(block))
    return ids


def _size(ctx: Context, partitioned: str) -> float:
    """The bytes of a partitioned table (with its indexes) or index, over its partitions."""
    with psycopg.connect(ctx.database_url) as conn:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(i.inhrelid)) FROM pg_inherits i"
            " WHERE i.inhparent = %s::regclass",
            (partitioned,),
        ).fetchone()
    return float(row[0] or 0) if row else 0.0


def _post_labels(url: str, ids: list[str]) -> float:
    """Label events of EVENT labels, ids in random order, from 4 threads; seconds taken."""
    rng = random.Random(9)
    chosen = rng.sample(ids, len(ids) * 4 // 5)
    events = [chosen[i : i + EVENT] for i in range(0, len(chosen), EVENT)]
    at = (START + timedelta(hours=2, minutes=30)).isoformat()

    def post(batch: tuple[int, list[str]]) -> None:
        number, labelled = batch
        data = {
            "model": MODEL,
            "labels": [{"id": i, "label": rng_label(i), "time": at} for i in labelled],
        }
        headers = {
            "ce-specversion": "1.0",
            "ce-id": f"labels-{number}",
            "ce-source": "/bench/labels",
            "ce-type": "modelstats.label.reported",
            "content-type": "application/json",
        }
        answer = httpx.post(url, headers=headers, content=json.dumps(data), timeout=60)
        answer.raise_for_status()

    began = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, enumerate(events)))
    return time.perf_counter() - began


def rng_label(row_id: str) -> int:
    return hash(row_id) % 2


def run(ctx: Context) -> list[Row]:
    rows = 200_000 if ctx.quick else 1_000_000
    ctx.work_in_process()
    ids = _seed(ctx, rows)
    job = jobs.parse({"source": "inference"})
    now = START + timedelta(hours=3)
    began = time.perf_counter()
    runner.run(job, now=now)
    profiled = time.perf_counter() - began
    unindexed = _size(ctx, "inference_predictions")
    url = ctx.start_function("ingest", "functions/ingest/main.py")
    posting = _post_labels(url, ids)
    began = time.perf_counter()
    result = runner.run(job, now=now)
    joined = time.perf_counter() - began
    windows = [r for r in result.reports if "label_coverage" in r["metrics"]]
    coverage = statistics.mean(r["metrics"]["label_coverage"] for r in windows)
    idle = []
    for _ in range(10):
        began = time.perf_counter()
        assert runner.run(job, now=now).event() is None
        idle.append((time.perf_counter() - began) * 1000)
    # The model has labels now: the next rows' predictions go into the id index as they are kept.
    later = START + timedelta(hours=3)
    _seed(ctx, rows, later, "s")
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE inference_blocks")
        conn.execute("CHECKPOINT")
    began = time.perf_counter()
    runner.run(job, now=later + timedelta(hours=3))
    labelled = time.perf_counter() - began
    id_index = _size(ctx, "inference_predictions_id")
    labels = rows * 4 // 5
    return [
        Row(
            "labels",
            f"profile {rows:,} rows, keep their predictions",
            profiled,
            "s",
            "one tick, 24 windows; no label yet: not indexed by id",
        ),
        Row(
            "labels",
            f"{labels:,} labels into ingest",
            labels / posting,
            "labels/s",
            f"events of {EVENT}, random order, 4 clients: {posting:.1f} s",
        ),
        Row(
            "labels",
            "tick after the last label: all joined, every window figured",
            joined,
            "s",
            f"{len(windows)} windows replaced, mean label_coverage {coverage:.3f}",
        ),
        Row(
            "labels",
            "tick with no new labels, p50",
            statistics.median(idle),
            "ms",
            f"max {max(idle):.1f} ms over 10 ticks",
        ),
        Row(
            "labels",
            f"profile {rows:,} more rows of the model, now labelled",
            rows / labelled,
            "rows/s",
            f"{labelled:.2f} s: predictions indexed by id as they are kept",
        ),
        Row(
            "labels",
            "predictions kept per million rows",
            unindexed / rows,
            "MB",
            "table and BRIN, for the horizon (a model with no label yet)",
        ),
        Row(
            "labels",
            "id index per million rows",
            id_index / (2 * rows),
            "MB",
            "the hash index on id (a model with labels), for the horizon",
        ),
    ]
