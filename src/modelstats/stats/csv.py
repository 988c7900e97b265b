"""A stats answer's time series as CSV (`format=csv`): one row per metric and bucket."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

CSV_COLUMNS = ("model", "version", "metric", "time", "count", "mean", "min", "max", "p95")


def series_csv(result: dict[str, Any]) -> str:
    """The `series` of a stats answer (one version, or every version) as CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    if "versions" in result:
        versions: Iterable[tuple[str, dict[str, Any]]] = result["versions"].items()
    else:
        versions = [(result["version"], result)]
    for version, entry in versions:
        for metric, points in entry.get("series", {}).items():
            for point in points:
                writer.writerow(
                    [result["model"], version, metric, point["time"], point["count"]]
                    + [repr(point[name]) for name in ("mean", "min", "max", "p95")]
                )
    return out.getvalue()
