"""What the functions count, in Prometheus terms: the one catalogue, and its exposition.

Names follow one scheme, `modelstats_<room>_<thing>_<unit>`; counters end in `_total` (the
client adds it), durations are in seconds. Label values come from small fixed sets (outcomes,
reason classes, HTTP codes, rule and notifier names from the configuration, at most
`BoundedLabel.limit` ETL sources): never an event id or a model name. The one exception, the
stats function's last value per series, is capped (stats/exported.py). The broker counts in
its own registry with the same scheme (local/broker/tally.py).

Which registry. functions-framework serves a function with gunicorn, `WORKERS` processes (1 in
the manifests). With one worker that worker serves every request and every scrape, so the
process's default registry is the whole truth. With more, each worker would count only what it
served and a scrape would see one worker's share: set `PROMETHEUS_MULTIPROC_DIR` to an empty
directory in the environment the function starts with (prometheus_client reads it when it is
first imported, in gunicorn's master, before the workers fork); every worker then keeps its
values in files there and /metrics adds up the files of all of them (MultiProcessCollector).
Only counters and histograms are defined here, no gauges: summed over the files of every worker
that ever ran, they stay right when gunicorn replaces a worker, so the `child_exit` hook that
live gauges need (and functions-framework does not let us install) is not needed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from modelstats.core.holder import Holder

# From 1 ms (an ingest under group commit) to 30 s (a stats query near its statement timeout).
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUEST_SECONDS = Histogram(
    "modelstats_http_request_duration_seconds",
    "Time to answer a request, by function, route (a path pattern) and status code;"
    " /healthz and /metrics are not counted.",
    ["function", "route", "code"],
    buckets=SECONDS_BUCKETS,
)

INGEST_EVENTS = Counter(
    "modelstats_ingest_events",
    "Events ingest received, by outcome: stored, duplicate (a redelivery, nothing stored),"
    " rejected (4xx, not retried; see modelstats_ingest_events_rejected_total), unavailable"
    " (503, PostgreSQL down: the broker retries), failed (another 5xx).",
    ["outcome"],
)
INGEST_REJECTED = Counter(
    "modelstats_ingest_events_rejected",
    "Events ingest rejected, by reason class: not_cloudevent, too_large, wrong_type, invalid_data.",
    ["reason"],
)
INGEST_SAMPLES = Counter(
    "modelstats_ingest_samples_stored", "Samples (one metric of one report) stored."
)
INGEST_ROWS = Counter(
    "modelstats_ingest_inference_rows_stored",
    "Logged inference rows stored (KServe and Seldon logger events, modelstats.inference.logged).",
)
INGEST_LABELS = Counter(
    "modelstats_ingest_labels_stored",
    "Labels stored (modelstats.label.reported): the truth about logged rows.",
)
DEAD_LETTERS = Counter(
    "modelstats_deadletters_events",
    "Events the dead-letter sink kept, by the status of the delivery that failed for good"
    " (knativeerrorcode; 0 is a network error, unknown when absent).",
    ["code"],
)

ALERT_EVENTS = Counter(
    "modelstats_alert_events",
    "Events the alert function received (modelstats.metric.stored, and its schedule's ticks),"
    " by outcome: evaluated, duplicate (evaluated before: nothing changes), unmatched (no rule"
    " applies).",
    ["outcome"],
)
ALERT_TRANSITIONS = Counter(
    "modelstats_alert_transitions",
    "Alert state changes by rule and kind: pending, firing, repeat (a repeat notification"
    " while firing), resolved, inactive (pending that stopped holding).",
    ["rule", "kind"],
)
ALERT_NOTIFICATIONS = Counter(
    "modelstats_alert_notifications",
    "Notification attempts by notifier (log, slack, webhook) and outcome: sent, failed (to be"
    " retried with backoff).",
    ["notifier", "outcome"],
)

ETL_RECORDS = Counter(
    "modelstats_etl_records",
    "Inference log records of jsonl jobs, by source (the job's name, else its path) and"
    " outcome: read (parsed), bad (skipped), late (after their window was reported).",
    ["source", "outcome"],
)
ETL_REPORTS = Counter(
    "modelstats_etl_reports", "Reports the etl function sent to ingest, by source.", ["source"]
)

OTHER = "other"


class BoundedLabel:
    """Label values as given, up to `limit` distinct ones; later newcomers become `other`."""

    def __init__(self, limit: int):
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return OTHER


etl_source = BoundedLabel(20)


class Children:
    """One metric's children by label values, looked up once each and kept (the hot paths
    count per event: a dict lookup instead of `labels()`, which takes a lock)."""

    def __init__(self, metric: Any, *fixed: str):
        self._metric = metric
        self._fixed = fixed
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._metric.labels(*self._fixed, *values)
            self._children[values] = child
        return child


def _multiprocess_registry() -> CollectorRegistry:
    collected = CollectorRegistry()
    MultiProcessCollector(collected)
    return collected


_multiprocess: Holder[CollectorRegistry] = Holder(_multiprocess_registry)


def registry() -> Collector:
    """What /metrics reports: this process's registry, or every worker's files."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    return _multiprocess.get()


class _Together:
    """Several collectors as one (OpenMetrics text has one `# EOF`: encode them at once)."""

    def __init__(self, collectors: list[Collector]):
        self._collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def exposition(accept: str, extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The text of a scrape in the format the scraper asked for, and its content type."""
    encode, content_type = choose_encoder(accept)
    return encode(_Together([registry(), *extra])), content_type
