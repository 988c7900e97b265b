"""Labels: the truth learnt after a prediction, `modelstats.label.reported`'s data.

    {"model": "fraud-detector", "version": "v3",
     "labels": [{"id": "3f2a...:0", "label": 1, "time": "2026-12-03T09:00:00Z"}]}

`id` names a logged row (its event id for a one-row request, `<event id>:<i>` for row i of a
batch, a record's own id); `label` is a number, a string or a boolean (true and false are 1
and 0, as in predictions); `time` is when the truth was learnt (default: the event's time, else
its arrival). `version` is optional and informative: ids are unique per model. Ingest and the
reporter check labels with these same rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelstats.core import reports
from modelstats.core.columns import check_text, number_text
from modelstats.core.errors import BadInput
from modelstats.core.inference import batch, row_id
from modelstats.core.settings import Settings

_KEYS = frozenset({"id", "label", "time"})

# How long a model's labels may take to come (a monitor's `horizon`): until then a window's
# accuracy may still change, and the dashboard calls it provisional.
DEFAULT_HORIZON = timedelta(days=7)
MIN_HORIZON, MAX_HORIZON = timedelta(minutes=1), timedelta(days=90)


@dataclass
class Labels:
    model: str
    version: str | None
    ids: list[str]
    texts: list[str]  # each label as text: numbers as JSON writes them (1, 0.5), strings as is
    values: list[float]  # each label as a number, NaN for a string
    times: list[datetime]


def label_text(value: object, field: str) -> tuple[str, float]:
    """A label (or a prediction) as text and as a number (NaN when it is a string)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise BadInput(field, "must be a finite number, a string or a boolean")
        text = number_text(number)
        assert text is not None
        return text, number
    if isinstance(value, str) and value:
        return check_text(value, field), math.nan
    raise BadInput(field, "must be a number, a non-empty string or a boolean")


def parse_labels(
    data: object, default_time: datetime, now: datetime, settings: Settings, field: str = "data"
) -> Labels:
    """Validate `{"model", "version"?, "labels": [...]}`; BadInput names the first bad field."""
    model, version, raw = batch(data, "labels", field, settings)
    labels = Labels(model, version, [], [], [], [])
    for i, item in enumerate(raw):
        where = f"{field}.labels[{i}]"
        if not isinstance(item, dict):
            raise BadInput(where, 'a label is an object {"id", "label", "time"?}')
        extra = set(item) - _KEYS
        if extra:
            raise BadInput(f"{where}.{sorted(extra)[0]}", "unknown field")
        labels.ids.append(row_id(item.get("id"), f"{where}.id"))
        text, number = label_text(item.get("label"), f"{where}.label")
        labels.texts.append(text)
        labels.values.append(number)
        labels.times.append(
            reports.check_time(item.get("time"), f"{where}.time", default_time, now)
        )
    return labels
