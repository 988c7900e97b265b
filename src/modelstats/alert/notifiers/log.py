"""The log notifier: the first version's line, then which rule, how severe, and when the sample
was (a replayed or backfilled sample alerts late: the line must say so).

    ALERT prediction_accuracy lower than 0.3, {'name': 'Mistral', 'version': 'v1', ...}
    (rule LowPredictionAccuracy, severity critical, sample 2026-..., evaluated 52m3s later)

A notification of the schedule (a repeat, a stale or absent series) has no sample: its line
shows the model and version, and what the schedule saw.

With LOG_FORMAT=json the same facts go out as the record's `fields`.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from modelstats.alert.notification import Notification
from modelstats.core import timestamps

logger = logging.getLogger("modelstats.alerts")


def flat_report(notification: Notification) -> dict[str, Any]:
    """The report in the first version's flat shape: name, version, then each metric."""
    report = notification.report
    if report is None:
        labels = notification.labels
        return {"name": labels["model"]} | (
            {"version": labels["version"]} if "version" in labels else {}
        )
    flat: dict[str, Any] = {"name": report.model, "version": report.version}
    flat.update(report.metrics)
    if report.labels:
        flat["labels"] = dict(report.labels)
    return flat


def spoken_seconds(seconds: float) -> str:
    """`0.4s`, `12s`, `52m3s`, `3h5m`, `2d4h`: a lateness a reader takes in at a glance."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s"
    whole = round(seconds)
    for unit, size, small, small_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            rest = (whole % size) // small_size
            return f"{whole // size}{unit}" + (f"{rest}{small}" if rest else "")
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def log_line(notification: Notification) -> str:
    word = "RESOLVED" if notification.status == "resolved" else "ALERT"
    first = f"{word} {notification.summary}, {flat_report(notification)!r}"
    details = [f"rule {notification.rule}", f"severity {notification.severity}"]
    if notification.report is not None:
        details.append(f"sample {timestamps.format(notification.report.time)}")
    if "description" in notification.annotations:
        details.append(notification.annotations["description"])
    late = notification.lateness
    if late is not None:
        details.append(f"evaluated {spoken_seconds(late)} later")
    return f"{first} ({', '.join(details)})"


def log_fields(notification: Notification) -> dict[str, Any]:
    labels, report = notification.labels, notification.report
    evaluated = notification.evaluated_at
    return {
        "status": notification.status,
        "rule": notification.rule,
        "severity": notification.severity,
        "model": labels["model"],
        "version": labels.get("version"),
        "metric": labels.get("metric"),
        "value": notification.value,
        "sample_time": timestamps.format(report.time) if report else None,
        "evaluated_at": timestamps.format(evaluated) if evaluated else None,
        "lateness_seconds": notification.lateness,
        "fingerprint": notification.fingerprint,
    }


class LogNotifier:
    name = "log"

    def send(self, notification: Notification, client: httpx.Client) -> None:
        logger.warning("%s", log_line(notification), extra={"fields": log_fields(notification)})
