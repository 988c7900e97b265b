"""Group commit: concurrent requests of one event loop share transactions.

One commit costs about as much as the rows of many small events (RUNTIME.md: 1-10 rows cost
1-3 ms per transaction, the commit dominating), so ingest and alert gather what arrives while a
transaction is running and write it in the next one. Each caller is answered only after the
transaction holding its item has committed (or with the error that stopped it).

    batcher = GroupCommit(write_batch, weight=lambda item: len(item.samples))
    result = await batcher.submit(item)   # resolved by write_batch(batch)

`write(batch)` gets the pending items in arrival order and resolves each one's future; one it
leaves unresolved gets the exception `write` raised, or a RuntimeError.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

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
            try:
                await self._write(batch)
            except Exception as error:  # every caller still waiting gets the failure
                for pending in batch:
                    pending.fail(error)
            else:
                for pending in batch:
                    pending.fail(RuntimeError("the batch writer left this item unanswered"))
