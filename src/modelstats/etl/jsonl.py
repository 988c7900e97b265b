"""The JSONL source: one run over inference logs, from the watermark to the reports it closes.

A run, in one transaction holding the source's lock (see watermark):
1. read the complete lines added since the last run (logfiles; at most `max_bytes`);
2. parse them (records); bad lines are skipped and counted; records older than the
   source's `reported_until` belong to windows already reported and are counted as late;
3. find the horizon (windows): the later of the newest record and now, minus the lateness
   allowance. If reading stopped for the byte budget with lines left, the horizon is instead
   the newest record read from those unfinished files (minus the lateness), or nothing at all
   if one of them was not reached: unread lines must not find their window already closed;
4. records of windows that closed (those kept pending by earlier runs and the new ones) become
   reports, oldest windows first, as many whole windows as fit in one event; the rest, and the
   records of open windows, are kept pending in PostgreSQL;
5. the offsets, the pending records and `reported_until` are saved with the reply.

Reports: one per model, version and closed window, at the window's start, with `requests`,
`prediction_accuracy`, `inference_time`, `inference_time_p95` (windows) and `drift`
(references, psi). Bad and late lines of the run are reported as
`{"model": "etl", "version": "jsonl", "time": <run time>, "metrics": {"etl_bad_records": n,
"etl_late_records": m}, "labels": {"source": <job name or path>}}`, when either is non-zero.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelstats.core import cloudevents, durations, metrics, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.settings import get_settings
from modelstats.etl import logfiles, records, watermark, windows
from modelstats.etl.jobs import JsonlJob
from modelstats.etl.records import Record
from modelstats.etl.references import References
from modelstats.etl.watermark import Reply
from modelstats.store import db

log = logging.getLogger("modelstats.etl")

ETL_MODEL = "etl"
LOGGED_BAD_LINES = 5

_records = metrics.Children(metrics.ETL_RECORDS)


def _count(label: str, parsed: _Parsed, late: int) -> None:
    """Count a committed run's records (once each, as the watermark reads them once)."""
    source = metrics.etl_source(label)
    _records(source, "read").inc(len(parsed.records))
    _records(source, "bad").inc(parsed.bad)
    _records(source, "late").inc(late)


