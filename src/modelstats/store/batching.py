"""Group commit: concurrent requests of one event loop share transactions.

One commit costs about as much as the rows of many small events (RUNTIME.md: 1-10 rows cost
1-3 ms per transaction, the commit dominating), so ingest and alert gather what arrives while a
transaction is running and write it in the next one. Each caller is answered only after the
transaction holding its item has committed (or with the error that stopped it).

    batcher = GroupCommit(write_batch, weight=lambda item: len(item.samples))
    result = await batcher.submit(item)   # resolved by write_batch(batch)

`write(batch)` gets the pending items in arrival order and resolves each one's future; one it
leaves unresolved gets a RuntimeError.

One event must cost only itself. A write that fails because the database is away fails every
item it held (each is answered 503 and retried); any other failure may be one item's fault,
so the batch is written again in halves, and again, until the item at fault fails alone, with
what its failure means for it (`db.judge`: 400 for values the store refused, else a 500 for a
bug, logged once). Its neighbours are answered as if it had never come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from modelstats.store import db

log = logging.getLogger("modelstats.store")

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class Pending(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result] = field(repr=False)

    def resolve(self, result: Result) -> None:
        if not self.future.done():
            self.future.set_result(result)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class GroupCommit(Generic[Item, Result]):
    """Batches of at most `max_weight` (at least one item), written by `writers` tasks."""

    def __init__(
        self,
        write: Callable[[list[Pending[Item, Result]]], Awaitable[None]],
        *,
        weight: Callable[[Item], int] = lambda _: 1,
        max_weight: int = 1000,
        writers: int = 2,
    ):
        self._write = write
        self._weight = weight
        self._max_weight = max_weight
        self._writers = writers
        self._queue: asyncio.Queue[Pending[Item, Result]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def submit(self, item: Item) -> Result:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._run()) for _ in range(self._writers)]
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Pending(item, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            size = self._weight(batch[0].item)
            while not self._queue.empty() and size < self._max_weight:
                pending = self._queue.get_nowait()
                batch.append(pending)
                size += self._weight(pending.item)
            await self._settle(batch)

    async def _settle(self, batch: list[Pending[Item, Result]]) -> None:
        try:
            await self._write(batch)
        except Exception as error:
            waiting = [pending for pending in batch if not pending.future.done()]
            if len(waiting) > 1 and not db.is_unavailable(error):
                log.debug(
                    "a batch of %d failed (%s): writing its halves apart", len(waiting), error
                )
                half = len(waiting) // 2
                await self._settle(waiting[:half])
                await self._settle(waiting[half:])
                return
            judged = db.judge(error)
            for pending in waiting:
                pending.fail(judged)
        else:
            for pending in batch:
                pending.fail(RuntimeError("the batch writer left this item unanswered"))
