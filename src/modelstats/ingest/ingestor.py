"""Ingest: validated reports become samples, stored exactly once per delivered event.

Concurrent events are gathered into one transaction (group commit): each event's samples and
its dedup record (`source`, `id`) commit together, and each event is acknowledged only after
the commit that holds it. A redelivered event conflicts on its dedup record and stores nothing.

Counted (core/metrics.py): events by outcome (stored, duplicate, rejected by reason class,
unavailable) and samples stored; each event is a DEBUG line, a rejected one an INFO line (the
wrapper writes it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg
from cloudevents.http import CloudEvent
from psycopg.rows import dict_row

from modelstats.core import cloudevents, contract, metrics, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput, ModelstatsError, http_status
from modelstats.core.holder import Holder
from modelstats.core.reports import Report, labels_json, parse_reports
from modelstats.ingest import inference, labels
from modelstats.store import db, queries
from modelstats.store.batching import GroupCommit, Pending
from modelstats.web.wrapper import rejection_reason

log = logging.getLogger("modelstats.ingest")

SeriesKey = tuple[str, str, str, str]  # model, version, metric, canonical labels JSON

_events = metrics.Children(metrics.INGEST_EVENTS)
_rejected = metrics.Children(metrics.INGEST_REJECTED)


@dataclass
class Stored:
    """The outcome of one event: its normalized reports, and whether it was new."""

    reports: list[Report]
    duplicate: bool
    received_at: datetime


@dataclass
class ParsedEvent:
    """One event on its way into the store, with the samples it holds."""

    event: Event
    reports: list[Report]
    received_at: datetime
    samples: list[tuple[SeriesKey, datetime, float]] = field(init=False, repr=False)
    # The (series, time) whose samples this event's `replace` reports take the place of.
    replaces: set[tuple[SeriesKey, datetime]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.samples = [
            ((report.model, report.version, metric, labels), report.time, value)
            for report in self.reports
            for labels in (labels_json(report.labels),)
            for metric, value in report.metrics.items()
        ]
        self.replaces = set()
        if any(report.replace for report in self.reports):
            # Within the event too, the later of two replacements of one sample is the one kept.
            kept: dict[tuple[SeriesKey, datetime], float] = {}
            plain = []
            for report, (key, moment, value) in zip(self._owners(), self.samples, strict=True):
                if report.replace:
                    kept.pop((key, moment), None)
                    kept[(key, moment)] = value
                else:
                    plain.append((key, moment, value))
            self.replaces = set(kept)
            self.samples = plain + [(key, moment, value) for (key, moment), value in kept.items()]

    def _owners(self) -> list[Report]:
        return [report for report in self.reports for _ in report.metrics]

    @property
    def key(self) -> tuple[str, str]:
        return (self.event.source, self.event.id)


Batch = list[Pending[ParsedEvent, "Stored"]]


# Every type ingest takes: metric reports, logged inference traffic (inference.py), labels.
ACCEPTED = (contract.METRIC_REPORTED, *contract.INFERENCE_TYPES, contract.LABEL_REPORTED)


def validate(event: Event, now: datetime) -> list[Report]:
    """Check the event's type and data; default sample time: the event's, else `now`."""
    if event.type != contract.METRIC_REPORTED:
        raise BadInput("type", f"{event.type!r} is not a type ingest takes ({', '.join(ACCEPTED)})")
    return parse_reports(event.data, default_time=event.time or now, now=now)


class Ingestor:
    """Writes the deliveries of one event loop through group commit (store/batching.py)."""

    def __init__(self, writers: int = 2, max_batch_samples: int = 50_000):
        self._batches: GroupCommit[ParsedEvent, Stored] = GroupCommit(
            self._write_batch,
            weight=lambda delivery: len(delivery.samples),
            max_weight=max_batch_samples,
            writers=writers,
        )
        self._series: dict[SeriesKey, int] = {}
        self._days: set[date] = set()

    async def store(self, event: Event, reports: list[Report], received_at: datetime) -> Stored:
        return await self._batches.submit(ParsedEvent(event, reports, received_at))

    async def _write_batch(self, batch: Batch) -> None:
        """One transaction for the batch (a failure other than an outage is narrowed down to
        the event at fault by GroupCommit, which writes the batch again in halves)."""
        try:
            await self._write(batch)
        except psycopg.errors.CheckViolation:
            # A partition was dropped under us (retention): forget the cache and retry once.
            self._days.clear()
            await self._write(batch)

    async def _write(self, batch: Batch) -> None:
        # The same event delivered twice at once: store it once, answer both.
        unique: dict[tuple[str, str], ParsedEvent] = {}
        for pending in batch:
            unique.setdefault(pending.item.key, pending.item)
        async with db.async_connection() as conn:
            await self._prepare(conn, unique.values())
            async with conn.transaction():
                ordered = sorted(unique.values(), key=lambda p: p.key)
                cursor = await conn.cursor(row_factory=dict_row).execute(
                    queries.get("store", "insert_events"),
                    (
                        [p.event.source for p in ordered],
                        [p.event.id for p in ordered],
                        [p.received_at for p in ordered],
                        [len(p.samples) for p in ordered],
                    ),
                )
                new_keys = {(row["source"], row["id"]) for row in await cursor.fetchall()}
                last = await self._replace(conn, batch, new_keys)
                async with conn.cursor().copy(queries.get("store", "copy_samples")) as copy:
                    copy.set_types(["int4", "timestamptz", "float8"])
                    for item in ordered:
                        if item.key in new_keys:
                            series = self._series
                            for key, moment, value in item.samples:
                                if last.get((key, moment), item) is item:
                                    await copy.write_row((series[key], moment, value))
            duplicates = [key for key in unique if key not in new_keys]
            first_seen: dict[tuple[str, str], datetime] = {}
            if duplicates:
                cursor = await conn.cursor(row_factory=dict_row).execute(
                    queries.get("store", "select_events"),
                    ([k[0] for k in duplicates], [k[1] for k in duplicates]),
                )
                first_seen = {
                    (row["source"], row["id"]): row["received_at"]
                    for row in await cursor.fetchall()
                }
        for pending in batch:
            item = pending.item
            if item.key in new_keys and unique[item.key] is item:
                pending.resolve(Stored(item.reports, False, item.received_at))
            else:
                # Stored earlier (its first arrival is in the table) or by its twin in this batch.
                received = first_seen.get(item.key, unique[item.key].received_at)
                pending.resolve(Stored(item.reports, True, received))

    async def _replace(
        self, conn: Any, batch: Batch, new_keys: set[tuple[str, str]]
    ) -> dict[tuple[SeriesKey, datetime], ParsedEvent]:
        """Delete the samples that new `replace` reports take the place of; return, for each
        replaced (series, time), the last event of the batch to write it (the one kept)."""
        last: dict[tuple[SeriesKey, datetime], ParsedEvent] = {}
        for pending in batch:  # arrival order: the later report wins
            if pending.item.key in new_keys:
                for replaced in pending.item.replaces:
                    last[replaced] = pending.item
        if last:
            keys = sorted(last, key=lambda pair: (self._series[pair[0]], pair[1]))
            await conn.execute(
                queries.get("store", "delete_samples"),
                ([self._series[key] for key, _ in keys], [moment for _, moment in keys]),
            )
        return last

    async def _prepare(self, conn: Any, items: Iterable[ParsedEvent]) -> None:
        """Create missing series rows and daily partitions, outside the batch transaction."""
        missing: set[SeriesKey] = set()
        days: set[date] = set()
        for item in items:
            for key, moment, _ in item.samples:
                if key not in self._series:
                    missing.add(key)
                days.add(moment.date())
        new_days = sorted(days - self._days)
        if new_days:
            async with conn.transaction():
                await conn.execute(queries.get("store", "ensure_partitions"), (new_days,))
            self._days.update(new_days)
        if missing:
            keys = sorted(missing)
            columns = tuple(list(column) for column in zip(*keys, strict=True))
            async with conn.transaction():
                await conn.execute(queries.get("store", "upsert_series"), columns)
                cursor = conn.cursor(row_factory=dict_row)
                await cursor.execute(queries.get("store", "select_series"), columns)
                for row in await cursor.fetchall():
                    key = (row["model"], row["version"], row["metric"], labels_json(row["labels"]))
                    self._series[key] = row["id"]


_ingestors: Holder[Ingestor] = Holder(Ingestor, per_loop=True)


def ingestor() -> Ingestor:
    """The ingestor of the running event loop (created on first use, never at import)."""
    return _ingestors.get()


async def ingest(event: Event) -> Stored:
    """Validate and store one event; a redelivery returns the first delivery's reports."""
    received_at = timestamps.now()
    reports = validate(event, received_at)
    stored = await ingestor().store(event, reports, received_at)
    if stored.duplicate and event.time is None and stored.received_at != received_at:
        # The first delivery defaulted sample times to its arrival: answer as it did.
        stored.reports = parse_reports(event.data, stored.received_at, now=received_at)
    return stored


