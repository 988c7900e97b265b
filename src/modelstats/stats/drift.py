"""GET /drift/{model}/{version}: the drift of a model version, per window and per column.

One answer for a whole drift strip (cells.py lays the windows out). `cells`: per cell, the
windows it holds, their rows, how many had no reference yet or too few rows, the mean
`drift_share` and how many windows drifted as a dataset. Per feature, and apart for the
prediction (the column `feature=prediction`: the prediction drift), arrays aligned with `cells`
(entry i is cell i; null or 0 where the column was not judged): the method, the windows judged
and drifted, and the most drifted figure among them (the least p-value of a test, the greatest
distance). Arrays, not an object per cell: a month of 20 features is 6,000 cells, and the
answer stays about 100 KB. Features come most-drifted first: by drifted windows over the range,
then by their share of the windows judged, then by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from modelstats.core import drift_methods, timestamps
from modelstats.stats import cells
from modelstats.stats.summaries import connection
from modelstats.store import queries

WINDOW_METRICS = ("rows", "drift_rows_short", "drift_share", "dataset_drift")
COLUMN_METRICS = ("feature_drift", "feature_drifted")
PREDICTION = "prediction"


@dataclass
class WindowCell:
    """The windows of one cell, from the window-level samples."""

    counts: dict[str, int] = field(default_factory=dict)  # samples per metric
    totals: dict[str, float] = field(default_factory=dict)
    share_max: float | None = None

    def add(self, metric: str, found: cells.Cell) -> None:
        self.counts[metric] = self.counts.get(metric, 0) + found.n
        self.totals[metric] = self.totals.get(metric, 0.0) + found.total
        if metric == "drift_share":
            self.share_max = max(self.share_max or 0.0, found.hi)

    def to_json(self, time: datetime) -> dict[str, Any]:
        windows = max(self.counts.values(), default=0)
        judged = self.counts.get("drift_share", 0)
        return {
            "time": timestamps.format(time),
            "windows": windows,
            "rows": self.totals.get("rows"),
            # A window with a reference in force always says whether it had enough rows.
            "no_reference": windows - self.counts.get("drift_rows_short", 0),
            "rows_short": round(self.totals.get("drift_rows_short", 0.0)),
            "judged": judged,
            "drift_share": self.totals["drift_share"] / judged if judged else None,
            "drift_share_max": self.share_max,
            "dataset_drift": round(self.totals.get("dataset_drift", 0.0)),
        }


@dataclass(frozen=True)
class ColumnCell:
    """One column's verdicts in one cell, by one method (a row of `column_cells`)."""

    feature: str
    method: str
    time: datetime
    judged: int
    drifted: float
    lo: float | None
    hi: float | None

    @property
    def figure(self) -> float | None:
        """The most drifted figure of the cell's windows."""
        is_test = drift_methods.kind(self.method) == drift_methods.P_VALUE
        return self.lo if is_test else self.hi


def _column(feature: str, cells: int) -> dict[str, Any]:
    arrays = {"method": [None] * cells, "judged": [0] * cells, "drifted": [0] * cells}
    return {"feature": feature, "cells": {**arrays, "figure": [None] * cells}}


def _columns(found: list[ColumnCell], index: dict[datetime, int]) -> list[dict[str, Any]]:
    """Each column with its arrays (when a column's method changed within a cell, the method
    that judged more windows drifted, then more windows, speaks for it)."""
    columns: dict[str, dict[str, Any]] = {}
    for one in found:
        if one.feature not in columns:
            columns[one.feature] = _column(one.feature, len(index))
        arrays = columns[one.feature]["cells"]
        i = index[one.time]
        drifted = round(one.drifted)
        held = (arrays["drifted"][i], arrays["judged"][i])
        if arrays["method"][i] is not None and held >= (drifted, one.judged):
            continue
        arrays["method"][i] = one.method
        arrays["judged"][i] = one.judged
        arrays["drifted"][i] = drifted
        arrays["figure"][i] = one.figure
    for column in columns.values():
        arrays = column["cells"]
        column["methods"] = sorted({m for m in arrays["method"] if m is not None})
        column["judged"] = sum(arrays["judged"])
        column["drifted"] = sum(arrays["drifted"])
    return list(columns.values())


def _most_drifted_first(column: dict[str, Any]) -> tuple[float, float, str]:
    share = column["drifted"] / column["judged"] if column["judged"] else 0.0
    return (-column["drifted"], -share, column["feature"])


METHODS = {
    method: {"kind": drift_methods.kind(method), "threshold": threshold}
    for method, threshold in drift_methods.THRESHOLDS.items()
}


async def _column_cells(
    conn: AsyncConnection[Any], ids: list[int], since: datetime, until: datetime, cell: timedelta
) -> list[ColumnCell]:
    cursor = conn.cursor(row_factory=class_row(ColumnCell))
    await cursor.execute(
        queries.get("stats", "column_cells"),
        {"ids": ids, "since": since, "until": until, "cell": cell},
    )
    return await cursor.fetchall()


async def drift(model: str, version: str, since: datetime, until: datetime) -> dict[str, Any]:
    async with connection() as conn:
        found = await cells.inference_series(conn, model, version, WINDOW_METRICS + COLUMN_METRICS)
        layout = await cells.layout(conn, found, since, until)
        per_window = [one for one in found if one.metric in WINDOW_METRICS]
        rows = await cells.cells(conn, per_window, since, until, layout.cell)
        column_ids = [one.id for one in found if one.metric in COLUMN_METRICS]
        verdicts = await _column_cells(conn, column_ids, since, until, layout.cell)
    metric_of = {one.id: one.metric for one in per_window}
    windows: dict[datetime, WindowCell] = {}
    for one in rows:
        windows.setdefault(one.time, WindowCell()).add(metric_of[one.series_id], one)
    times = sorted(windows.keys() | {one.time for one in verdicts})
    columns = _columns(verdicts, {time: i for i, time in enumerate(times)})
    prediction = next((c for c in columns if c["feature"] == PREDICTION), None)
    features = sorted((c for c in columns if c["feature"] != PREDICTION), key=_most_drifted_first)
    return {
        "model": model,
        "version": version,
        "since": timestamps.format(since),
        "until": timestamps.format(until),
        "window_seconds": layout.window.total_seconds() if layout.window else None,
        "cell_seconds": layout.cell.total_seconds(),
        "methods": METHODS,
        "cells": [windows.get(time, WindowCell()).to_json(time) for time in times],
        "features": features,
        "prediction": prediction,
    }
