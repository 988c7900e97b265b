"""Logged inference traffic stored: each event's rows kept once, in blocks, for the etl.

Like metric reports (ingestor.py), concurrent events are gathered into one transaction (group
commit) with their dedup records, and each is answered only after that commit: a redelivery
(same source, id and type) stores nothing and is answered 2xx. Within a commit the new events'
blocks of one model and kind are merged, so a thousand one-row requests a second become a few
blocks, not a thousand: the window job reads column blobs, not rows.

Nothing is replied (204): the rows become figures when their window closes (etl's inference
job), not per event.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg

from modelstats.core import metrics, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.columns import Columns
from modelstats.core.errors import DatabaseUnavailable
from modelstats.core.inference import BLOCK_SPAN_SECONDS, TIME
from modelstats.core.settings import get_settings
from modelstats.ingest import logged
from modelstats.ingest.logged import Block
from modelstats.store import db, queries
from modelstats.store.batching import GroupCommit, Pending, PerLoop

log = logging.getLogger("modelstats.ingest")

# copy_blocks' columns: model, kind, time_min, time_max, rows, meta, features, outputs, scores.
BLOCK_TYPES = ["text", "text", "timestamptz", "timestamptz", "int4", *["bytea"] * 4]


@dataclass
class Arrival:
    """One logged event on its way into the store."""

    event: Event
    block: Block
    received_at: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.event.source, self.event.id, self.event.type)


Batch = list[Pending[Arrival, bool]]


def by_span(block: Block) -> list[Block]:
    """The block cut so that each part's rows lie within one aligned span (BLOCK_SPAN_SECONDS):
    the window job reads a time range by the blocks' start, and a bounded span bounds that."""
    first, last = block.time_range()
    if first // BLOCK_SPAN_SECONDS == last // BLOCK_SPAN_SECONDS:
        return [block]
    spans: dict[float, list[int]] = defaultdict(list)
    for i, moment in enumerate(block.meta.numeric[TIME]):
        spans[moment // BLOCK_SPAN_SECONDS].append(i)
    return [block.take(rows) for _, rows in sorted(spans.items())]


class InferenceStore:
    def __init__(self, writers: int = 2, max_batch_rows: int = 50_000):
        self._batches: GroupCommit[Arrival, bool] = GroupCommit(
            self._write_batch,
            weight=lambda arrival: arrival.block.rows,
            max_weight=max_batch_rows,
            writers=writers,
        )
        self._days: set[date] = set()
        self._models: set[str] = set()

    async def store(self, event: Event, block: Block, received_at: datetime) -> bool:
        """Store the event's rows; False when it was stored before (a redelivery)."""
        return await self._batches.submit(Arrival(event, block, received_at))

    async def _write_batch(self, batch: Batch) -> None:
        try:
            await self._write(batch)
        except DatabaseUnavailable:
            raise
        except psycopg.errors.CheckViolation:
            # A partition was dropped under us: forget the cache and try again once.
            self._days.clear()
            await self._write(batch)
        except psycopg.Error:
            if len(batch) == 1:
                raise
            log.warning("a batch of %d logged events failed; storing them one by one", len(batch))
            for pending in batch:
                try:
                    await self._write([pending])
                except Exception as error:
                    pending.fail(error)

    async def _write(self, batch: Batch) -> None:
        unique: dict[tuple[str, str, str], Arrival] = {}
        for pending in batch:
            unique.setdefault(pending.item.key, pending.item)
        ordered = sorted(unique.values(), key=lambda arrival: arrival.key)
        async with db.async_connection() as conn:
            await self._prepare(conn, ordered)
            async with conn.transaction():
                cursor = await conn.execute(
                    queries.get("store", "insert_typed_events"),
                    (
                        [a.event.source for a in ordered],
                        [a.event.id for a in ordered],
                        [a.event.type for a in ordered],
                        [a.received_at for a in ordered],
                        [a.block.rows for a in ordered],
                    ),
                )
                new = {(row[0], row[1], row[2]) for row in await cursor.fetchall()}
                groups: dict[tuple[str, str], list[Block]] = defaultdict(list)
                for arrival in ordered:
                    if arrival.key in new:
                        groups[(arrival.block.model, arrival.block.kind)].append(arrival.block)
                async with conn.cursor().copy(queries.get("inference", "copy_blocks")) as copy:
                    copy.set_types(BLOCK_TYPES)
                    for blocks in groups.values():
                        for block in by_span(Block.merge(blocks)):
                            await copy.write_row(block_row(block))
        rows = sum(a.block.rows for a in ordered if a.key in new)
        metrics.INGEST_ROWS.inc(rows)
        for pending in batch:
            arrival = pending.item
            pending.resolve(arrival.key in new and unique[arrival.key] is arrival)

    async def _prepare(self, conn: psycopg.AsyncConnection, arrivals: list[Arrival]) -> None:
        """Partitions for the days the rows fall on, and the models' rows, outside the batch."""
        days: set[date] = set()
        for arrival in arrivals:
            first, last = arrival.block.time_range()
            days.add(datetime.fromtimestamp(first, UTC).date())
            days.add(datetime.fromtimestamp(last, UTC).date())
        new_days = sorted(days - self._days)
        if new_days:
            async with conn.transaction():
                await conn.execute(queries.get("inference", "ensure_partitions"), (new_days,))
            self._days.update(new_days)
        models = sorted({arrival.block.model for arrival in arrivals} - self._models)
        if models:
            async with conn.transaction():
                await conn.execute(queries.get("inference", "ensure_models"), (models,))
            self._models.update(models)


def _blob(columns: Columns | None) -> bytes | None:
    return None if columns is None or not len(columns) else columns.encode()


def block_row(block: Block) -> tuple[object, ...]:
    first, last = block.time_range()
    return (
        block.model,
        block.kind,
        datetime.fromtimestamp(first, UTC),
        datetime.fromtimestamp(last, UTC),
        block.rows,
        block.meta.encode(),
        _blob(block.features),
        _blob(block.outputs),
        _blob(block.scores),
    )


_stores: PerLoop[InferenceStore] = PerLoop(InferenceStore)


async def store(event: Event) -> bool:
    """Read and store one logged event; False for a redelivery (nothing stored again)."""
    received_at = timestamps.now()
    block = logged.read(event, received_at, get_settings())
    return await _stores.get().store(event, block, received_at)
