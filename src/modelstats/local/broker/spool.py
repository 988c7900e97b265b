"""The local spool: events that even the dead-letter sink refused, one JSON line each.

Appended by the broker (one `open(..., "a")` per line or per batch, so writers never
interleave; each fsynced before it counts as spooled) up to a size cap, past which it refuses
rather than fill the disk; drained by `modelstats replay`, which first renames the file so that
lines appended meanwhile are kept for the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelstats.core import cloudevents
from modelstats.core.cloudevents import Envelope
from modelstats.core.errors import BadInput, ModelstatsError

FILE_NAME = "spool.jsonl"
DEFAULT_MAX_BYTES = 1024**3


class SpoolFull(ModelstatsError):
    """Appending would take the spool past its size cap."""


class Spool:
    """The broker's spool file: `put` appends one line (fsynced), or, inside `batch()`, holds
    it until the batch ends and writes them all with one fsync (a stopping broker spools
    hundreds of events at once)."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES):
        self.path = path
        self.max_bytes = max_bytes
        self._pending: list[str] | None = None
        self._pending_bytes = 0

    def _size(self) -> int:
        # Read each time: `modelstats replay` moves the file away while the broker runs.
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def put(self, envelope: Envelope, reason: str) -> None:
        """Append (or hold, in a batch); SpoolFull past the cap, OSError if it cannot write."""
        text = line(envelope, reason) + "\n"
        size = len(text.encode())
        if self._size() + self._pending_bytes + size > self.max_bytes:
            raise SpoolFull(f"the spool {self.path} would pass its cap of {self.max_bytes} bytes")
        if self._pending is not None:
            self._pending.append(text)
            self._pending_bytes += size
            return
        _write(self.path, [text])

    @property
    def batching(self) -> bool:
        return self._pending is not None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Lines put meanwhile are written together, with one fsync, when the block ends."""
        self._pending, self._pending_bytes = [], 0
        try:
            yield
        finally:
            lines, self._pending, self._pending_bytes = self._pending, None, 0
            if lines:
                _write(self.path, lines)


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(lines))
        handle.flush()
        os.fsync(handle.fileno())


def line(envelope: Envelope, reason: str) -> str:
    """One spool line (without its newline), spooled now."""
    return json.dumps(
        {
            "spooled_at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "event": cloudevents.to_json(envelope),
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Entry:
    envelope: Envelope
    reason: str
    spooled_at: str


def append(path: Path, envelope: Envelope, reason: str) -> None:
    """One line, fsynced, without a cap (tests and tools)."""
    _write(path, [line(envelope, reason) + "\n"])


def _parse(line: str) -> Entry:
    document: Any = json.loads(line)
    if not isinstance(document, dict) or not isinstance(document.get("event"), dict):
        raise BadInput("spool", "line is not a spooled event")
    return Entry(
        envelope=cloudevents.from_json(document["event"]),
        reason=str(document.get("reason", "")),
        spooled_at=str(document.get("spooled_at", "")),
    )


def count(path: Path) -> int:
    """How many events wait in the spool (its lines, read or not)."""
    try:
        with path.open("rb") as handle:
            return sum(1 for raw in handle if raw.strip())
    except FileNotFoundError:
        return 0


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
