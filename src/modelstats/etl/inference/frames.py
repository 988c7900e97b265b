"""Windows of a model's logged traffic, read back and joined: a Frame per window and version.

A run reads the blocks of a range of windows once (one query for requests and records, one
for responses), decodes each blob once, and splits the rows by window and version with numpy.
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
from modelstats.etl.inference.ids import IdIndex
from modelstats.etl.inference.monitors import Settings
from modelstats.store import queries

DEFAULT_VERSION = "default"
SPAN = timedelta(seconds=inference.BLOCK_SPAN_SECONDS)

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
    times: np.ndarray  # each row's time (epoch seconds)
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
    """Blocks read and concatenated, column by column."""

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

    def ids(self) -> list[str | None]:
        return self.meta.text.get(inference.ID, [])


def objects(values: list[str | None]) -> np.ndarray:
    """Texts as an object array (indexed by arrays without a loop)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def as_text(values: Column) -> Column:
    """A column as text, numbers as JSON writes them (NaN: None). Each distinct number is
    written once: a column of predictions is mostly a handful of classes."""
    if is_text(values):
        return values
    distinct, where = np.unique(values, return_inverse=True)
    return objects([number_text(float(v)) for v in distinct])[where.reshape(-1)]


def _decode(blob: bytes | None, rows: int) -> Columns:
    return Columns.decode(blob) if blob is not None else Columns(rows)


def _span_start(moment: datetime) -> datetime:
    epoch = moment.timestamp()
    return datetime.fromtimestamp(epoch - epoch % inference.BLOCK_SPAN_SECONDS, moment.tzinfo)


def _read(
    conn: psycopg.Connection[Any],
    model: str,
    kinds: list[str],
    start: datetime,
    until: datetime,
    rows_from: datetime,
) -> _Table:
    """The rows of `kinds` from `start` (its span) up to `until`; blocks wholly before
    `rows_from` give their meta only: they are read for their ids."""
    metas, features, outputs, scores = [], [], [], []
    from_records = []  # per block
    params = {"model": model, "kinds": kinds, "start": _span_start(start), "until": until}
    # Binary results: the blobs arrive as bytes, not as hex text to decode.
    with conn.cursor(row_factory=dict_row, binary=True) as cursor:
        for block in cursor.execute(queries.get("inference", "blocks"), params):
            meta = Columns.decode(block["meta"])
            metas.append(meta)
            rows = meta.rows
            wanted = block["time_max"] >= rows_from
            features.append(_decode(block["features"] if wanted else None, rows))
            outputs.append(_decode(block["outputs"] if wanted else None, rows))
            scores.append(_decode(block["scores"] if wanted else None, rows))
            from_records.append(block["kind"] == inference.RECORD)
    if not metas:
        empty = Columns(0)
        return _Table(empty, empty, empty, empty, np.zeros(0, dtype=bool))
    return _Table(
        Columns.concat(metas),
        Columns.concat(features),
        Columns.concat(outputs),
        Columns.concat(scores),
        np.repeat(np.array(from_records, dtype=bool), [meta.rows for meta in metas]),
    )


def column(columns: Columns, name: str, rows: int) -> Column:
    """A column as a numpy array (missing: NaN or None); all missing when absent."""
    if name in columns.numeric:
        return floats(columns.numeric[name])
    if name in columns.text:
        return objects(columns.text[name])
    return np.full(rows, np.nan)


def _pick(values: Column, index: np.ndarray) -> Column:
    """values[index], missing where index is -1."""
    if len(values) == 0:
        picked = np.full(len(index), np.nan)
        return picked.astype(object) if is_text(values) else picked
    taken = values[np.where(index >= 0, index, 0)]
    taken[index < 0] = None if is_text(values) else np.nan
    return taken


def _merge(first: Column, second: Column, use_second: np.ndarray) -> Column:
    """Per row, `second` where `use_second` holds, else `first` (text if either is text)."""
    if is_text(first) or is_text(second):
        first, second = as_text(first), as_text(second)
    return np.where(use_second, second, first)


