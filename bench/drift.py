"""Drift of one window against its reference, in process (no database): the exact path, and the
sketched one that larger sides take.

- 100,000 rows x 20 features (15 numeric, 5 text) against a 100,000-row reference, the exact
  figures (scipy), every feature drifted or not as planted;
- 10,000,000 rows x 20 numeric features against a reference of as many, from sketches: the
  time to make the window's sketches from its rows, and to compare them with the kept ones.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np

from modelstats.etl.inference.frames import Frame
from modelstats.etl.inference.monitors import Settings
from modelstats.etl.inference.references import Reference, _stored_columns
from modelstats.etl.inference.sketches import ColumnSketch
from modelstats.etl.inference.verdicts import judge

from .common import Context, Row

START = datetime(2026, 1, 5, tzinfo=UTC)


def _columns(rng: np.random.Generator, rows: int, numeric: int, text: int, shift: float):
    columns: dict[str, np.ndarray] = {}
    for j in range(numeric):
        columns[f"x{j}"] = rng.normal(j + (shift if j % 3 == 0 else 0.0), 1.0, rows)
    for j in range(text):
        values = np.array(["a", "b", "c", "d"], dtype=object)
        p = [0.4, 0.3, 0.2, 0.1] if not shift or j % 2 else [0.25, 0.25, 0.25, 0.25]
        columns[f"t{j}"] = values[rng.choice(4, rows, p=p)]
    return columns


def _frame(columns: dict[str, np.ndarray], rows: int) -> Frame:
    return Frame(
        model="bench",
        version="v1",
        start=START,
        end=START + timedelta(minutes=5),
        ids=[""] * rows,
        times=np.zeros(rows),
        features=columns,
        prediction=None,
        score=None,
        latency_ms=np.zeros(0),
        requests=rows,
        responses_missing=0,
    )


def run(ctx: Context) -> list[Row]:
    rng = np.random.default_rng(7)
    rows = 100_000
    reference_columns = _columns(rng, rows, 15, 5, 0.0)
    reference = Reference("bench", "v1", "bench", rows, _stored_columns(reference_columns, rows))
    window = _frame(_columns(rng, rows, 15, 5, 0.5), rows)
    began = time.perf_counter()
    figures, reports = judge(window, reference, Settings(), {})
    exact = time.perf_counter() - began
    drifted = sum(int(r["metrics"]["feature_drifted"]) for r in reports)
    result = [
        Row(
            "drift, exact",
            "100,000 rows x 20 features vs 100,000",
            exact * 1000,
            "ms",
            f"{drifted} of {len(reports)} features drifted (8 planted); drift_share"
            f" {figures.get('drift_share', 0):.2f}",
        )
    ]
    big = 2_000_000 if ctx.quick else 10_000_000
    kept = {}
    for j in range(20):
        kept[f"x{j}"] = ColumnSketch.of(rng.normal(j, 1.0, big))
    sketched = Reference("bench", "v1", "bench", big, None, kept)
    window_columns = {
        f"x{j}": rng.normal(j + (0.5 if j % 3 == 0 else 0.0), 1.0, big) for j in range(20)
    }
    began = time.perf_counter()
    window_sketches = {name: ColumnSketch.of(values) for name, values in window_columns.items()}
    made = time.perf_counter() - began
    began = time.perf_counter()
    from modelstats.etl.inference import sketches

    verdicts = [
        sketches.compare(kept[name], sketch, big) for name, sketch in window_sketches.items()
    ]
    compared = time.perf_counter() - began
    began = time.perf_counter()
    figures, reports = judge(_frame(window_columns, big), sketched, Settings(), {})
    whole = time.perf_counter() - began
    drifted = sum(1 for v in verdicts if v is not None and v.drifted)
    result += [
        Row(
            "drift, from sketches",
            f"{big:,} rows x 20 features: compare kept sketches",
            compared * 1000,
            "ms",
            f"{drifted} of 20 drifted (7 planted)",
        ),
        Row(
            "drift, from sketches",
            f"{big:,} rows x 20 features: make the window's sketches",
            made * 1000,
            "ms",
            "KLL k=1,000 from the window's rows",
        ),
        Row(
            "drift, from sketches",
            f"{big:,} rows x 20 features: the whole verdict",
            whole * 1000,
            "ms",
            f"drift_share {figures.get('drift_share', 0):.2f}",
        ),
    ]
    return result
