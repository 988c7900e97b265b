"""Events kept once each, through group commit: what logged traffic and labels share.

Concurrent events are gathered into one transaction (store/batching.py) with their dedup
records (`ingest_events`, keyed by source, id and type: KServe's logger gives a request and its
response the same source and id), and each is answered only after that commit. A subclass says
what an event holds (`Content`) and writes the contents of the new events (`keep`) in the same
transaction; a redelivered event conflicts on its dedup record and stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import psycopg

from modelstats.core.cloudevents import Event
from modelstats.store import db, queries
from modelstats.store.batching import GroupCommit, Pending

Content = TypeVar("Content")


@dataclass
class Arrival(Generic[Content]):
    """One event on its way into the store, and what it holds."""

    event: Event
    content: Content
    received_at: datetime
    size: int  # rows or labels: a batch holds at most `max_weight` of them

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.event.source, self.event.id, self.event.type)


class ArrivalStore(Generic[Content]):
    def __init__(self, writers: int = 2, max_weight: int = 50_000):
        self._batches: GroupCommit[Arrival[Content], bool] = GroupCommit(
            self._write_batch,
            weight=lambda arrival: arrival.size,
            max_weight=max_weight,
            writers=writers,
        )
        self._models: set[str] = set()

    async def store(self, event: Event, content: Content, received_at: datetime, size: int) -> bool:
        """Keep the event's content; False when it was kept before (a redelivery)."""
        return await self._batches.submit(Arrival(event, content, received_at, size))

    async def prepare(
        self, conn: psycopg.AsyncConnection[Any], arrivals: list[Arrival[Content]]
    ) -> None:
        """What must exist before the batch's transaction (partitions, ...): in its own."""

    async def keep(self, conn: psycopg.AsyncConnection[Any], new: list[Arrival[Content]]) -> None:
        raise NotImplementedError

    async def register_models(self, conn: psycopg.AsyncConnection[Any], models: set[str]) -> None:
        """Record the models an event names (`inference_models`: the inference job works per
        model), each once per process."""
        new = sorted(models - self._models)
        if new:
            async with conn.transaction():
                await conn.execute(queries.get("inference", "ensure_models"), (new,))
            self._models.update(new)

    def forget_caches(self) -> None:
        """A CheckViolation may mean a partition was dropped under us: forget what is cached."""

    async def _write_batch(self, batch: list[Pending[Arrival[Content], bool]]) -> None:
        """One transaction for the batch (a failure other than an outage is narrowed down to
        the event at fault by GroupCommit, which writes the batch again in halves)."""
        try:
            await self._write(batch)
        except psycopg.errors.CheckViolation:
            self.forget_caches()
            await self._write(batch)

    async def _write(self, batch: list[Pending[Arrival[Content], bool]]) -> None:
        unique: dict[tuple[str, str, str], Arrival[Content]] = {}
        for pending in batch:
            unique.setdefault(pending.item.key, pending.item)
        ordered = sorted(unique.values(), key=lambda arrival: arrival.key)
        async with db.async_connection() as conn:
            await self.prepare(conn, ordered)
            async with conn.transaction():
                cursor = await conn.execute(
                    queries.get("store", "insert_typed_events"),
                    (
                        [a.event.source for a in ordered],
                        [a.event.id for a in ordered],
                        [a.event.type for a in ordered],
                        [a.received_at for a in ordered],
                        [a.size for a in ordered],
                    ),
                )
                new = {(row[0], row[1], row[2]) for row in await cursor.fetchall()}
                await self.keep(conn, [a for a in ordered if a.key in new])
        for pending in batch:
            arrival = pending.item
            pending.resolve(arrival.key in new and unique[arrival.key] is arrival)
