"""Group commit: concurrent submissions share writes, each answered by the write that held it."""

from __future__ import annotations

import asyncio

import pytest

from modelstats.store.batching import GroupCommit, Pending


def test_concurrent_items_share_batches_and_each_gets_its_own_answer() -> None:
    batches: list[list[int]] = []

    async def write(batch: list[Pending[int, int]]) -> None:
        batches.append([pending.item for pending in batch])
        await asyncio.sleep(0.01)  # a commit: whatever arrives meanwhile waits for the next
        for pending in batch:
            pending.resolve(pending.item * 10)

    async def main() -> list[int]:
        batcher: GroupCommit[int, int] = GroupCommit(write, writers=1)
        return await asyncio.gather(*(batcher.submit(i) for i in range(50)))

    assert asyncio.run(main()) == [i * 10 for i in range(50)]
    assert sorted(item for batch in batches for item in batch) == list(range(50))
    assert len(batches) < 50  # shared


def test_a_batch_stops_at_its_weight() -> None:
    batches: list[list[int]] = []

    async def write(batch: list[Pending[int, None]]) -> None:
        batches.append([pending.item for pending in batch])
        for pending in batch:
            pending.resolve(None)

    async def main() -> None:
        batcher: GroupCommit[int, None] = GroupCommit(
            write, weight=lambda item: item, max_weight=10, writers=1
        )
        await asyncio.gather(*(batcher.submit(4) for _ in range(9)))

    asyncio.run(main())
    assert all(sum(batch) <= 12 for batch in batches)  # stops once 10 is reached or passed
    assert sum(len(batch) for batch in batches) == 9


def test_a_failed_write_fails_every_item_it_held_and_later_items_still_go_through() -> None:
    async def write(batch: list[Pending[int, int]]) -> None:
        if any(pending.item < 0 for pending in batch):
            raise ValueError("refused")
        for pending in batch:
            pending.resolve(pending.item)

    async def main() -> tuple[list[object], int]:
        batcher: GroupCommit[int, int] = GroupCommit(write, writers=1)
        failed = await asyncio.gather(batcher.submit(-1), return_exceptions=True)
        return list(failed), await batcher.submit(7)

    failed, later = asyncio.run(main())
    assert isinstance(failed[0], ValueError)
    assert later == 7


def test_an_item_the_writer_forgot_is_an_error_not_a_hang() -> None:
    async def write(batch: list[Pending[int, int]]) -> None:
        return None

    async def main() -> int:
        return await GroupCommit(write).submit(1)

    with pytest.raises(RuntimeError, match="unanswered"):
        asyncio.run(main())
