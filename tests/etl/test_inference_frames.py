"""frames.py's pairing of requests with responses, on tables built in memory: a response is
orphaned when no request read holds its id, whether or not two responses share one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from modelstats.core.columns import Columns
from modelstats.etl.inference import frames
from modelstats.etl.inference.monitors import Settings
from modelstats.ingest.logged import meta_columns

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SETTINGS = Settings()


def table(ids: list[str], seconds: list[float], version: str = "v1") -> frames._Table:
    times = [(START + timedelta(seconds=s)).timestamp() for s in seconds]
    meta = meta_columns(ids, times, [version] * len(ids), each_a_call=True)
    empty = Columns(len(ids))
    return frames._Table(meta, empty, empty, empty, np.zeros(len(ids), dtype=bool))


def orphans(calls: frames._Table, answers: frames._Table) -> dict[tuple[int, str], int]:
    read = frames._Read.pair(calls, answers)
    return frames._orphans(read, SETTINGS, START, START + timedelta(minutes=15))


def test_requests_find_the_later_of_two_responses_with_their_id():
    calls = table(["a", "b", "c"], [1, 2, 3])
    answers = table(["b", "a", "b", "z"], [4, 5, 6, 7])
    read = frames._Read.pair(calls, answers)
    assert read.answer_of_call.tolist() == [1, 2, -1]
    assert not read.answers_distinct


@pytest.mark.parametrize(
    "answer_ids",
    [
        ["a", "ghost-1", "b", "ghost-2"],  # every id once: read from the pairing
        ["a", "ghost-1", "a", "b", "ghost-1"],  # a repeated id: looked up as a set
    ],
)
def test_responses_no_request_holds_are_counted_in_the_window_of_their_time(answer_ids):
    calls = table(["a", "b"], [10, 20])
    seconds = [30.0 + 170 * i for i in range(len(answer_ids))]  # windows of 5 minutes
    answers = table(answer_ids, seconds, version="v2")
    expected: dict[tuple[int, str], int] = {}
    for answer_id, second in zip(answer_ids, seconds, strict=True):
        if answer_id not in {"a", "b"}:
            key = (int(second // 300), "v2")
            expected[key] = expected.get(key, 0) + 1
    assert orphans(calls, answers) == expected
    assert sum(expected.values()) == sum(i.startswith("ghost") for i in answer_ids)


def test_rows_of_a_range_are_a_slice_when_they_lie_in_a_row():
    seconds = np.array([(START + timedelta(seconds=s)).timestamp() for s in (-5, 1, 2, 3, 700)])
    end = START + timedelta(minutes=10)
    assert frames._where(seconds, START, end) == slice(1, 4)
    late = seconds[[1, 0, 2]]  # a block from before the range between two inside it
    assert frames._where(late, START, end).tolist() == [0, 2]
    assert frames._where(seconds, end, end + timedelta(minutes=5)) == slice(4, 5)
    assert frames._where(seconds[:1], START, end).tolist() == []