class _Parsed:
    """The records of one run's lines, the bad-line count, and the newest time per file."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.bad = 0
        self.newest: dict[tuple[int, int], datetime] = {}

    def add(self, chunks: list[logfiles.Chunk], now: datetime, name_limit: int) -> None:
        for chunk in chunks:
            self.bad += chunk.overlong
            offset = chunk.start
            for line in chunk.lines:
                here, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                try:
                    record = records.parse(line, now, name_limit)
                except records.BadRecord as reason:
                    self.bad += 1
                    if self.bad <= LOGGED_BAD_LINES:
                        log.warning("%s at byte %d: skipped: %s", chunk.state.path, here, reason)
                    continue
                self.records.append(record)
                newest = self.newest.get(chunk.state.key)
                if newest is None or record.time > newest:
                    self.newest[chunk.state.key] = record.time


def _horizon(
    job: JsonlJob,
    chunks: list[logfiles.Chunk],
    parsed: _Parsed,
    newest: datetime | None,
    now: datetime,
) -> datetime | None:
    unfinished = [chunk.state.key for chunk in chunks if chunk.backlog]
    if not unfinished:
        return windows.horizon(newest, now, job.lateness)
    times = [parsed.newest.get(key) for key in unfinished]
    if any(moment is None for moment in times):
        return None
    return min(moment for moment in times if moment is not None) - job.lateness


def _report(
    job: JsonlJob, key: windows.GroupKey, group: list[Record], refs: References
) -> dict[str, Any]:
    start, model, version = key
    metrics = windows.figures(group)
    drift = refs.drift(model, version, start, [r.score for r in group if r.score is not None])
    if drift is not None:
        metrics["drift"] = drift
    return {
        "model": model,
        "version": version,
        "time": timestamps.format(start),
        "metrics": metrics,
        "labels": dict(job.labels),
    }


def _etl_report(label: str, now: datetime, bad: int, late: int) -> dict[str, Any]:
    return {
        "model": ETL_MODEL,
        "version": "jsonl",
        "time": timestamps.format(now),
        "metrics": {"etl_bad_records": bad, "etl_late_records": late},
        "labels": {"source": label},
    }


def _moment(value: datetime | None) -> str:
    return timestamps.format(value) if value is not None else "-"


@dataclass
class _Read:
    """What this run read and parsed, and what of it is still to report."""

    chunks: list[logfiles.Chunk]
    parsed: _Parsed
    fresh: list[Record]  # records of windows not reported yet
    late: int  # records of windows already reported
    newest: datetime | None  # the newest record time ever seen by this source


def _read(
    conn: Any, job: JsonlJob, source: str, state: watermark.SourceState, now: datetime
) -> _Read:
    paths = logfiles.discover(job.path)
    chunks = logfiles.read(paths, watermark.files(conn, source), job.max_bytes)
    parsed = _Parsed()
    parsed.add(chunks, now, get_settings().max_name_length)
    if parsed.bad > LOGGED_BAD_LINES:
        log.warning("%s: skipped %d bad lines in all", source, parsed.bad)
    previous = state.reported_until
    fresh = [r for r in parsed.records if previous is None or r.time >= previous]
    late = len(parsed.records) - len(fresh)
    if late:
        log.warning("%s: %d records arrived after their window was reported", source, late)
    seen = [r.time for r in parsed.records]
    newest = max([*seen, state.newest_time] if state.newest_time else seen, default=None)
    return _Read(chunks, parsed, fresh, late, newest)


def _closed_windows(
    conn: Any, job: JsonlJob, source: str, read: _Read, previous: datetime | None, now: datetime
) -> tuple[datetime | None, list[Record], list[Record]]:
    """The cut (end of the last closed window, if it moved), the records of the windows it
    closed (pending ones included), and those to keep pending."""
    horizon = _horizon(job, read.chunks, read.parsed, read.newest, now)
    cut = windows.cutoff(horizon, job.window) if horizon is not None else None
    if cut is None or (previous is not None and cut <= previous):
        return None, [], read.fresh
    closing = watermark.take_pending(conn, source, cut)
    closing += [r for r in read.fresh if r.time < cut]
    return cut, closing, [r for r in read.fresh if r.time >= cut]


def run(
    job: JsonlJob,
    source: str,
    label: str,
    ping: Event | None,
    now: datetime,
    commit: bool = True,
) -> Reply:
    """One run of a JSONL job; `commit=False` computes the reply and changes nothing."""
    with db.connection() as conn:
        state = watermark.lock(conn, source)
        if ping is not None:
            earlier = watermark.find_reply(conn, source, ping.source, ping.id)
            if earlier is not None:
                log.info("ping %s of %s answered before: same reply", ping.id, ping.source)
                return earlier
        read = _read(conn, job, source, state, now)
        previous = state.reported_until
        cut, closing, keep = _closed_windows(conn, job, source, read, previous, now)

        # As many closed windows as fit in one event, leaving a slot for the etl report.
        batch = windows.limit(windows.group(closing, job.window), get_settings().max_reports - 1)
        if batch.truncated:
            log.error("%s: %d model/version groups of one window dropped", source, batch.truncated)
        keep += batch.left
        refs = References(conn, source, job.reference)
        reports = [_report(job, key, group, refs) for key, group in batch.groups.items()]
        if read.parsed.bad or read.late:
            reports.append(_etl_report(label, now, read.parsed.bad, read.late))
        until = batch.resume_at if batch.resume_at is not None else cut
        if until is None or (previous is not None and until < previous):
            until = previous
        reply = Reply(_event_id(job, source, read, previous, until, reports), reports, now)

        # Saved with the reply, under the source's lock: the run happens whole or not at all.
        watermark.add_pending(conn, source, keep)
        watermark.save_files(conn, source, [chunk.state for chunk in read.chunks])
        watermark.save(conn, source, watermark.SourceState(read.newest, until))
        if ping is not None:
            watermark.save_reply(conn, source, ping.source, ping.id, reply)
        if not commit:
            conn.rollback()
    if commit:
        _count(label, read.parsed, read.late)
    return reply


def _event_id(
    job: JsonlJob,
    source: str,
    read: _Read,
    previous: datetime | None,
    until: datetime | None,
    reports: list[dict[str, Any]],
) -> str | None:
    """The same bytes read for the same windows always give the same event id."""
    if not reports:
        return None
    tokens = [chunk.token for chunk in read.chunks if chunk.state.offset != chunk.start]
    window = durations.format(job.window)
    return cloudevents.derived_id(source, window, _moment(previous), _moment(until), *tokens)
