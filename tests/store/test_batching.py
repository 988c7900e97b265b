"""Group commit: concurrent submissions share writes, each answered by the write that held it."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest

from modelstats.core.errors import BadInput, DatabaseUnavailable, InternalError
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


def _writer(writes: list[list[int]]):
    """A writer that fails a batch holding a negative item: -1 with text psycopg cannot send,
    -2 with a bug, -3 with the database gone."""

    async def write(batch: list[Pending[int, int]]) -> None:
        items = [pending.item for pending in batch]
        writes.append(items)
        await asyncio.sleep(0.001)
        if -3 in items:
            raise psycopg.OperationalError("connection to server failed: No such file")
        if -2 in items:
            raise ValueError("a bug")
        if -1 in items:
            "poison\ud800".encode()
        for pending in batch:
            pending.resolve(pending.item)

    return write


def _submit_together(items: list[int], writes: list[list[int]]) -> list[object]:
    async def main() -> list[object]:
        batcher: GroupCommit[int, int] = GroupCommit(_writer(writes), writers=1)
        return await asyncio.gather(*(batcher.submit(i) for i in items), return_exceptions=True)

    return asyncio.run(main())


def test_one_bad_item_fails_alone_and_its_neighbours_are_written() -> None:
    writes: list[list[int]] = []
    items = [*range(1, 40), -1, *range(40, 80)]
    answers = _submit_together(items, writes)
    refused = answers[items.index(-1)]
    assert isinstance(refused, BadInput) and refused.field == "data"
    assert [a for a, i in zip(answers, items, strict=True) if i != -1] == [
        i for i in items if i != -1
    ]
    assert writes[0] == items  # one batch, then halves: far fewer writes than items
    assert len(writes) < 20


def test_a_bug_in_one_item_is_a_500_for_it_alone_logged_once(caplog) -> None:
    writes: list[list[int]] = []
    items = [*range(1, 10), -2, *range(10, 20)]
    with caplog.at_level(logging.DEBUG, logger="modelstats.store"):
        answers = _submit_together(items, writes)
    failed = answers[items.index(-2)]
    assert isinstance(failed, InternalError) and "a bug" in str(failed)
    assert [a for a in answers if isinstance(a, Exception)] == [failed]
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and errors[0].exc_info is not None


def test_the_database_gone_fails_the_whole_batch_without_splitting_it() -> None:
    writes: list[list[int]] = []
    items = [*range(1, 10), -3, *range(10, 20)]
    answers = _submit_together(items, writes)
    assert all(isinstance(a, DatabaseUnavailable) for a in answers)
    assert writes == [items]  # no halves


def test_a_failed_write_of_one_item_is_judged_and_later_items_still_go_through() -> None:
    writes: list[list[int]] = []

    async def main() -> tuple[list[object], int]:
        batcher: GroupCommit[int, int] = GroupCommit(_writer(writes), writers=1)
        failed = await asyncio.gather(batcher.submit(-1), return_exceptions=True)
        return list(failed), await batcher.submit(7)

    failed, later = asyncio.run(main())
    assert isinstance(failed[0], BadInput)
    assert later == 7


def test_an_item_the_writer_forgot_is_an_error_not_a_hang() -> None:
    async def write(batch: list[Pending[int, int]]) -> None:
        return None

    async def main() -> int:
        return await GroupCommit(write).submit(1)

    with pytest.raises(RuntimeError, match="unanswered"):
        asyncio.run(main())
