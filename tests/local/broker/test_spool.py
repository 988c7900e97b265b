"""The spool file on its own: append, cap, batches, taking it for a replay and giving back what
stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelstats.core.cloudevents import Envelope
from modelstats.local.broker import spool


def event(event_id: str, data: bytes = b'{"a": 1}') -> Envelope:
    attributes = {"specversion": "1.0", "type": "t", "source": "/s", "id": event_id}
    return Envelope({**attributes, "datacontenttype": "application/json"}, data, True)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- appending -------------------------------------------------------------------------------


def test_put_appends_one_line_with_the_event_and_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "deep" / spool.FILE_NAME
    box = spool.Spool(path)
    box.put(event("e-1"), "sink down")
    box.put(event("e-2"), "broker stopped")
    (first, second) = spool.read(path)
    assert (first.envelope, first.reason) == (event("e-1"), "sink down")
    assert (second.envelope.id, second.reason) == ("e-2", "broker stopped")
    assert first.spooled_at.endswith("+00:00")


def test_past_its_cap_the_spool_refuses_and_keeps_what_it_has(tmp_path: Path) -> None:
    path = tmp_path / spool.FILE_NAME
    spool.Spool(path).put(event("e-1"), "x")
    one_line = path.stat().st_size
    box = spool.Spool(path, max_bytes=one_line * 2)
    box.put(event("e-2"), "x")
    with pytest.raises(spool.SpoolFull, match="cap"):
        box.put(event("e-3"), "x")
    assert [entry.envelope.id for entry in spool.read(path)] == ["e-1", "e-2"]


def test_a_batch_is_written_when_it_ends_and_counts_against_the_cap(tmp_path: Path) -> None:
    path = tmp_path / spool.FILE_NAME
    spool.Spool(path).put(event("e-0"), "x")
    box = spool.Spool(path, max_bytes=path.stat().st_size * 3)
    with box.batch():
        box.put(event("e-1"), "x")
        box.put(event("e-2"), "x")
        assert box.batching
        assert len(spool.read(path)) == 1  # held until the batch ends
        with pytest.raises(spool.SpoolFull):
            box.put(event("e-3"), "x")
    assert not box.batching
    assert [entry.envelope.id for entry in spool.read(path)] == ["e-0", "e-1", "e-2"]


# -- taking it for a replay ------------------------------------------------------------------


def test_take_moves_the_file_aside_and_reads_every_line(tmp_path: Path) -> None:
    path = tmp_path / spool.FILE_NAME
    spool.append(path, event("e-1"), "x")
    with path.open("a") as handle:
        handle.write("not json\n\n")
    spool.append(path, event("e-2"), "y")
    taken, taken_lines = spool.take(path)
    assert taken is not None and taken.exists() and not path.exists()
    assert [entry.envelope.id if entry else raw for raw, entry in taken_lines] == [
        "e-1",
        "not json",
        "e-2",
    ]


def test_nothing_to_take() -> None:
    assert spool.take(Path("/nonexistent/spool.jsonl")) == (None, [])


def test_give_back_keeps_lines_appended_meanwhile_and_drops_the_taken_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / spool.FILE_NAME
    spool.append(path, event("kept"), "x")
    spool.append(path, event("sent"), "x")
    taken, taken_lines = spool.take(path)
    assert taken is not None
    spool.Spool(path).put(event("meanwhile"), "broker still running")
    spool.give_back(
        path, taken, [raw for raw, entry in taken_lines if entry and entry.envelope.id == "kept"]
    )
    assert not taken.exists()
    assert [entry.envelope.id for entry in spool.read(path)] == ["meanwhile", "kept"]


def test_read_skips_unreadable_lines(tmp_path: Path) -> None:
    path = tmp_path / spool.FILE_NAME
    path.write_text('{"event": 1}\n[]\n')
    spool.append(path, event("e-1"), "x")
    assert [entry.envelope.id for entry in spool.read(path)] == ["e-1"]
