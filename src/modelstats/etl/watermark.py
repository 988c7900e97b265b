"""The ETL's watermark in PostgreSQL: per source, what was read, what is pending, what was said.

Everything a run changes is written in the transaction that holds the source's row lock
(`lock`), so a run either happens completely or not at all, and two runs of the same source
(two replicas, a redelivered ping, the CLI beside the function) take turns: the second sees
the first's offsets and reads only what is new. A run waits at most LOCK_TIMEOUT for its turn,
then answers 503 (retried by the broker).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from modelstats.core.errors import DatabaseUnavailable
from modelstats.etl.logfiles import FileState
from modelstats.etl.psi import ReferenceBins
from modelstats.etl.records import Record
from modelstats.store import queries

LOCK_TIMEOUT = "5s"

Connection = psycopg.Connection[Any]


@dataclass
class SourceState:
    newest_time: datetime | None
    reported_until: datetime | None


@dataclass(frozen=True)
class Reply:
    """What a run answered: an event id and its reports, or None for 204."""

    event_id: str | None
    reports: list[dict[str, Any]]
    time: datetime


SQL = queries.Group("etl")


def lock(conn: Connection, source: str) -> SourceState:
    """Create the source's row if new, and lock it until the transaction ends."""
    try:
        conn.execute(SQL["lock_timeout"], (LOCK_TIMEOUT,))
        conn.execute(SQL["ensure_source"], (source,))
        state = conn.cursor(row_factory=class_row(SourceState))
        found = state.execute(SQL["lock_source"], (source,)).fetchone()
    except psycopg.errors.LockNotAvailable:
        raise DatabaseUnavailable(
            f"another etl run of {source} holds its watermark for over {LOCK_TIMEOUT}; retry later"
        ) from None
    assert found is not None
    return found


def save(conn: Connection, source: str, state: SourceState) -> None:
    conn.execute(SQL["update_source"], (state.newest_time, state.reported_until, source))


def files(conn: Connection, source: str) -> dict[tuple[int, int], FileState]:
    rows = conn.cursor(row_factory=dict_row).execute(SQL["select_files"], (source,)).fetchall()
    states = [
        FileState(
            device=int(row["device"]),  # numeric: st_dev and st_ino are unsigned 64-bit
            inode=int(row["inode"]),
            path=row["path"],
            offset=row["read_offset"],
            head_length=row["head_length"],
            head_sha256=bytes(row["head_sha256"]),
        )
        for row in rows
    ]
    return {state.key: state for state in states}


def save_files(conn: Connection, source: str, states: Sequence[FileState]) -> None:
    if states:
        columns = (
            [s.device for s in states],
            [s.inode for s in states],
            [s.path for s in states],
            [s.offset for s in states],
            [s.head_length for s in states],
            [s.head_sha256 for s in states],
        )
        conn.execute(SQL["upsert_files"], (source, *columns))
    conn.execute(SQL["forget_files"], (source,))


def take_pending(conn: Connection, source: str, before: datetime) -> list[Record]:
    """Remove and return the pending records older than `before` (their windows closed)."""
    taken = conn.cursor(row_factory=class_row(Record))
    return taken.execute(SQL["take_pending"], (source, before)).fetchall()


def add_pending(conn: Connection, source: str, records: Iterable[Record]) -> None:
    with conn.cursor().copy(SQL["copy_pending"]) as copy:
        copy.set_types(["text", "text", "text", "timestamptz", "bool", "float8", "float8"])
        for r in records:
            copy.write_row((source, r.model, r.version, r.time, r.correct, r.latency_ms, r.score))


def references(conn: Connection, source: str) -> dict[tuple[str, str], tuple[str, ReferenceBins]]:
    """Stored references by (model, version): their origin and bins."""
    rows = conn.cursor(row_factory=dict_row).execute(SQL["select_references"], (source,))
    return {
        (row["model"], row["version"]): (
            row["origin"],
            ReferenceBins(tuple(row["edges"]), tuple(row["shares"]), row["size"]),
        )
        for row in rows
    }


def drop_references(conn: Connection, source: str) -> None:
    conn.execute(SQL["delete_references"], (source,))


def add_reference(
    conn: Connection, source: str, key: tuple[str, str], origin: str, reference: ReferenceBins
) -> None:
    model, version = key
    conn.execute(
        SQL["insert_reference"],
        (
            source,
            model,
            version,
            origin,
            list(reference.edges),
            list(reference.shares),
            reference.size,
        ),
    )


def find_reply(conn: Connection, source: str, ping_source: str, ping_id: str) -> Reply | None:
    replies = conn.cursor(row_factory=dict_row)
    row = replies.execute(SQL["select_reply"], (source, ping_source, ping_id)).fetchone()
    if row is None:
        return None
    return Reply(event_id=row["event_id"], reports=row["reports"] or [], time=row["time"])


def save_reply(conn: Connection, source: str, ping_source: str, ping_id: str, reply: Reply) -> None:
    conn.execute(
        SQL["insert_reply"],
        (source, ping_source, ping_id, reply.event_id, Jsonb(reply.reports), reply.time),
    )
    conn.execute(SQL["forget_replies"], (source,))
