"""Dead letters: events whose delivery failed for good, kept with Knative's error extensions.

The dead-letter sink (ingest's second target) stores each event as it arrived; stats lists
them, and `modelstats replay` sends them back to the broker once the cause is fixed.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from modelstats.core import contract, logs, metrics
from modelstats.core.cloudevents import Event
from modelstats.store import db, queries

log = logging.getLogger("modelstats.deadletters")

_kept = metrics.Children(metrics.DEAD_LETTERS)


@dataclass(frozen=True)
class DeadLetter:
    id: int
    received_at: datetime  # the first failure
    failed_at: datetime  # the latest
    failures: int  # how many times the event reached the sink for this destination
    source: str
    event_id: str
    type: str
    error_dest: str | None
    error_code: int | None
    error_data: str | None
    attributes: dict[str, Any]
    data: bytes | None
    replayed_at: datetime | None

    def original_attributes(self) -> dict[str, Any]:
        """The event's attributes without the broker's error extensions (for replay)."""
        return {k: v for k, v in self.attributes.items() if k not in contract.ERROR_EXTENSIONS}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "failed_at": self.failed_at.isoformat(),
            "failures": self.failures,
            "event": {"source": self.source, "id": self.event_id, "type": self.type},
            "error": {"dest": self.error_dest, "code": self.error_code, "data": self.error_data},
            "attributes": self.attributes,
            **data_fields(self.data),
            "replayed_at": self.replayed_at.isoformat() if self.replayed_at else None,
        }


def data_fields(data: bytes | None) -> dict[str, str | None]:
    """The kept bytes for a JSON listing: `data` as text when they are UTF-8, else
    `data_base64`. Never parsed: data that is not strict JSON (NaN, a truncated body) is
    exactly what a dead letter may hold, and it must be shown as it came."""
    if data is None:
        return {"data": None, "data_base64": None}
    try:
        return {"data": data.decode("utf-8"), "data_base64": None}
    except UnicodeDecodeError:
        return {"data": None, "data_base64": base64.b64encode(data).decode("ascii")}


def storable(text: str) -> str:
    """`text` as PostgreSQL's text and jsonb can hold it: NUL written as the escape `\\x00`.
    (The sink parses leniently: text with no UTF-8 form arrives escaped already.)"""
    return text.replace("\x00", "\\x00") if "\x00" in text else text


def _error_data(encoded: str | None) -> str | None:
    """knativeerrordata is the failed response body, base64-encoded; keep it readable."""
    if encoded is None:
        return None
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        text = encoded
    return storable(text)


def _error_code(raw: str | None) -> int | None:
    """An HTTP status (0 for the local broker's network errors); anything else is unknown."""
    try:
        code = int(raw) if raw is not None else None
    except ValueError:
        return None
    return code if code is not None and 0 <= code <= 999 else None


def data_bytes(event: Event) -> bytes | None:
    if event.data is None:
        return None
    if isinstance(event.data, bytes):
        return event.data
    return json.dumps(event.data, separators=(",", ":")).encode("utf-8")


async def keep(event: Event) -> int:
    """Store a dead letter, or reopen the one this event already has at this destination (a
    redelivery, or a failure after a replay); return how many times it has failed there.
    Whatever the event holds: its size (up to the body limit) and any text in it."""
    ext = event.extensions
    code = _error_code(ext.get(contract.ERROR_CODE))
    dest = ext.get(contract.ERROR_DEST)
    attributes = {name: storable(value) for name, value in event.attributes().items()}
    params = {
        "source": attributes["source"],
        "event_id": attributes["id"],
        "type": attributes["type"],
        "error_dest": attributes.get(contract.ERROR_DEST),
        "error_code": code,
        "error_data": _error_data(ext.get(contract.ERROR_DATA)),
        "attributes": Jsonb(attributes),
        "data": data_bytes(event),
    }
    async with db.async_connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(queries.get("dead_letters", "insert"), params)
        row = await cursor.fetchone()
    assert row is not None  # INSERT ... ON CONFLICT DO UPDATE always returns the row
    failures = int(row["failures"])
    _kept("unknown" if code is None else str(code)).inc()
    source, event_id, dest = logs.clip(event.source), logs.clip(event.id), dest and logs.clip(dest)
    log.info(
        "dead letter kept: event %s from %s failed for good at %s with %s (failure %d there)",
        event_id,
        source,
        dest,
        "no status" if code is None else f"code {code}",
        failures,
        extra={
            "fields": {
                "source": source,
                "id": event_id,
                "type": logs.clip(event.type),
                "dest": dest,
                "code": code,
                "failures": failures,
            }
        },
    )
    return failures


def recent(
    limit: int = 100, pending_only: bool = False, since: datetime | None = None
) -> list[DeadLetter]:
    """Newest failure first."""
    params = {"limit": limit, "pending": pending_only, "since": since}
    with db.connection() as conn, conn.cursor(row_factory=class_row(DeadLetter)) as cursor:
        return cursor.execute(queries.get("dead_letters", "list"), params).fetchall()


def mark_replayed(letter: DeadLetter) -> bool:
    """Mark the failure `letter` was read with as replayed; False when the event has failed
    again since (the letter then stays pending) or it was already marked."""
    params = {"id": letter.id, "failures": letter.failures}
    with db.connection() as conn:
        return conn.execute(queries.get("dead_letters", "mark_replayed"), params).rowcount == 1
