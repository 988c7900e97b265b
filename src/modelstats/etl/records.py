"""Inference records: one JSON object per log line, validated into what the ETL aggregates.

A line is `{"model", "version", "time", "prediction", "label"?, "latency_ms", "score"?}`; other
keys are ignored (logs carry more than we need). `label` and `score` may be absent or null.
A line that is not such an object raises BadRecord with the reason; the ETL skips and counts it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelstats.core import timestamps
from modelstats.core.errors import BadInput
from modelstats.core.reports import EARLIEST, MAX_FUTURE

_NAME = re.compile(r"^[^\x00-\x1f\x7f]+$")


class BadRecord(ValueError):
    """A log line that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Record:
    model: str
    version: str
    time: datetime
    # prediction == label; None when the record has no label.
    correct: bool | None
    latency_ms: float
    score: float | None


def _name(raw: dict[str, Any], key: str, limit: int) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRecord(f"{key} must be a non-empty string")
    if len(value) > limit or not _NAME.fullmatch(value):
        raise BadRecord(f"{key} is longer than {limit} characters or has control characters")
    return value


def _number(raw: dict[str, Any], key: str, required: bool) -> float | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise BadRecord(f"{key} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecord(f"{key} must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise BadRecord(f"{key} is out of the range of a double") from None
    if not math.isfinite(number):
        raise BadRecord(f"{key} must be finite")
    return number


def same(prediction: Any, label: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 (Python's == would say it is)."""
    if isinstance(prediction, bool) or isinstance(label, bool):
        return type(prediction) is type(label) and prediction == label
    return bool(prediction == label)


def parse(line: bytes | str, now: datetime, name_limit: int = 200) -> Record:
    """One log line (without or with its newline) into a Record; BadRecord if unusable."""
    try:
        raw = json.loads(line)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRecord(f"not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise BadRecord("not a JSON object")
    model = _name(raw, "model", name_limit)
    version = _name(raw, "version", name_limit)
    try:
        moment = timestamps.parse(raw.get("time"), "time")
    except BadInput as error:
        raise BadRecord(error.message) from None
    if moment > now + MAX_FUTURE or moment < EARLIEST:
        raise BadRecord("time is more than a day in the future or before 1970")
    if "prediction" not in raw or raw["prediction"] is None:
        raise BadRecord("prediction is missing")
    latency = _number(raw, "latency_ms", required=True)
    assert latency is not None
    if latency < 0:
        raise BadRecord("latency_ms is negative")
    label = raw.get("label")
    return Record(
        model=model,
        version=version,
        time=moment,
        correct=None if label is None else same(raw["prediction"], label),
        latency_ms=latency,
        score=_number(raw, "score", required=False),
    )
