"""Logged inference traffic stored: each event's rows kept once, in blocks, for the etl.

Events are kept once each through group commit (arrivals.py): a redelivery (same source, id
and type) stores nothing and is answered 2xx. Within a commit the new events' blocks of one
model and kind are merged, so a thousand one-row requests a second become a few blocks, not a
thousand: the window job reads column blobs, not rows.

Nothing is replied (204): the rows become figures when their window closes (etl's inference
job), not per event.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from modelstats.core import metrics, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.columns import Columns
from modelstats.core.holder import Holder
from modelstats.core.inference import BLOCK_SPAN_SECONDS, TIME
from modelstats.core.settings import get_settings
from modelstats.ingest import logged
from modelstats.ingest.arrivals import Arrival, ArrivalStore
from modelstats.ingest.logged import Block
from modelstats.store import queries

# copy_blocks' columns: model, kind, time_min, time_max, rows, meta, features, outputs, scores.
BLOCK_TYPES = ["text", "text", "timestamptz", "timestamptz", "int4", *["bytea"] * 4]


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


class InferenceStore(ArrivalStore[Block]):
    def __init__(self) -> None:
        super().__init__()
        self._days: set[date] = set()

    def forget_caches(self) -> None:
        self._days.clear()

    async def prepare(
        self, conn: psycopg.AsyncConnection[Any], arrivals: list[Arrival[Block]]
    ) -> None:
        """Partitions for the days the rows fall on, and the models' rows."""
        days: set[date] = set()
        for arrival in arrivals:
            first, last = arrival.content.time_range()
            days.add(datetime.fromtimestamp(first, UTC).date())
            days.add(datetime.fromtimestamp(last, UTC).date())
        new_days = sorted(days - self._days)
        if new_days:
            async with conn.transaction():
                await conn.execute(queries.get("inference", "ensure_partitions"), (new_days,))
            self._days.update(new_days)
        await self.register_models(conn, {arrival.content.model for arrival in arrivals})

    async def keep(self, conn: psycopg.AsyncConnection[Any], new: list[Arrival[Block]]) -> None:
        """The new events' blocks, those of one model and kind merged."""
        groups: dict[tuple[str, str], list[Block]] = defaultdict(list)
        for arrival in new:
            groups[(arrival.content.model, arrival.content.kind)].append(arrival.content)
        async with conn.cursor().copy(queries.get("inference", "copy_blocks")) as copy:
            copy.set_types(BLOCK_TYPES)
            for blocks in groups.values():
                for block in by_span(Block.merge(blocks)):
                    await copy.write_row(block_row(block))
        metrics.INGEST_ROWS.inc(sum(arrival.size for arrival in new))


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


_stores: Holder[InferenceStore] = Holder(InferenceStore, per_loop=True)


async def store(event: Event) -> bool:
    """Read and store one logged event; False for a redelivery (nothing stored again)."""
    received_at = timestamps.now()
    block = logged.read(event, received_at, get_settings())
    return await _stores.get().store(event, block, received_at, block.rows)