def _versions(hints: Column, answered: Column, paired: np.ndarray) -> Column:
    """Each row's version: its response's, else the version the responses of the same hint
    (endpoint) name in this read when they all name one, else the hint, else `default`."""
    result = answered.astype(object)
    unanswered = np.flatnonzero(~paired | np.equal(result, np.array(None)))
    if not len(unanswered):
        return result
    named: dict[object, set[object]] = {}
    for hint, version in zip(hints[paired], answered[paired], strict=True):
        if version is not None:
            named.setdefault(hint, set()).add(version)
    for i in unanswered:
        hint = hints[i]
        known = named.get(hint, ())
        if len(known) == 1:
            result[i] = next(iter(known))
        else:
            result[i] = hint if isinstance(hint, str) else DEFAULT_VERSION
    return result


@dataclass
class _Rows:
    """The joined rows of a read: what every frame of it slices."""

    ids: np.ndarray
    times: np.ndarray
    window: np.ndarray  # index of each row's window in the range
    versions: np.ndarray
    features: dict[str, Column]
    prediction: Column | None
    score: Column | None
    latency: np.ndarray
    call: np.ndarray
    missing: np.ndarray

    def take(self, order: np.ndarray) -> _Rows:
        """The rows at these positions, in this order."""
        return _Rows(
            ids=self.ids[order],
            times=self.times[order],
            window=self.window[order],
            versions=self.versions[order],
            features={name: values[order] for name, values in self.features.items()},
            prediction=None if self.prediction is None else self.prediction[order],
            score=None if self.score is None else self.score[order],
            latency=self.latency[order],
            call=self.call[order],
            missing=self.missing[order],
        )


@dataclass
class _Read:
    """The calls (requests and records) and the responses read for a range, paired by id."""

    calls: _Table
    answers: _Table
    call_ids: np.ndarray
    answer_of_call: np.ndarray  # per call: the response with its id (the later of two), or -1
    answers_distinct: bool  # no two responses share an id

    @classmethod
    def pair(cls, calls: _Table, answers: _Table) -> _Read:
        call_ids = objects(calls.ids())
        index = IdIndex(objects(answers.ids()))
        return cls(calls, answers, call_ids, index.last(call_ids), index.distinct)


