"""Labels joined to predictions: each window's accuracy (or errors), figured again as labels come.

Every profiled row's prediction is kept for the label horizon (`inference_predictions`),
indexed by id once its model has a label (`mark_labelled`: the index is most of the cost of
keeping them, and many models never get labels). On each run, for each model, the windows to
figure are those just profiled and those holding a row whose label is new since the last run
(within the horizon). Their rows are read with their labels, and the figures (accuracy.py) go
out as reports with `replace: true`, so the stored sample of each (series, window) is the
latest one: a late label moves the window's figure, and the alert rules see the new value. Per
window (labels `source=inference`):
`label_coverage` (the share of the window's rows that have a label) and `label_delay_p50`
(seconds from a row to its label, the median), then the task's figures (accuracy.py).
Labels older than the horizon go: those that never found their row are counted first, as
`labels_unmatched` (at the run's time, version `default`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from modelstats.core import timestamps
from modelstats.etl.inference import accuracy
from modelstats.etl.inference.frames import Frame, as_text, is_text
from modelstats.etl.inference.monitors import Monitors, Settings
from modelstats.etl.inference.profiles import SOURCE_LABEL
from modelstats.store import binary_copy, queries

Connection = psycopg.Connection[Any]


def _q(name: str) -> Any:
    return queries.get("inference", name)


def _prediction_fields(frame: Frame, indexed: bool) -> list[binary_copy.Field]:
    """A frame's rows as copy_predictions' columns: model, id, version, window_start, time,
    prediction, value, score, indexed."""
    rows = frame.rows
    missing = np.full(rows, np.nan)
    if frame.prediction is None:
        prediction: binary_copy.Text = binary_copy.Text([None] * rows)
        value = missing
    else:
        prediction = binary_copy.Text(as_text(frame.prediction))
        value = missing if is_text(frame.prediction) else frame.prediction.astype(np.float64)
    return [
        binary_copy.Text(frame.model),
        binary_copy.Text(frame.ids),
        binary_copy.Text(frame.version),
        binary_copy.Timestamptz(frame.start.timestamp()),
        binary_copy.Timestamptz(frame.times),
        prediction,
        binary_copy.Float8(value),
        binary_copy.Float8(missing if frame.score is None else frame.score),
        binary_copy.Bool(indexed),
    ]


def mark_labelled(conn: Connection) -> list[str]:
    """Mark the models that got their first label since the last run: their predictions are
    indexed by id from now on, those kept already included (once). The models marked."""
    with conn.cursor() as cursor:
        marked = [model for (model,) in cursor.execute(_q("mark_labelled")).fetchall()]
        for model in marked:
            cursor.execute(_q("index_predictions"), (model,))
    return marked


def keep_predictions(conn: Connection, frames: list[Frame], indexed: bool) -> None:
    """Keep the frames' rows (id, time, prediction, score) for the label horizon; `indexed`
    (the model has labels): in the id index that labels find their rows by."""
    if not frames:
        return
    days = sorted({frame.start.date() for frame in frames})
    conn.execute(_q("ensure_prediction_partitions"), (days,))
    # Built column by column (store/binary_copy.py): per row, through write_row, the Python
    # took as long as the server's insert.
    with conn.cursor().copy(_q("copy_predictions")) as copy:
        copy.write(binary_copy.SIGNATURE)
        for frame in frames:
            if frame.rows:
                copy.write(binary_copy.rows(frame.rows, _prediction_fields(frame, indexed)))
        copy.write(binary_copy.TRAILER)


@dataclass(frozen=True)
class Window:
    version: str
    start: datetime


def changed_windows(conn: Connection, model: str, after_seq: int, since: datetime) -> set[Window]:
    """Windows (from `since` on) holding a row whose label is newer than `after_seq`."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            _q("labelled_windows"), {"model": model, "after": after_seq, "since": since}
        ).fetchall()
    return {Window(row["version"], row["window_start"]) for row in rows}


def _report(
    model: str, window: Window, metrics: dict[str, float], labels: dict[str, str]
) -> dict[str, Any]:
    return {
        "model": model,
        "version": window.version,
        "time": timestamps.format(window.start),
        "metrics": metrics,
        "labels": {**labels, **SOURCE_LABEL},
        "replace": True,
    }


