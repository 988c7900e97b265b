"""Each series' last value as Prometheus gauges, for the stats function's GET /metrics.

So a Prometheus user can alert with Alertmanager on what modelstats stores:

    modelstats_metric_last_value{model,version,metric}                  the newest sample
    modelstats_metric_last_sample_timestamp_seconds{model,version,metric}  when it was taken
    modelstats_metric_last_value_series_omitted                          series over the cap

One series per (model, version, metric) with a sample in the last 24 hours (label sets are
merged: the newest sample of any of them); older series are not exported, as Prometheus
would take their value for a current one. Model names are unbounded, so at most
METRICS_MAX_SERIES series (default 1000) are exported, the most recently updated first; the
omitted gauge says how many more there are now (a gauge, not a counter: the number goes down
when series go quiet). Computed from PostgreSQL at each scrape, one query: nothing is kept
between scrapes, and every replica answers the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from psycopg.rows import class_row

from modelstats.core import timestamps
from modelstats.core.settings import get_settings
from modelstats.store import db, queries

WINDOW = timedelta(days=1)
LABELS = ["model", "version", "metric"]


@dataclass(frozen=True)
class Newest:
    """The newest sample of one series, and how many series the query found in all."""

    model: str
    version: str
    metric: str
    time: datetime
    value: float
    total: int


class LastValues:
    """The gauges of one scrape (a collector for `metrics.exposition`)."""

    def __init__(self, rows: list[Newest], omitted: int):
        self.rows = sorted(rows, key=lambda row: (row.model, row.version, row.metric))
        self.omitted = omitted

    def collect(self) -> Iterator[Metric]:
        value = GaugeMetricFamily(
            "modelstats_metric_last_value",
            "The newest sample of each series (model, version, metric) of the last 24 hours.",
            labels=LABELS,
        )
        taken = GaugeMetricFamily(
            "modelstats_metric_last_sample_timestamp_seconds",
            "When the newest sample of each series was taken (its report's time), Unix seconds.",
            labels=LABELS,
        )
        for row in self.rows:
            series = [row.model, row.version, row.metric]
            value.add_metric(series, float(row.value))
            taken.add_metric(series, row.time.timestamp())
        yield value
        yield taken
        yield GaugeMetricFamily(
            "modelstats_metric_last_value_series_omitted",
            "Series of the last 24 hours left out of modelstats_metric_last_value by the"
            " METRICS_MAX_SERIES cap (the least recently updated).",
            value=self.omitted,
        )


async def last_values() -> LastValues:
    """The newest value of every recent series, up to the cap."""
    cap = get_settings().metrics_max_series
    since = timestamps.now() - WINDOW
    async with db.async_connection() as conn:
        cursor = conn.cursor(row_factory=class_row(Newest))
        await cursor.execute(
            queries.get("stats", "last_values"), {"since": since, "limit": max(cap, 1)}
        )
        found = await cursor.fetchall()
    total = found[0].total if found else 0
    rows = found[:cap]
    return LastValues(rows, total - len(rows))
