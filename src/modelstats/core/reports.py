"""Metric reports: validation of what clients send, and the normalized form that is stored.

A report is `{"model", "version", "time"?, "metrics": {name: number}, "labels"?: {k: v},
"replace"?: true}`; with `replace`, its samples take the place of any sample of the same series
at the same time (the inference job's figures that change as labels arrive);
the first version's flat shape `{"name", "version", <metric>: <number>, ...}` is accepted too.
An event's data is one report, `{"reports": [...]}` or a JSON array of reports.
Every error names the offending field, e.g. `reports[3].metrics.drift`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from modelstats.core import timestamps
from modelstats.core.columns import check_text
from modelstats.core.errors import BadInput
from modelstats.core.settings import Settings, get_settings

# Names appear in URLs, labels and SQL results: printable, no control characters.
_NAME = re.compile(r"^[^\x00-\x1f\x7f]+$")
# Samples further in the future than this are a client clock or unit bug, not data.
MAX_FUTURE = timedelta(days=1)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_FLAT_RESERVED = {"name", "model", "version", "time", "labels"}
# A series is keyed by (model, version, metric, labels) in a PostgreSQL index, whose rows hold
# at most about 2,700 bytes: the names and label text of one series, in UTF-8, stay under this.
MAX_SERIES_KEY_BYTES = 2000


@dataclass(frozen=True, slots=True)
class Report:
    model: str
    version: str
    time: datetime
    metrics: dict[str, float]
    labels: dict[str, str]
    replace: bool = False

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "time": timestamps.format(self.time),
            "metrics": dict(self.metrics),
            "labels": dict(self.labels),
        }
        if self.replace:
            document["replace"] = True
        return document


# Names repeat across reports (models, versions, metrics, label keys): remember valid ones.
_VALID_NAMES: dict[tuple[str, int], None] = {}
_VALID_NAMES_MAX = 50_000


@lru_cache(maxsize=10_000)
def _canonical(items: tuple[tuple[str, Any], ...]) -> str:
    return json.dumps(dict(items), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def labels_json(labels: dict[str, Any]) -> str:
    """A series' labels as canonical JSON: the same labels always give the same text, so it
    can key a series (ingest's cache, alert's window query)."""
    return _canonical(tuple(sorted(labels.items()))) if labels else "{}"


def _name(value: object, field: str, limit: int) -> str:
    if isinstance(value, str) and (value, limit) in _VALID_NAMES:
        return value
    if not isinstance(value, str) or not value.strip():
        raise BadInput(field, "must be a non-empty string")
    if len(value) > limit:
        raise BadInput(field, f"longer than {limit} characters")
    if not _NAME.fullmatch(value):
        raise BadInput(field, "contains control characters")
    if len(_VALID_NAMES) < _VALID_NAMES_MAX:
        _VALID_NAMES[(value, limit)] = None
    return value


def _number(value: object, field: str) -> float:
    # bool is an int in Python, never a metric value.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(field, f"must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise BadInput(field, "out of the range of a double") from None
    if not math.isfinite(number):
        raise BadInput(field, "must be a finite number (NaN and Infinity are rejected)")
    return number


def _time(value: object, field: str, default: datetime, now: datetime) -> datetime:
    if value is None:
        return default
    moment = timestamps.parse(value, field)
    if moment > now + MAX_FUTURE:
        raise BadInput(field, f"more than {MAX_FUTURE.days} day in the future")
    if moment < EARLIEST:
        raise BadInput(field, "before 1970-01-01")
    return moment


def _metrics(raw: object, field: str, settings: Settings) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise BadInput(field, "must be an object of metric names to numbers")
    if not raw:
        raise BadInput(field, "must hold at least one metric")
    if len(raw) > settings.max_metrics:
        raise BadInput(field, f"more than {settings.max_metrics} metrics")
    metrics = {}
    limit = settings.max_name_length
    # The common case inline (a known name, a finite float): this loop runs per sample.
    for key, value in raw.items():
        if (key, limit) not in _VALID_NAMES:
            _name(key, f"{field}.{key}", limit)
        if type(value) is float and value - value == 0.0:  # false for NaN and +-Infinity
            metrics[key] = value
        else:
            metrics[key] = _number(value, f"{field}.{key}")
    return metrics


def _labels(raw: object, field: str, settings: Settings) -> dict[str, str]:
    if raw is None or raw == {}:
        return {}
    if not isinstance(raw, dict):
        raise BadInput(field, "must be an object of strings")
    if len(raw) > settings.max_labels:
        raise BadInput(field, f"more than {settings.max_labels} labels")
    labels = {}
    for key, value in sorted(raw.items()):
        _name(key, f"{field}.{key}", settings.max_name_length)
        if not isinstance(value, str):
            raise BadInput(f"{field}.{key}", "label values must be strings")
        if len(value) > settings.max_name_length:
            raise BadInput(f"{field}.{key}", f"longer than {settings.max_name_length} characters")
        if "\x00" in value:
            raise BadInput(f"{field}.{key}", "contains a NUL character")
        labels[key] = value
    return labels


def _check_series_key(
    model: str, version: str, metrics: dict[str, float], labels: dict[str, str], field: str
) -> None:
    texts = (model, version, *labels, *labels.values())
    size = len("".join(texts).encode()) + max(len(name.encode()) for name in metrics)
    if size > MAX_SERIES_KEY_BYTES:
        raise BadInput(
            f"{field}.labels" if labels else field,
            f"model, version, metric name and labels together are longer than"
            f" {MAX_SERIES_KEY_BYTES} bytes (a series key must fit a PostgreSQL index row)",
        )


def parse_report(
    raw: object, field: str, default_time: datetime, now: datetime, settings: Settings
) -> Report:
    if not isinstance(raw, dict):
        raise BadInput(field, "a report must be a JSON object")
    if "metrics" in raw:
        unknown = set(raw) - {"model", "version", "time", "metrics", "labels", "replace"}
        if unknown:
            raise BadInput(f"{field}.{sorted(unknown)[0]}", "unknown field")
        model_field = "model"
        metrics_raw = raw["metrics"]
        metrics_field = f"{field}.metrics"
    else:
        # The flat shape of the first version: every other key is a metric.
        model_field = "name" if "name" in raw else "model"
        metrics_raw = {k: v for k, v in raw.items() if k not in _FLAT_RESERVED}
        metrics_field = field
    model = _name(raw.get(model_field), f"{field}.{model_field}", settings.max_name_length)
    version = _name(raw.get("version"), f"{field}.version", settings.max_name_length)
    replace = raw.get("replace", False) if "metrics" in raw else False
    if not isinstance(replace, bool):
        raise BadInput(f"{field}.replace", "must be true or false")
    time = _time(raw.get("time"), f"{field}.time", default_time, now)
    metrics = _metrics(metrics_raw, metrics_field, settings)
    labels = _labels(raw.get("labels"), f"{field}.labels", settings)
    # Per report, so cheap first: a character is at most 4 bytes and a metric name at most
    # max_name_length characters; only a series that might be too long is measured.
    chars = len(model) + len(version) + settings.max_name_length
    if labels:
        chars += sum(map(len, labels)) + sum(map(len, labels.values()))
    if chars * 4 > MAX_SERIES_KEY_BYTES:
        _check_series_key(model, version, metrics, labels, field)
    return Report(model, version, time, metrics, labels, replace)


def parse_reports(
    data: object,
    default_time: datetime,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> list[Report]:
    """Validate an event's data into reports; raise BadInput naming the first bad field."""
    settings = settings or get_settings()
    now = now or timestamps.now()
    if isinstance(data, dict) and "reports" in data:
        if set(data) != {"reports"}:
            extra = sorted(set(data) - {"reports"})[0]
            raise BadInput(extra, "unknown field beside 'reports'")
        items, prefix = data["reports"], "reports"
        if not isinstance(items, list):
            raise BadInput("reports", "must be a list of reports")
    elif isinstance(data, list):
        items, prefix = data, ""
    elif isinstance(data, dict):
        return [parse_report(data, "data", default_time, now, settings)]
    else:
        raise BadInput("data", "expected a report, {'reports': [...]} or a JSON array")
    if not items:
        raise BadInput(prefix or "data", "holds no reports")
    if len(items) > settings.max_reports:
        raise BadInput(prefix or "data", f"more than {settings.max_reports} reports in one event")
    return [
        parse_report(item, f"{prefix}[{i}]", default_time, now, settings)
        for i, item in enumerate(items)
    ]


def check_name(value: object, field: str, limit: int) -> str:
    """A model, version, metric or label name, by the rules of a report."""
    return check_text(_name(value, field, limit), field)


def check_time(value: object, field: str, default: datetime, now: datetime) -> datetime:
    """A sample time, by the rules of a report (RFC 3339, at most a day ahead, not before 1970)."""
    return _time(value, field, default, now)
