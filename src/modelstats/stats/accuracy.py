"""GET /accuracy/{model}/{version}: accuracy (or the regression errors) per window, with the
label coverage it was figured from, and which windows are still provisional.

The inference job figures a window's accuracy from the labels known so far and replaces it as
more come, for as long as the model's label horizon (7 days unless its monitor says otherwise;
the stats function does not read the monitors file, so the caller may say `horizon`). A window
is provisional while it is within the horizon and its `label_coverage` is below 1: its figure
may still move. Cells as in cells.py: each holds the mean of its windows' figures, their mean
and lowest coverage, and how many of them are provisional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelstats.core import timestamps
from modelstats.stats import cells
from modelstats.stats.params import AccuracyQuery
from modelstats.stats.summaries import connection

CLASSIFICATION = ("prediction_accuracy",)
REGRESSION = ("mae", "rmse", "mape")
COVERAGE = "label_coverage"


def _task(metrics: set[str]) -> str | None:
    if metrics & set(CLASSIFICATION):
        return "classification"
    if metrics & set(REGRESSION):
        return "regression"
    return None


@dataclass
class Figured:
    """The figured windows of one cell (label sets of one metric merged: they add up)."""

    sums: dict[str, tuple[float, int]] = field(default_factory=dict)  # metric -> total, n
    coverage_min: float | None = None
    provisional: int = 0

    def add(self, metric: str, found: cells.Cell) -> None:
        total, n = self.sums.get(metric, (0.0, 0))
        self.sums[metric] = (total + found.total, n + found.n)
        if metric == COVERAGE:
            low = self.coverage_min
            self.coverage_min = found.lo if low is None else min(low, found.lo)
            self.provisional += found.open

    def mean(self, metric: str) -> float | None:
        total, n = self.sums.get(metric, (0.0, 0))
        return total / n if n else None

    def to_json(self, time: datetime) -> dict[str, Any]:
        return {
            "time": timestamps.format(time),
            "windows": self.sums.get(COVERAGE, (0.0, 0))[1],
            COVERAGE: self.mean(COVERAGE),
            "label_coverage_min": self.coverage_min,
            "provisional": self.provisional,
            "values": {metric: self.mean(metric) for metric in self.sums if metric != COVERAGE},
        }


async def accuracy(model: str, version: str, query: AccuracyQuery, now: datetime) -> dict[str, Any]:
    metrics = (cells.WINDOW_METRIC, COVERAGE, *CLASSIFICATION, *REGRESSION)
    async with connection() as conn:
        found = await cells.inference_series(conn, model, version, metrics)
        layout = await cells.layout(conn, found, query.since, query.until)
        figured = [one for one in found if one.metric != cells.WINDOW_METRIC]
        rows = await cells.cells(
            conn, figured, query.since, query.until, layout.cell, now - query.horizon
        )
    metric_of = {one.id: one.metric for one in figured}
    by_time: dict[datetime, Figured] = {}
    for one in rows:
        by_time.setdefault(one.time, Figured()).add(metric_of[one.series_id], one)
    present = set(metric_of.values()) - {COVERAGE}
    order = (*CLASSIFICATION, *REGRESSION)
    return {
        "model": model,
        "version": version,
        "since": timestamps.format(query.since),
        "until": timestamps.format(query.until),
        "horizon_seconds": query.horizon.total_seconds(),
        "window_seconds": layout.window.total_seconds() if layout.window else None,
        "cell_seconds": layout.cell.total_seconds(),
        "task": _task(present),
        "metrics": [metric for metric in order if metric in present],
        "cells": [cell.to_json(time) for time, cell in sorted(by_time.items())],
    }
