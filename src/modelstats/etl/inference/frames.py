"""One window of a model's logged traffic, read back and joined: a Frame per version.

The rows of window [start, end) are the requests and records whose time falls in it. A request
row is joined with the response row of the same id (the loggers' pairing, see ingest/logged.py)
if that response arrived within the lateness allowance; then its prediction, score and version
come from the response, and its latency is the response's time minus the request's. A request
without a response keeps its features and counts in `responses_missing`; a response whose id
no request of this window or the one before it holds (its request never came) counts in
`responses_orphaned` of the window its own time falls in. Records (`modelstats.inference.
logged`) carry everything themselves.

The version of a row: the response's (V2 `model_version`, else the endpoint), else the
request's endpoint, else `default`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from modelstats.core import inference
from modelstats.core.columns import Columns, Numbers, number_text
from modelstats.core.inference import PREDICTION
from modelstats.etl.inference.monitors import Settings
from modelstats.store import queries

DEFAULT_VERSION = "default"
HOUR = timedelta(hours=1)

# A column of a frame: float64 (NaN missing) or an object array of str (None missing).
Column = np.ndarray


def floats(values: Numbers) -> np.ndarray:
    """A stored numeric column as a float64 array (no copy: both kinds are buffers)."""
    return np.asarray(values, dtype=np.float64)


def is_text(column: Column) -> bool:
    return column.dtype == object


@dataclass
class Frame:
    model: str
    version: str
    start: datetime
    end: datetime
    ids: list[str]
    features: dict[str, Column]
    prediction: Column | None
    score: Column | None
    latency_ms: Column  # one per request (call), NaN when unknown
    requests: int
    responses_missing: int
    responses_orphaned: int = 0
    rows_late: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.ids)


@dataclass
class _Table:
    """Blocks of one window read and concatenated, column by column."""

    meta: Columns
    features: Columns
    outputs: Columns
    scores: Columns
    record: np.ndarray  # per row: does it come from a record (else a request or a response)

    @property
    def times(self) -> np.ndarray:
        if not self.meta.rows:
            return np.zeros(0)
        return floats(self.meta.numeric[inference.TIME])


def _decode(blob: bytes | None, rows: int) -> Columns:
    return Columns.decode(blob) if blob is not None else Columns(rows)


def _read(
    conn: psycopg.Connection[Any],
    model: str,
    kinds: list[str],
    start: datetime,
    until: datetime,
    rows_from: datetime,
) -> _Table:
    """The rows of `kinds` from `start`'s hour up to `until` (blocks wholly before `rows_from`
    give their meta only: they are read for their ids)."""
    metas, features, outputs, scores, record = [], [], [], [], []
    params = {"model": model, "kinds": kinds, "start": _hour(start), "until": until}
    with conn.cursor(row_factory=dict_row) as cursor:
        for block in cursor.execute(queries.get("inference", "blocks"), params):
            meta = Columns.decode(block["meta"])
            metas.append(meta)
            rows = meta.rows
            wanted = block["time_max"] >= rows_from
            features.append(_decode(block["features"] if wanted else None, rows))
            outputs.append(_decode(block["outputs"] if wanted else None, rows))
            scores.append(_decode(block["scores"] if wanted else None, rows))
            record.append(np.full(rows, block["kind"] == inference.RECORD))
    if not metas:
        empty = Columns(0)
        return _Table(empty, empty, empty, empty, np.zeros(0, dtype=bool))
    return _Table(
        Columns.concat(metas),
        Columns.concat(features),
        Columns.concat(outputs),
        Columns.concat(scores),
        np.concatenate(record),
    )


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def column(columns: Columns, name: str, rows: int) -> Column:
    """A column as a numpy array (missing: NaN or None); all missing when absent."""
    if name in columns.numeric:
        return floats(columns.numeric[name])
    if name in columns.text:
        array = np.empty(rows, dtype=object)
        array[:] = columns.text[name]
        return array
    return np.full(rows, np.nan)


def _pick(values: Column, index: np.ndarray) -> Column:
    """values[index], missing where index is -1."""
    if len(values) == 0:
        picked = np.full(len(index), np.nan)
        return picked.astype(object) if is_text(values) else picked
    taken = values[np.where(index >= 0, index, 0)]
    taken = taken.copy()
    taken[index < 0] = None if is_text(values) else np.nan
    return taken


def _merge(first: Column, second: Column, use_second: np.ndarray) -> Column:
    """Per row, `second` where `use_second` holds, else `first` (text if either is text)."""
    if is_text(first) or is_text(second):
        first, second = _as_text(first), _as_text(second)
    return np.where(use_second, second, first)


def _as_text(values: Column) -> Column:
    if is_text(values):
        return values
    return np.array([number_text(float(v)) for v in values], dtype=object)


def _versions(hints: Column, answered: Column, paired: np.ndarray) -> Column:
    """Each row's version: its response's, else the version the responses of the same hint
    (endpoint) name in this window when they all name one, else the hint, else `default`."""
    named: dict[object, set[object]] = {}
    for hint, version in zip(hints[paired], answered[paired], strict=True):
        if version is not None:
            named.setdefault(hint, set()).add(version)
    result = np.empty(len(hints), dtype=object)
    for i, hint in enumerate(hints):
        if paired[i] and answered[i] is not None:
            result[i] = answered[i]
        elif len(named.get(hint, ())) == 1:
            result[i] = next(iter(named[hint]))
        else:
            result[i] = hint if isinstance(hint, str) else DEFAULT_VERSION
    return result


def read_window(
    conn: psycopg.Connection[Any],
    model: str,
    settings: Settings,
    start: datetime,
    end: datetime,
) -> list[Frame]:
    """The frames (one per version) of window [start, end) of `model`."""
    reach = settings.window + settings.lateness  # how long after a request its response may come
    calls = _read(conn, model, [inference.REQUEST, inference.RECORD], start - reach, end, start)
    answers = _read(
        conn, model, [inference.RESPONSE], start - reach, end + settings.lateness, start
    )

    call_times = calls.times
    in_window = (call_times >= start.timestamp()) & (call_times < end.timestamp())
    known_ids = set(calls.meta.text[inference.ID]) if calls.meta.rows else set()

    answer_ids = answers.meta.text.get(inference.ID, [])
    answer_index = {row_id: i for i, row_id in enumerate(answer_ids)}
    rows = np.flatnonzero(in_window)
    ids = [str(calls.meta.text[inference.ID][i]) for i in rows] if len(rows) else []
    record = calls.record[rows]
    paired = np.array([answer_index.get(row_id, -1) for row_id in ids], dtype=np.int64)
    paired[record] = -1

    hints = column(calls.meta, inference.VERSION, calls.meta.rows)[rows]
    answer_versions = column(answers.meta, inference.VERSION, answers.meta.rows)
    versions = _versions(hints, _pick(answer_versions, paired), paired >= 0)

    prediction = score = None
    outputs = answers.outputs.names()
    name = settings.prediction or (outputs[0] if outputs else None)
    own_name = settings.prediction or PREDICTION
    if name is not None or record.any():
        own = column(calls.outputs, own_name, calls.meta.rows)[rows]
        from_answer = _pick(column(answers.outputs, name or "", answers.meta.rows), paired)
        prediction = _merge(own, from_answer, paired >= 0)
        own_score = column(calls.scores, own_name, calls.meta.rows)[rows]
        answer_score = _pick(column(answers.scores, name or "", answers.meta.rows), paired)
        score = np.where(paired >= 0, answer_score, own_score).astype(np.float64)

    call = column(calls.meta, inference.CALL, calls.meta.rows)[rows] == 1.0
    latency = column(calls.meta, inference.LATENCY, calls.meta.rows)[rows].astype(np.float64)
    answer_times = answers.times
    latency = np.where(
        paired >= 0,
        (_pick(answer_times, paired) - call_times[rows]) * 1000.0,
        latency,
    )
    missing = call & ~record & (paired < 0)

    answer_in_window = (answer_times >= start.timestamp()) & (answer_times < end.timestamp())
    orphans: dict[str, int] = {}
    for i in np.flatnonzero(answer_in_window):
        if answer_ids[i] not in known_ids:
            version = answer_versions[i] or DEFAULT_VERSION
            orphans[version] = orphans.get(version, 0) + 1

    features = {
        settings.feature_name(feature): column(calls.features, feature, calls.meta.rows)[rows]
        for feature in calls.features.names()
    }
    frames = []
    for version in sorted({*set(versions.tolist()), *orphans}):
        mask = versions == version
        frames.append(
            Frame(
                model=model,
                version=version,
                start=start,
                end=end,
                ids=[row_id for row_id, keep in zip(ids, mask, strict=True) if keep],
                features={key: values[mask] for key, values in features.items()},
                prediction=None if prediction is None else prediction[mask],
                score=None if score is None else score[mask],
                latency_ms=latency[mask & call],
                requests=int((mask & call).sum()),
                responses_missing=int((mask & missing).sum()),
                responses_orphaned=orphans.get(version, 0),
            )
        )
    return frames


def late_rows(conn: psycopg.Connection[Any], model: str, after_seq: int, before: datetime) -> int:
    """Rows written since block `after_seq` whose time is before `before` (their window was
    profiled already: they are counted, not profiled)."""
    late = 0
    params = {"model": model, "after": after_seq, "before": before}
    with conn.cursor(row_factory=dict_row) as cursor:
        for block in cursor.execute(queries.get("inference", "late_blocks"), params):
            times = floats(Columns.decode(block["meta"]).numeric[inference.TIME])
            late += int((times < before.timestamp()).sum())
    return late
