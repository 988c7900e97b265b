"""GET /overview: every model version with samples in the range (or an alert firing), as the
dashboard's home page lists them.

Per version: what /models says of it (metrics, samples, first and last seen), whether the etl's
inference job monitors it (`source=inference` samples) and then its traffic (the sums of
`requests` and `rows` over the range); its last `drift_share` with that window's
`dataset_drift`; its last accuracy with the window's `label_coverage` (the job's figure when
there is one, else the newest `prediction_accuracy` a model server reported, else the job's
last `mae`); and the alerts firing now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from starlette.concurrency import run_in_threadpool

from modelstats.core import timestamps
from modelstats.stats import listing
from modelstats.stats.params import MAX_ALERTS
from modelstats.stats.summaries import connection
from modelstats.store import alert_history, queries

SOURCE = "source"
INFERENCE = "inference"
TRAFFIC = ("requests", "rows")
# Each metric whose last value the overview shows, and the one read at the same time beside it.
COMPANIONS = {
    "drift_share": "dataset_drift",
    "prediction_accuracy": "label_coverage",
    "mae": "label_coverage",
}
ACCURACY = ("prediction_accuracy", "mae")

Key = tuple[str, str]  # model, version


def _is_inference(labels: dict[str, str]) -> bool:
    return labels.get(SOURCE) == INFERENCE


async def _newest(since: datetime, until: datetime) -> tuple[dict[Key, Any], dict[Key, Any]]:
    """The last drift and the last accuracy of each version, and its inference traffic."""
    params = {
        "since": since,
        "until": until,
        "metrics": list(COMPANIONS),
        "companions": list(COMPANIONS.values()),
    }
    async with connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(queries.get("stats", "newest_with_companion"), params)
        newest = await cursor.fetchall()
        await cursor.execute(
            queries.get("stats", "inference_totals"),
            {"since": since, "until": until, "metrics": list(TRAFFIC)},
        )
        totals = await cursor.fetchall()
    figures: dict[Key, dict[str, Any]] = {}
    for row in newest:
        found = figures.setdefault((row["model"], row["version"]), {})
        # The job's figure over a model server's, then the newer one.
        rank = (_is_inference(row["labels"]), row["time"])
        held = found.get(row["metric"])
        if held is None or rank > held[0]:
            found[row["metric"]] = (rank, row)
    traffic: dict[Key, dict[str, float]] = {}
    for row in totals:
        traffic.setdefault((row["model"], row["version"]), {})[row["metric"]] = row["total"]
    return figures, traffic


def _drift(found: dict[str, Any]) -> dict[str, Any] | None:
    if "drift_share" not in found:
        return None
    _, row = found["drift_share"]
    return {
        "time": timestamps.format(row["time"]),
        "drift_share": row["value"],
        "dataset_drift": row["companion"],
    }


def _accuracy(found: dict[str, Any]) -> dict[str, Any] | None:
    for metric in ACCURACY:
        if metric in found:
            _, row = found[metric]
            return {
                "time": timestamps.format(row["time"]),
                "metric": metric,
                "value": row["value"],
                "label_coverage": row["companion"],
                "inference": _is_inference(row["labels"]),
            }
    return None


def _firing(alert: alert_history.Alert) -> dict[str, Any]:
    return {
        "rule": alert.rule,
        "metric": alert.metric,
        "severity": alert.labels.get("severity"),
        "summary": alert.annotations.get("summary"),
        "fired_at": timestamps.format(alert.fired_at) if alert.fired_at else None,
    }


def _version(
    name: str, entry: dict[str, Any] | None, found: dict[str, Any], traffic: dict[str, float]
) -> dict[str, Any]:
    labels = (entry or {}).get("labels", {})
    return {
        "version": name,
        "inference": INFERENCE in labels.get(SOURCE, []),
        "metrics": (entry or {}).get("metrics", []),
        "samples": (entry or {}).get("samples", 0),
        "first_seen": (entry or {}).get("first_seen"),
        "last_seen": (entry or {}).get("last_seen"),
        "requests": traffic.get("requests"),
        "rows": traffic.get("rows"),
        "drift": _drift(found),
        "accuracy": _accuracy(found),
        "firing": [],
    }


async def overview(since: datetime, until: datetime) -> dict[str, Any]:
    listed = await listing.models(since, until)
    figures, traffic = await _newest(since, until)
    firing = await run_in_threadpool(
        alert_history.list_alerts, ("firing",), None, None, None, MAX_ALERTS
    )
    models: dict[str, dict[str, dict[str, Any]]] = {}
    for model in listed["models"]:
        for entry in model["versions"]:
            key = (model["model"], entry["version"])
            models.setdefault(key[0], {})[key[1]] = _version(
                key[1], entry, figures.get(key, {}), traffic.get(key, {})
            )
    for alert in firing:
        versions = models.setdefault(alert.model, {})
        if alert.version not in versions:  # quiet in the range, yet an alert fires
            versions[alert.version] = _version(alert.version, None, {}, {})
        versions[alert.version]["firing"].append(_firing(alert))
    return {
        "since": timestamps.format(since),
        "until": timestamps.format(until),
        "models": [
            {"model": model, "versions": [versions[v] for v in sorted(versions)]}
            for model, versions in sorted(models.items())
        ],
    }
