"""The inference job (`{"source": "inference"}` on a PingSource tick): profile closed windows.

A run, in one transaction holding the job's lock (etl/watermark.py: runs take turns, a
redelivered ping gets the first run's reply):
1. for every model that logged rows (`inference_models`), with its monitor's settings, the
   windows between where it stopped (`closed_until`) and the newest closed one (whose end is
   at least `lateness` before now) are read (frames.py) and profiled (profiles.py)
   (one read of the range's blocks; a run takes windows until ROW_BUDGET rows, and stops
   before a window whose blocks are still arriving);
2. each window is judged for drift against its reference (references.py, verdicts.py);
3. the figures become reports (at each window's start), their sketches are kept, and each
   model's `closed_until` moves past what was profiled, so each row counts once across ticks,
   restarts and replicas; rows that arrive for a window already profiled are counted
   (`rows_late`), not profiled;
4. the reply carries every report of the run in one `modelstats.metric.reported` event whose
   id is derived from what was profiled (a run repeated after a failure gets the same id, and
   ingest keeps it once). A run stops after REPORT_BUDGET reports or ROW_BUDGET rows; the next
   tick goes on.
Raw blocks are dropped by whole days once every model's windows of that day are profiled and
the day is older than RAW_KEEP.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from modelstats.core import cloudevents, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.settings import get_settings
from modelstats.etl import watermark, windows
from modelstats.etl.inference import frames, labels, monitors, profiles, references, verdicts
from modelstats.etl.watermark import Reply
from modelstats.store import db, queries

log = logging.getLogger("modelstats.etl.inference")

ROW_BUDGET = 2_000_000
# A closed window still receiving blocks (a replay of past traffic, responses through their own
# Trigger) waits until none came for SETTLE, but no longer than HOLD_MAX after its first.
SETTLE = timedelta(seconds=10)
HOLD_MAX = timedelta(minutes=10)
# Rows of profiled windows are kept this long (a pinned reference may still be cut from them).
RAW_KEEP = timedelta(days=2)

Connection = psycopg.Connection[Any]


def _q(name: str) -> Any:
    return queries.get("inference", name)


def _one(conn: Connection, name: str, *params: Any) -> Any:
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(_q(name), params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def _save_sketches(conn: Connection, frame: frames.Frame, sketches: list[profiles.Sketch]) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            _q("save_profile"),
            [
                {
                    "model": frame.model,
                    "version": frame.version,
                    "start": frame.start,
                    "end": frame.end,
                    "feature": sketch.feature,
                    "kind": sketch.kind,
                    "rows": sketch.rows,
                    "missing": sketch.missing,
                    "sketch": sketch.sketch,
                    "total": sketch.total,
                    "squares": sketch.squares,
                }
                for sketch in sketches
            ],
        )


class Run:
    """One run over every model: the reports it makes and what it profiled."""

    def __init__(self, conn: Connection, job_labels: dict[str, str], now: datetime):
        self.conn = conn
        self.labels = job_labels
        self.now = now
        self.monitors = monitors.current()
        self.references = references.InForce(conn)
        self.reports: list[dict[str, Any]] = []
        # What the run did, in words that make its event id (the same work, the same id).
        self.parts: list[str] = []
        self.rows = 0
        self.report_budget = get_settings().max_reports - 100

    def exhausted(self) -> bool:
        return len(self.reports) >= self.report_budget or self.rows >= ROW_BUDGET

    def model(self, state: dict[str, Any], newest_seq: int, newest_label: int) -> None:
        model = state["model"]
        settings = self.monitors.for_model(model)
        sizes = self._profile(model, settings, state, newest_seq)
        figured = set(sizes)
        since = self.now - settings.horizon
        if newest_label > state["labels_seq"]:
            figured |= labels.changed_windows(self.conn, model, state["labels_seq"], since)
        figured = {window for window in figured if window.start >= since}
        self.reports.extend(
            labels.window_reports(self.conn, model, figured, settings, self.labels, sizes)
        )
        if newest_label > state["labels_seq"]:
            self.conn.execute(_q("close_labels"), {"model": model, "seq": newest_label})
            self.parts.append(f"{model}|labels|{state['labels_seq']}|{newest_label}")

    def _profile(
        self, model: str, settings: monitors.Settings, state: dict[str, Any], newest_seq: int
    ) -> dict[labels.Window, int]:
        """Profile the model's closed windows; the windows profiled and their rows (for their
        labels)."""
        width = settings.window
        cutoff = windows.cutoff(self.now - settings.lateness, width)
        closed_until = state["closed_until"]
        start = closed_until
        if start is None:
            first = _one(self.conn, "first_time", model)
            if first is None:
                return {}
            start = windows.start_of(first, width)
        if start >= cutoff or self.exhausted():
            return {}
        stop = self._stop(model, start, cutoff, width)
        if stop <= start:
            return {}
        late = (
            frames.late_rows(self.conn, model, state["last_seq"], closed_until)
            if closed_until
            else 0
        )
        window_frames = frames.read_windows(self.conn, model, settings, start, stop)
        if late and window_frames:
            window_frames[0].rows_late, late = late, 0
        for frame in window_frames:
            reports, sketches = profiles.profile(frame, self.labels)
            reference = self.references.get(frame, settings)
            window, judged = verdicts.judge(
                frame, reference, settings, self.labels, profiles.for_drift(sketches)
            )
            reports[0]["metrics"].update(window)
            self.reports.extend(reports)
            self.reports.extend(judged)
            _save_sketches(self.conn, frame, sketches)
        labels.keep_predictions(self.conn, window_frames, indexed=state["labelled"])
        rows = sum(frame.rows for frame in window_frames)
        self.rows += rows
        # Late rows not yet reported keep their blocks unread: the next run counts them.
        seq = state["last_seq"] if late else newest_seq
        self.conn.execute(_q("close_windows"), {"model": model, "until": stop, "seq": seq})
        self.parts.append(f"{model}|{timestamps.format(start)}|{timestamps.format(stop)}")
        log.debug("%s: profiled %s..%s (%d rows)", model, start, stop, rows)
        return {labels.Window(f.version, f.start): f.rows for f in window_frames if f.rows}

    def _stop(self, model: str, start: datetime, cutoff: datetime, width: timedelta) -> datetime:
        """Where this run stops: the cutoff, or the start of the first window still arriving
        (`_arriving`), or the end of the first window past which the rows read would exceed
        what is left of ROW_BUDGET (at least one window)."""
        with self.conn.cursor(row_factory=dict_row) as cursor:
            blocks = cursor.execute(_q("range_blocks"), (model, start, cutoff)).fetchall()
        stop = self._arriving(blocks, width) or cutoff
        left = ROW_BUDGET - self.rows
        total = 0
        for block in blocks:
            if block["time_min"] >= stop:
                break
            if block["kind"] not in ("request", "record"):
                continue
            total += block["rows"]
            if total > left:
                end = windows.start_of(block["time_min"], width) + width
                return min(max(end, start + width), stop)
        return stop

    def _arriving(self, blocks: list[dict[str, Any]], width: timedelta) -> datetime | None:
        """The start of the first window whose blocks are still arriving: one came within
        SETTLE before now, and the first came less than HOLD_MAX ago (a sender stuck on an old
        time holds nothing for long). Blocks that arrived after now are seen by a run whose
        now is set back (a test, a dry run for a past moment) and hold nothing."""
        first: dict[datetime, datetime] = {}
        last: dict[datetime, datetime] = {}
        for block in blocks:
            window = windows.start_of(block["time_min"], width)
            arrived = block["received_at"]
            first[window] = min(first.get(window, arrived), arrived)
            last[window] = max(last.get(window, arrived), arrived)
        for window in sorted(last):
            recent = self.now - SETTLE < last[window] <= self.now
            if recent and first[window] > self.now - HOLD_MAX:
                return window
        return None

    def drop_old_rows(self) -> None:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            states = cursor.execute(_q("models")).fetchall()
        if not states or any(state["closed_until"] is None for state in states):
            return
        oldest = min(state["closed_until"] for state in states)
        cutoff = min(oldest, self.now - RAW_KEEP).date()
        with self.conn.cursor(row_factory=dict_row) as cursor:
            dropped = cursor.execute(_q("drop_partitions"), (cutoff,)).fetchall()
        if dropped:
            log.info("dropped %d day(s) of profiled inference rows", len(dropped))


def run(
    source: str,
    labels_of_job: dict[str, str],
    ping: Event | None,
    now: datetime,
    commit: bool = True,
) -> Reply:
    """One run of the inference job; `commit=False` computes the reply and changes nothing."""
    with _collector_paused(), db.connection() as conn:
        watermark.lock(conn, source)
        if ping is not None:
            earlier = watermark.find_reply(conn, source, ping.source, ping.id)
            if earlier is not None:
                log.info("ping %s of %s answered before: same reply", ping.id, ping.source)
                return earlier
        work = Run(conn, labels_of_job, now)
        newest_seq = _one(conn, "newest_seq")
        newest_label = _one(conn, "newest_label_seq")
        for model in labels.mark_labelled(conn):
            log.info("%s: first label; its predictions are indexed by id from now on", model)
        with conn.cursor(row_factory=dict_row) as cursor:
            states = cursor.execute(_q("models")).fetchall()
        for state in states:
            if work.exhausted():
                break
            work.model(state, newest_seq, newest_label)
        models = [state["model"] for state in states]
        work.reports.extend(labels.forget_old(conn, work.monitors, models, now, labels_of_job))
        work.drop_old_rows()
        event_id = _event_id(source, work.parts) if work.reports else None
        reply = Reply(event_id, work.reports, now)
        if ping is not None:
            watermark.save_reply(conn, source, ping.source, ping.id, reply)
        if not commit:
            conn.rollback()
    return reply


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the length of a run. A run makes millions of objects
    that hold no cycles (a window's ids, its decoded blocks); the collector's passes over them,
    each longer as they pile up, took a sixth of a million-row tick. What a run leaves behind
    is collected after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _event_id(source: str, parts: list[str]) -> str:
    """The same work (windows profiled, labels figured) always gives the same event id."""
    return cloudevents.derived_id(source, "inference", *parts)
