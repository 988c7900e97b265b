"""`stack.json`: one typed class writes it and reads it back; a dead or foreign file is no
running stack."""

from __future__ import annotations

import json
import os
from pathlib import Path

from modelstats.local.stack.state import STATE_FILE, PostgresState, ProcessState, StackState


def full_state(pid: int) -> StackState:
    return StackState(
        pid=pid,
        broker="http://127.0.0.1:8080/modelstats/default",
        database_url="postgresql://u@/db?host=/tmp/x",
        stats="http://127.0.0.1:8081",
        reader_url="postgresql://reader:pw@127.0.0.1:5433/db",
        etl_root="/data/etl",
        embedded_database=True,
        processes={
            "ingest": ProcessState("http://127.0.0.1:9001", 101),
            "broker": ProcessState("http://127.0.0.1:8080", None),
        },
        postgres=PostgresState(202, "/data/pg"),
    )


def test_what_is_written_is_read_back(tmp_path: Path) -> None:
    state = full_state(os.getpid())
    state.write(tmp_path)
    assert StackState.read(tmp_path) == state
    assert StackState.running(tmp_path) == state
    assert not (tmp_path / (STATE_FILE + ".new")).exists()


def test_a_dead_pid_is_no_running_stack(tmp_path: Path) -> None:
    # Past any pid_max Linux allows (2**22): no such process.
    full_state(2**31 - 1).write(tmp_path)
    assert StackState.read(tmp_path) is not None
    assert StackState.running(tmp_path) is None


def test_no_file_a_broken_one_or_a_foreign_one_is_none(tmp_path: Path) -> None:
    assert StackState.read(tmp_path) is None
    for text in [
        "{",
        "[]",
        json.dumps({"pid": "x", "broker": "", "database_url": ""}),
        json.dumps({"pid": 1}),
        json.dumps({"pid": 1, "broker": "", "database_url": "", "colour": "red"}),
    ]:
        (tmp_path / STATE_FILE).write_text(text)
        assert StackState.read(tmp_path) is None, text


def test_remove_is_quiet_when_there_is_nothing(tmp_path: Path) -> None:
    full_state(os.getpid()).write(tmp_path)
    StackState.remove(tmp_path)
    StackState.remove(tmp_path)
    assert not (tmp_path / STATE_FILE).exists()