def _where(times: np.ndarray, start: datetime, stop: datetime) -> np.ndarray | slice:
    """The positions of the times in [start, stop): a slice when they are all in a row (as
    they mostly are), so that every column is taken without a copy."""
    rows = np.flatnonzero((times >= start.timestamp()) & (times < stop.timestamp()))
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _join(read: _Read, settings: Settings, start: datetime, stop: datetime) -> _Rows:
    calls, answers = read.calls, read.answers
    call_times = calls.times
    width = settings.window.total_seconds()
    rows = _where(call_times, start, stop)
    ids = read.call_ids[rows]
    record = calls.record[rows]
    paired = read.answer_of_call[rows].copy()
    paired[record] = -1
    answered = paired >= 0

    hints = column(calls.meta, inference.VERSION, calls.meta.rows)[rows]
    answer_versions = column(answers.meta, inference.VERSION, answers.meta.rows)
    versions = _versions(hints, _pick(answer_versions, paired), answered)

    prediction = score = None
    outputs = answers.outputs.names()
    name = settings.prediction or (outputs[0] if outputs else None)
    own_name = settings.prediction or PREDICTION
    if name is not None or record.any():
        own = column(calls.outputs, own_name, calls.meta.rows)[rows]
        from_answer = _pick(column(answers.outputs, name or "", answers.meta.rows), paired)
        prediction = _merge(own, from_answer, answered)
        own_score = column(calls.scores, own_name, calls.meta.rows)[rows]
        answer_score = _pick(column(answers.scores, name or "", answers.meta.rows), paired)
        score = np.where(answered, answer_score, own_score).astype(np.float64)

    call = column(calls.meta, inference.CALL, calls.meta.rows)[rows] == 1.0
    own_latency = column(calls.meta, inference.LATENCY, calls.meta.rows)[rows]
    answer_times = _pick(answers.times, paired)
    latency = np.where(answered, (answer_times - call_times[rows]) * 1000.0, own_latency)
    return _Rows(
        ids=ids,
        times=call_times[rows],
        window=((call_times[rows] - start.timestamp()) // width).astype(np.int64),
        versions=versions,
        features={
            settings.feature_name(feature): column(calls.features, feature, calls.meta.rows)[rows]
            for feature in calls.features.names()
        },
        prediction=prediction,
        score=score,
        latency=latency.astype(np.float64),
        call=call,
        missing=call & ~record & ~answered,
    )


def _orphans(
    read: _Read, settings: Settings, start: datetime, stop: datetime
) -> dict[tuple[int, str], int]:
    """Responses in the range that no request read holds, by (window index, version)."""
    answers = read.answers
    times = answers.times
    inside = np.flatnonzero((times >= start.timestamp()) & (times < stop.timestamp()))
    if not len(inside):
        return {}
    if read.answers_distinct:  # then the responses some call found are exactly those held
        some_call = np.zeros(answers.meta.rows, dtype=bool)
        some_call[read.answer_of_call[read.answer_of_call >= 0]] = True
        held = some_call[inside]
    else:
        known = set(read.calls.ids())
        inside_ids = objects(answers.ids())[inside]
        held = np.fromiter(map(known.__contains__, inside_ids), dtype=bool, count=len(inside))
    versions = answers.meta.text.get(inference.VERSION, [])
    width = settings.window.total_seconds()
    found: dict[tuple[int, str], int] = {}
    for i in inside[~held].tolist():
        key = (int((times[i] - start.timestamp()) // width), versions[i] or DEFAULT_VERSION)
        found[key] = found.get(key, 0) + 1
    return found


def read_windows(
    conn: psycopg.Connection[Any],
    model: str,
    settings: Settings,
    start: datetime,
    stop: datetime,
) -> list[Frame]:
    """The frames (one per window and version that has rows or orphaned responses) of the
    windows from `start` to `stop` of `model`, in time order."""
    reach = settings.window + settings.lateness  # how long after a request its response may come
    calls = _read(conn, model, [inference.REQUEST, inference.RECORD], start - reach, stop, start)
    answers = _read(
        conn, model, [inference.RESPONSE], start - reach, stop + settings.lateness, start - reach
    )
    read = _Read.pair(calls, answers)
    joined, groups = _by_group(_join(read, settings, start, stop))
    orphans = _orphans(read, settings, start, stop)
    frames = []
    for index, version in sorted({*groups, *orphans}):
        rows = groups.get((index, version), slice(0, 0))
        call = joined.call[rows]
        window_start = start + settings.window * index
        frames.append(
            Frame(
                model=model,
                version=version,
                start=window_start,
                end=window_start + settings.window,
                ids=joined.ids[rows].tolist(),
                times=joined.times[rows],
                features={key: values[rows] for key, values in joined.features.items()},
                prediction=None if joined.prediction is None else joined.prediction[rows],
                score=None if joined.score is None else joined.score[rows],
                latency_ms=joined.latency[rows][call],
                requests=int(call.sum()),
                responses_missing=int(joined.missing[rows].sum()),
                responses_orphaned=orphans.get((index, version), 0),
            )
        )
    return frames


def _by_group(joined: _Rows) -> tuple[_Rows, dict[tuple[int, Any], slice]]:
    """The rows ordered by window and version, and the slice of each (window index, version).
    Rows mostly come in that order already; then nothing is copied."""
    if not len(joined.ids):
        return joined, {}
    versions = sorted(set(joined.versions.tolist()))
    code = np.zeros(len(joined.ids), dtype=np.int64)
    for number, version in enumerate(versions[1:], start=1):
        code[joined.versions == version] = number
    key = joined.window * len(versions) + code
    if (key[1:] < key[:-1]).any():
        order = np.argsort(key, kind="stable")
        joined, key = joined.take(order), key[order]
    firsts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = [*firsts[1:].tolist(), len(key)]
    return joined, {
        (int(joined.window[first]), joined.versions[first]): slice(first, end)
        for first, end in zip(firsts.tolist(), ends, strict=True)
    }


def late_rows(conn: psycopg.Connection[Any], model: str, after_seq: int, before: datetime) -> int:
    """Rows written since block `after_seq` whose time is before `before` (their window was
    profiled already: they are counted, not profiled)."""
    late = 0
    params = {"model": model, "after": after_seq, "before": before}
    with conn.cursor(row_factory=dict_row, binary=True) as cursor:
        for block in cursor.execute(queries.get("inference", "late_blocks"), params):
            times = floats(Columns.decode(block["meta"]).numeric[inference.TIME])
            late += int((times < before.timestamp()).sum())
    return late