def figure(
    model: str,
    window: Window,
    total: int,
    labelled: list[dict[str, Any]],
    settings: Settings,
    labels: dict[str, str],
) -> list[dict[str, Any]]:
    """The reports of one window's label figures: of its `total` rows, those `labelled`
    (joined with their labels)."""
    coverage = {"label_coverage": len(labelled) / total}
    if labelled:
        delays = [(row["label_time"] - row["time"]).total_seconds() for row in labelled]
        coverage["label_delay_p50"] = float(np.median(delays))
    joined = [row for row in labelled if row["prediction"] is not None]
    reports = []
    if not joined:
        return [_report(model, window, coverage, labels)]
    numbers = np.array([np.nan if r["value"] is None else r["value"] for r in joined])
    text = any(row["value"] is None for row in joined)
    if accuracy.is_classification(settings.task, numbers, text):
        truth = np.array([row["label"] for row in joined], dtype=object)
        predicted = np.array([row["prediction"] for row in joined], dtype=object)
        scores = np.array([np.nan if r["score"] is None else r["score"] for r in joined])
        plain, macro, per_class = accuracy.classification(truth, predicted, scores)
        reports.append(_report(model, window, {**coverage, **plain}, labels))
        reports.append(_report(model, window, macro, {**labels, "average": "macro"}))
        for label, recall in per_class.items():
            reports.append(_report(model, window, {"recall": recall}, {**labels, "class": label}))
        return reports
    truths = np.array([np.nan if r["label_value"] is None else r["label_value"] for r in joined])
    numeric = ~np.isnan(truths) & ~np.isnan(numbers)
    if numeric.any():
        coverage.update(accuracy.regression(truths[numeric], numbers[numeric]))
    return [_report(model, window, coverage, labels)]


def _params(model: str, windows: list[Window]) -> dict[str, Any]:
    return {
        "model": model,
        "versions": [w.version for w in windows],
        "starts": [w.start for w in windows],
    }


def window_reports(
    conn: Connection,
    model: str,
    windows: set[Window],
    settings: Settings,
    labels: dict[str, str],
    sizes: dict[Window, int],
) -> list[dict[str, Any]]:
    """The label figures of `windows`. `sizes` holds the row counts known already (of the
    windows just profiled: counting them again would read every row kept)."""
    if not windows:
        return []
    ordered = sorted(windows, key=lambda w: (w.start, w.version))
    unsized = [w for w in ordered if w not in sizes]
    grouped: dict[Window, list[dict[str, Any]]] = {w: [] for w in ordered}
    with conn.cursor(row_factory=dict_row) as cursor:
        totals = dict(sizes)
        if unsized:
            for row in cursor.execute(_q("window_sizes"), _params(model, unsized)):
                totals[Window(row["version"], row["window_start"])] = int(row["total"])
        for row in cursor.execute(_q("window_labelled"), _params(model, ordered)):
            grouped[Window(row["version"], row["window_start"])].append(row)
    reports = []
    for window, labelled in grouped.items():
        if totals.get(window):
            reports.extend(figure(model, window, totals[window], labelled, settings, labels))
    return reports


def forget_old(
    conn: Connection, monitors: Monitors, models: list[str], now: datetime, labels: dict[str, str]
) -> list[dict[str, Any]]:
    """Labels past their model's horizon go, counted as `labels_unmatched` when they never
    found their row; the predictions of days past every horizon go too. (Every model with
    labels is in `models`: ingest registers the models of labels as of logged rows.)"""
    reports = []
    with conn.cursor(row_factory=dict_row) as cursor:
        for model in models:
            horizon = monitors.for_model(model).horizon
            found = cursor.execute(
                _q("forget_labels"), {"model": model, "before": now - horizon}
            ).fetchone()
            unmatched = int(found["unmatched"]) if found else 0
            if unmatched:
                reports.append(
                    {
                        "model": model,
                        "version": "default",
                        "time": timestamps.format(now),
                        "metrics": {"labels_unmatched": float(unmatched)},
                        "labels": {**labels, **SOURCE_LABEL},
                    }
                )
    longest = max([monitors.defaults.horizon, *(m.horizon for m in monitors.monitors)])
    conn.execute(_q("drop_prediction_partitions"), ((now - longest - timedelta(days=1)).date(),))
    return reports
