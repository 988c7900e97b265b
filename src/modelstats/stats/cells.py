"""Inference windows laid out for a strip or a chart: cells of one or more whole windows.

The etl's inference job writes a window's figures at its start (samples labelled
`source=inference`), windows being aligned on the epoch. Their width is the monitors file's,
which the stats function does not read: it is taken as the smallest gap between two windows of
the range (their `rows` samples). A range of up to MAX_CELLS windows gets a cell per window; a
longer one gets cells of k whole windows, k the least that keeps MAX_CELLS, so a strip a few
hundred pixels wide never holds more cells than pixels. Each cell then says how many windows
it holds, and what they add up to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, scalar_row

from modelstats.core.errors import NotFound
from modelstats.stats.params import auto_bucket
from modelstats.store import queries

MAX_CELLS = 300
WINDOW_METRIC = "rows"  # every profiled window has it


@dataclass(frozen=True)
class Series:
    id: int
    metric: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Cell:
    """What the samples of one series hold in one cell."""

    series_id: int
    time: datetime
    n: int
    lo: float
    hi: float
    total: float
    open: int  # samples below 1 since the `open_since` asked for


@dataclass(frozen=True)
class Layout:
    window: timedelta | None  # None: fewer than two windows in the range
    cell: timedelta


async def inference_series(
    conn: AsyncConnection[Any], model: str, version: str, metrics: tuple[str, ...]
) -> list[Series]:
    """The version's inference series of these metrics; 404 for a version with no samples."""
    exists = conn.cursor(row_factory=scalar_row)
    await exists.execute(queries.get("stats", "model_exists"), {"model": model, "version": version})
    if not await exists.fetchone():
        raise NotFound(f"model {model!r} version {version!r} has no samples")
    cursor = conn.cursor(row_factory=class_row(Series))
    await cursor.execute(
        queries.get("stats", "inference_series"),
        {"model": model, "version": version, "metrics": list(metrics)},
    )
    return await cursor.fetchall()


def cell_width(window: timedelta | None, since: datetime, until: datetime) -> timedelta:
    """A whole number of windows, the fewest that keep the range to MAX_CELLS cells."""
    if window is None:
        return auto_bucket(since, until)
    per_cell = max(1, math.ceil((until - since) / (MAX_CELLS * window)))
    return window * per_cell


async def layout(
    conn: AsyncConnection[Any], series: list[Series], since: datetime, until: datetime
) -> Layout:
    ids = [one.id for one in series if one.metric == WINDOW_METRIC]
    cursor = conn.cursor(row_factory=scalar_row)
    await cursor.execute(
        queries.get("stats", "window_gap"), {"ids": ids, "since": since, "until": until}
    )
    seconds = await cursor.fetchone()
    window = timedelta(seconds=seconds) if seconds else None
    return Layout(window, cell_width(window, since, until))


async def cells(
    conn: AsyncConnection[Any],
    series: list[Series],
    since: datetime,
    until: datetime,
    cell: timedelta,
    open_since: datetime | None = None,
) -> list[Cell]:
    """Each series' cells in the range, in time order."""
    cursor = conn.cursor(row_factory=class_row(Cell))
    await cursor.execute(
        queries.get("stats", "cells"),
        {
            "ids": [one.id for one in series],
            "since": since,
            "until": until,
            "cell": cell,
            "open_since": open_since or until,
        },
    )
    return await cursor.fetchall()
