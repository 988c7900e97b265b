"""Log files read incrementally: identity, offsets, complete lines only, a byte budget per run.

A file is known by its device and inode (so a rename inside the watched directory keeps its
offset) plus a SHA-256 of its first bytes: a different head under the same inode (the inode was
reused, or the file was truncated and rewritten: copytruncate rotation) means a new file, read
from the start; so does a file shorter than the offset we had. Only complete lines (ending in a
newline) are consumed: a line still being written is left for the next run. A line longer than
MAX_LINE is skipped as a whole (and counted as bad by the caller).

Rotation: a file renamed to a name the job still reads (`app-2026-11-27.jsonl` in the same
directory) keeps its offset and its tail is read; renamed out of sight (`app.jsonl.1`), lines
written after the last run and before the rename are not read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from modelstats.etl import confined

HEAD_BYTES = 256
MAX_LINE = 1024 * 1024


@dataclass(frozen=True)
class FileState:
    """Where reading of one file stopped: the first byte not yet consumed."""

    device: int
    inode: int
    path: str
    offset: int
    head_length: int
    head_sha256: bytes

    @property
    def key(self) -> tuple[int, int]:
        return (self.device, self.inode)


@dataclass
class Chunk:
    """What one run read from one file."""

    state: FileState  # after this run
    start: int  # offset before this run
    lines: list[bytes] = field(default_factory=list)
    overlong: int = 0  # lines longer than MAX_LINE, skipped
    # Reading stopped for the byte budget with bytes left: later lines may be older than the
    # horizon the lines read so far suggest.
    backlog: bool = False

    @property
    def token(self) -> str:
        """The byte range consumed, for deriving event ids."""
        return f"{self.state.device}:{self.state.inode}:{self.start}:{self.state.offset}"


def discover(path: str, field_name: str = "data.path") -> list[Path]:
    """The file itself, or every regular `*.jsonl` file of a directory (sorted by name), under
    ETL_ROOT and reached without following links (see confined)."""
    return confined.discover(path, field_name)


def _head(handle: BinaryIO, length: int) -> bytes:
    handle.seek(0)
    return hashlib.sha256(handle.read(length)).digest()


def _resume_at(handle: BinaryIO, size: int, known: FileState | None) -> int:
    if known is None or size < known.offset or size < known.head_length:
        return 0
    return known.offset if _head(handle, known.head_length) == known.head_sha256 else 0


def _read_lines(handle: BinaryIO, chunk: Chunk, budget: int) -> int:
    """Consume complete lines from the current position; return the bytes consumed."""
    consumed = 0
    offset = chunk.start
    while consumed < budget:
        line = handle.readline(MAX_LINE + 1)
        if not line.endswith(b"\n"):
            if len(line) <= MAX_LINE:
                break  # end of file inside a line still being written
            # Too long: skip to its newline, unless that is not written yet.
            skipped = len(line)
            while True:
                piece = handle.readline(MAX_LINE)
                skipped += len(piece)
                if piece.endswith(b"\n") or not piece:
                    break
            if not piece:
                break
            chunk.overlong += 1
            offset += skipped
            consumed += skipped
            continue
        chunk.lines.append(line)
        offset += len(line)
        consumed += len(line)
    chunk.state = replace(chunk.state, offset=offset)
    return consumed


def read(
    paths: Iterable[Path], known: dict[tuple[int, int], FileState], budget: int
) -> list[Chunk]:
    """Read new complete lines from each file, at most about `budget` bytes in all."""
    chunks = []
    for path in paths:
        try:
            handle = confined.open_file(str(path), "data.path")
        except FileNotFoundError:
            continue  # removed between listing and opening: nothing to read
        with handle:
            info = os.fstat(handle.fileno())
            start = _resume_at(handle, info.st_size, known.get((info.st_dev, info.st_ino)))
            head_length = min(info.st_size, HEAD_BYTES)
            state = FileState(
                device=info.st_dev,
                inode=info.st_ino,
                path=str(path),
                offset=start,
                head_length=head_length,
                head_sha256=_head(handle, head_length),
            )
            chunk = Chunk(state=state, start=start)
            if budget > 0:
                handle.seek(start)
                budget -= _read_lines(handle, chunk, budget)
            chunk.backlog = budget <= 0 and chunk.state.offset < info.st_size
            chunks.append(chunk)
    return chunks
