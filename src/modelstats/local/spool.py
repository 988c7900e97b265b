"""The local spool: events that even the dead-letter sink refused, one JSON line each.

Appended by the broker (one `open(..., "a")` per line, so writers never interleave) and drained
by `modelstats replay`, which first renames the file so that lines appended meanwhile are kept
for the next run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelstats.core import cloudevents
from modelstats.core.cloudevents import Envelope
from modelstats.core.errors import BadInput

FILE_NAME = "spool.jsonl"


@dataclass(frozen=True)
class Entry:
    envelope: Envelope
    reason: str
    spooled_at: str


def append(path: Path, envelope: Envelope, reason: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {
            "spooled_at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "event": cloudevents.to_json(envelope),
        },
        separators=(",", ":"),
    )
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _parse(line: str) -> Entry:
    document: Any = json.loads(line)
    if not isinstance(document, dict) or not isinstance(document.get("event"), dict):
        raise BadInput("spool", "line is not a spooled event")
    return Entry(
        envelope=cloudevents.from_json(document["event"]),
        reason=str(document.get("reason", "")),
        spooled_at=str(document.get("spooled_at", "")),
    )


def read(path: Path) -> list[Entry]:
    """Every readable entry (for listing); unreadable lines are skipped."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            try:
                entries.append(_parse(line))
            except (ValueError, BadInput):
                continue
    return entries


def take(path: Path) -> tuple[Path | None, list[tuple[str, Entry | None]]]:
    """Move the spool aside and return (moved file, [(raw line, entry or None if unreadable)])."""
    if not path.exists():
        return None, []
    taken = path.with_name(path.name + f".replaying-{os.getpid()}")
    os.replace(path, taken)
    lines: list[tuple[str, Entry | None]] = []
    for line in taken.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            lines.append((line, _parse(line)))
        except (ValueError, BadInput):
            lines.append((line, None))
    return taken, lines


def give_back(path: Path, taken: Path, lines: list[str]) -> None:
    """Append the lines that could not be replayed back to the spool; drop the moved file."""
    if lines:
        with path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
    taken.unlink(missing_ok=True)
