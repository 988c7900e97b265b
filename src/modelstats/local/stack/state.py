"""`<data-dir>/stack.json`: what a running `modelstats run` is (URLs, pids, database URL), for
the commands that need its broker or database and for the tests. `StackState` is the one reader
and writer of the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "stack.json"


@dataclass(frozen=True)
class ProcessState:
    url: str
    pid: int | None


@dataclass(frozen=True)
class PostgresState:
    """The embedded PostgreSQL: its postmaster and its cluster directory."""

    pid: int | None
    data_dir: str


@dataclass(frozen=True)
class StackState:
    # The `modelstats run` process itself.
    pid: int
    # The ingress URL of the manifests' first Broker.
    broker: str
    database_url: str
    stats: str = ""
    reader_url: str | None = None
    etl_root: str = ""
    embedded_database: bool = False
    # Every function's process, and the broker's, by name.
    processes: dict[str, ProcessState] = field(default_factory=dict)
    postgres: PostgresState | None = None

    def write(self, data_dir: Path) -> None:
        """Rewritten on every restart: a reader sees the old file or the new one, never half."""
        partial = data_dir / (STATE_FILE + ".new")
        partial.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n", "utf-8")
        os.replace(partial, data_dir / STATE_FILE)

    @classmethod
    def read(cls, data_dir: Path) -> StackState | None:
        """The file as written, or None when there is none (or not one this version wrote)."""
        try:
            document: Any = json.loads((data_dir / STATE_FILE).read_text("utf-8"))
            return cls._from_document(document)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None

    @classmethod
    def _from_document(cls, document: dict[str, Any]) -> StackState:
        processes = {name: ProcessState(**p) for name, p in document.pop("processes", {}).items()}
        postgres = document.pop("postgres", None)
        state = cls(
            **document,
            processes=processes,
            postgres=PostgresState(**postgres) if postgres else None,
        )
        if not isinstance(state.pid, int):
            raise TypeError("pid")
        return state

    @classmethod
    def running(cls, data_dir: Path) -> StackState | None:
        """The state of the stack running in `data_dir`; None when none is (a stack killed with
        SIGKILL leaves its stack.json behind: its pid is gone)."""
        state = cls.read(data_dir)
        if state is None:
            return None
        try:
            os.kill(state.pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
        return state

    @staticmethod
    def remove(data_dir: Path) -> None:
        with contextlib.suppress(OSError):
            (data_dir / STATE_FILE).unlink()