def stored_reply_data(stored: Stored) -> dict[str, Any]:
    return {"reports": [report.to_json() for report in stored.reports]}


def _count(event: Event, stored: Stored) -> None:
    if stored.duplicate:
        _events("duplicate").inc()
        log.debug(
            "event %s from %s: a duplicate (first received %s), nothing stored",
            event.id,
            event.source,
            timestamps.format(stored.received_at),
        )
        return
    samples = sum(len(report.metrics) for report in stored.reports)
    _events("stored").inc()
    metrics.INGEST_SAMPLES.inc(samples)
    log.debug("event %s from %s: stored %d sample(s)", event.id, event.source, samples)


def failed(error: ModelstatsError, event: Event | None) -> None:
    """Count an event answered with an error (the function's `on_failure`)."""
    status = http_status(error)
    if status == 503:
        _events("unavailable").inc()
    elif status < 500:
        _events("rejected").inc()
        _rejected(rejection_reason(error, event)).inc()
    else:
        _events("failed").inc()


async def handle(event: Event) -> CloudEvent | None:
    """Store one event and build its reply; a redelivery gets the first delivery's reply.
    Logged inference traffic is stored without a reply (its figures come when its window
    closes)."""
    if event.type in contract.INFERENCE_TYPES or event.type == contract.LABEL_REPORTED:
        store = labels.store if event.type == contract.LABEL_REPORTED else inference.store
        new = await store(event)
        _events("stored" if new else "duplicate").inc()
        return None
    stored = await ingest(event)
    _count(event, stored)
    return cloudevents.reply(
        contract.METRIC_STORED,
        contract.INGEST_SOURCE,
        cloudevents.derived_id(event.source, event.id),
        stored_reply_data(stored),
        time=stored.received_at,
    )
