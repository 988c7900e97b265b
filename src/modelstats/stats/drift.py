"""GET /drift/{model}/{version}: the drift of a model version, per window and per column.

One answer for a whole drift strip (cells.py lays the windows out): per cell, the windows it
holds, their rows, how many had no reference yet or too few rows, the mean `drift_share` and how
many windows drifted as a dataset; per feature, and apart for the prediction (the column
`feature=prediction`: the prediction drift), per cell its method, the windows judged, how many
drifted and the worst figure among them (the smallest p-value of a test, the largest distance).
Features come most-drifted first: by drifted windows over the range, then by their share of the
windows judged, then by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelstats.core import drift_methods, timestamps
from modelstats.stats import cells
from modelstats.stats.summaries import connection

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
        windows = max(self.counts.values())
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


@dataclass
class ColumnCell:
    """One column's verdicts in one cell, by one method."""

    method: str
    windows: int = 0
    drifted: int = 0
    figure: float | None = None

    def to_json(self, time: datetime) -> dict[str, Any]:
        return {
            "time": timestamps.format(time),
            "method": self.method,
            "windows": self.windows,
            "drifted": self.drifted,
            "figure": self.figure,
        }


def _is_test(method: str) -> bool:
    return drift_methods.kind(method) == drift_methods.P_VALUE


def _worst(method: str, found: cells.Cell) -> float:
    """The most drifted figure of a cell's windows."""
    return found.lo if _is_test(method) else found.hi


def _worse(method: str, held: float | None, figure: float) -> float:
    if held is None:
        return figure
    return min(held, figure) if _is_test(method) else max(held, figure)


def _column_cells(
    series: dict[int, cells.Series], found: list[cells.Cell]
) -> dict[str, dict[datetime, ColumnCell]]:
    """Column -> cell time -> its verdicts (when a column's method changed within a cell, the
    method that judged more windows drifted, then more windows, speaks for it)."""
    by_method: dict[tuple[str, str, datetime], ColumnCell] = {}
    for one in found:
        meta = series[one.series_id]
        if meta.metric not in COLUMN_METRICS:
            continue
        feature, method = meta.labels.get("feature", ""), meta.labels.get("method", "")
        target = by_method.setdefault((feature, method, one.time), ColumnCell(method))
        if meta.metric == "feature_drifted":
            target.windows += one.n
            target.drifted += round(one.total)
        else:
            target.figure = _worse(method, target.figure, _worst(method, one))
    columns: dict[str, dict[datetime, ColumnCell]] = {}
    for (feature, _, time), verdicts in by_method.items():
        held = columns.setdefault(feature, {}).get(time)
        if held is None or (verdicts.drifted, verdicts.windows) > (held.drifted, held.windows):
            columns[feature][time] = verdicts
    return columns


def _column_json(feature: str, found: dict[datetime, ColumnCell]) -> dict[str, Any]:
    ordered = sorted(found.items())
    return {
        "feature": feature,
        "methods": sorted({verdicts.method for _, verdicts in ordered}),
        "windows": sum(verdicts.windows for _, verdicts in ordered),
        "drifted": sum(verdicts.drifted for _, verdicts in ordered),
        "cells": [verdicts.to_json(time) for time, verdicts in ordered],
    }


def _most_drifted_first(column: dict[str, Any]) -> tuple[float, float, str]:
    share = column["drifted"] / column["windows"] if column["windows"] else 0.0
    return (-column["drifted"], -share, column["feature"])


METHODS = {
    method: {"kind": drift_methods.kind(method), "threshold": threshold}
    for method, threshold in drift_methods.THRESHOLDS.items()
}


async def drift(model: str, version: str, since: datetime, until: datetime) -> dict[str, Any]:
    async with connection() as conn:
        found = await cells.inference_series(conn, model, version, WINDOW_METRICS + COLUMN_METRICS)
        layout = await cells.layout(conn, found, since, until)
        rows = await cells.cells(conn, found, since, until, layout.cell) if found else []
    series = {one.id: one for one in found}
    windows: dict[datetime, WindowCell] = {}
    for one in rows:
        metric = series[one.series_id].metric
        if metric in WINDOW_METRICS:
            windows.setdefault(one.time, WindowCell()).add(metric, one)
    columns = [
        _column_json(feature, verdicts) for feature, verdicts in _column_cells(series, rows).items()
    ]
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
        "cells": [cell.to_json(time) for time, cell in sorted(windows.items())],
        "features": features,
        "prediction": prediction,
    }
