"""labels.keep_predictions: what a profiled frame leaves for its labels, read back as stored
(numbers as JSON writes them, missing values as NULL, times to the microsecond)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from psycopg.rows import dict_row

from modelstats.etl.inference import labels
from modelstats.etl.inference.frames import Frame, objects

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def frame(version: str, ids: list[str], prediction: np.ndarray | None, score=None) -> Frame:
    times = np.array(
        [(START + timedelta(seconds=1.25 + i, microseconds=7)).timestamp() for i in range(len(ids))]
    )
    return Frame(
        model="fraud",
        version=version,
        start=START,
        end=START + timedelta(minutes=5),
        ids=ids,
        times=times,
        features={},
        prediction=prediction,
        score=score,
        latency_ms=np.zeros(0),
        requests=len(ids),
        responses_missing=0,
    )


def test_each_row_is_kept_with_its_prediction_score_and_time(clean_db: str):
    frames = [
        frame(
            "v1",
            ["a", "b", "c", "d"],
            np.array([1.0, 0.0, np.nan, 2.5]),
            np.array([0.9, np.nan, 0.2, 0.5]),
        ),
        frame("v2", ["é:0", "日本:1"], objects(["cat", None])),
        frame("v3", ["lost"], None),
        frame("v4", [], np.zeros(0)),
    ]
    with psycopg.connect(clean_db) as conn:
        labels.keep_predictions(conn, frames, indexed=True)
        conn.commit()
        with conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(
                "SELECT model, id, version, window_start, time, prediction, value, score, indexed"
                " FROM inference_predictions ORDER BY version, time"
            ).fetchall()
    second = timedelta(seconds=1)
    at = [START + timedelta(seconds=1.25, microseconds=7) + i * second for i in range(4)]
    assert [(r["version"], r["id"], r["prediction"], r["value"], r["score"]) for r in rows] == [
        ("v1", "a", "1", 1.0, 0.9),
        ("v1", "b", "0", 0.0, None),
        ("v1", "c", None, None, 0.2),
        ("v1", "d", "2.5", 2.5, 0.5),
        ("v2", "é:0", "cat", None, None),
        ("v2", "日本:1", None, None, None),
        ("v3", "lost", None, None, None),
    ]
    assert [r["time"] for r in rows] == at[:4] + at[:2] + at[:1]
    assert {r["model"] for r in rows} == {"fraud"}
    assert {r["window_start"] for r in rows} == {START}
    assert {r["indexed"] for r in rows} == {True}
