"""Logged inference records: the data of `modelstats.inference.logged`, checked and columned.

For model servers without a logger of their own, one event carries the calls of one model:

    {"model": "fraud-detector", "version": "v3",
     "records": [{"id": "req-1", "time": "2026-12-01T10:00:00Z",
                  "features": {"amount": 420.5, "country": "NL"},
                  "prediction": 1, "score": 0.93, "latency_ms": 41.2}]}

`version` is optional (`default`), as are a record's `time` (the event's, else its arrival),
`score` and `latency_ms`; `features` and `prediction` are required. A record's `id` is how a
label finds it later, so it must be unique within the event. Ingest and the reporter check
records with these same rules, so a bad record is refused where it is made.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelstats.core import reports
from modelstats.core.columns import NAN, Columns, add_column, check_name, check_text
from modelstats.core.errors import BadInput
from modelstats.core.settings import Settings

# Stored blocks of logged rows (ingest writes them, the etl's inference job reads them): their
# kinds, and the per-row columns every block has in `meta`: the row's id, its time (epoch
# seconds), the version it names, and whether it is the first row of a call (1: an event's
# first row, every record), which counts requests; `latency_ms` only records bring.
REQUEST, RESPONSE, RECORD = "request", "response", "record"
# A block's rows lie within one aligned span of this many seconds (ingest cuts them so): a
# reader that wants the rows from time t on reads the blocks that start from t's span on.
BLOCK_SPAN_SECONDS = 60
ID, TIME, VERSION, CALL, LATENCY = "id", "time", "version", "call", "latency_ms"

# A row id is a label's key: as long as a CloudEvent id may be (ids of batch rows add `:<i>`).
MAX_ID_LENGTH = 1024
PREDICTION = "prediction"
_RECORD_KEYS = frozenset({"id", "time", "features", "prediction", "score", "latency_ms"})


@dataclass
class Records:
    model: str
    version: str | None
    ids: list[str]
    times: list[datetime]
    features: Columns
    outputs: Columns  # one column, "prediction"
    scores: Columns  # "prediction" when any record has a score
    latencies: array[float]  # NaN where a record has none


def row_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadInput(field, "must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise BadInput(field, f"longer than {MAX_ID_LENGTH} characters")
    return check_text(value, field)


def batch(
    data: object, key: str, field: str, settings: Settings
) -> tuple[str, str | None, list[Any]]:
    """The model, the optional version and the list under `key` of `{"model", "version"?,
    key: [...]}` (records, labels), checked: at most `max_rows` items, no other field."""
    if not isinstance(data, dict):
        raise BadInput(field, f'expected {{"model", "version"?, "{key}": [...]}}')
    unknown = set(data) - {"model", "version", key}
    if unknown:
        raise BadInput(f"{field}.{sorted(unknown)[0]}", "unknown field")
    limit = settings.max_name_length
    model = reports.check_name(data.get("model"), f"{field}.model", limit)
    version = data.get("version")
    if version is not None:
        version = reports.check_name(version, f"{field}.version", limit)
    items = data.get(key)
    if not isinstance(items, list) or not items:
        raise BadInput(f"{field}.{key}", f"must be a non-empty list of {key}")
    if len(items) > settings.max_rows:
        raise BadInput(f"{field}.{key}", f"more than {settings.max_rows} {key} in one event")
    return model, version, items


def _optional_number(raw: dict[str, Any], key: str, field: str) -> float:
    value = raw.get(key)
    if value is None:
        return NAN
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"{field}.{key}", "must be a finite number")
    return float(value)


def parse_records(
    data: object, default_time: datetime, now: datetime, settings: Settings, field: str = "data"
) -> Records:
    """Validate `{"model", "version"?, "records": [...]}`; BadInput names the first bad field."""
    model, version, raw = batch(data, "records", field, settings)
    ids: list[str] = []
    seen: set[str] = set()
    times: list[datetime] = []
    rows: list[dict[str, Any]] = []
    predictions: list[Any] = []
    scores, latencies = array("d"), array("d")
    names: dict[str, None] = {}
    for i, record in enumerate(raw):
        where = f"{field}.records[{i}]"
        if not isinstance(record, dict):
            raise BadInput(where, "a record is an object {id, features, prediction, ...}")
        extra = set(record) - _RECORD_KEYS
        if extra:
            raise BadInput(f"{where}.{sorted(extra)[0]}", "unknown field")
        identity = row_id(record.get("id"), f"{where}.id")
        if identity in seen:
            raise BadInput(f"{where}.id", f"{identity!r} appears twice in this event")
        seen.add(identity)
        ids.append(identity)
        times.append(reports.check_time(record.get("time"), f"{where}.time", default_time, now))
        features = record.get("features")
        if not isinstance(features, dict) or not features:
            raise BadInput(f"{where}.features", "must be a non-empty object of feature values")
        for name in features:
            if name not in names:
                check_name(name, f"{where}.features.{name}", settings.max_name_length)
                names[name] = None
                if len(names) > settings.max_features:
                    raise BadInput(
                        f"{where}.features",
                        f"more than {settings.max_features} features in one event",
                    )
        rows.append(features)
        if record.get("prediction") is None:
            raise BadInput(f"{where}.prediction", "required")
        predictions.append(record["prediction"])
        scores.append(_optional_number(record, "score", where))
        latency = _optional_number(record, "latency_ms", where)
        if latency < 0:
            raise BadInput(f"{where}.latency_ms", "must not be negative")
        latencies.append(latency)
    columns = Columns(len(rows))
    for name in names:
        add_column(columns, name, [row.get(name) for row in rows], f"{field}.records")
    outputs = Columns(len(rows))
    add_column(outputs, PREDICTION, predictions, f"{field}.records[].prediction")
    score_columns = Columns(len(rows))
    if any(not math.isnan(score) for score in scores):
        score_columns.numeric[PREDICTION] = scores
    return Records(model, version, ids, times, columns, outputs, score_columns, latencies)
