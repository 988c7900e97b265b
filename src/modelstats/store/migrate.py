"""Versioned schema migrations: `migrations/NNNN_name.sql`, applied in order, each once.

Safe when several pods run it at once: a session advisory lock lets one migrate while the
others wait, then find nothing left to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import scalar_row

from modelstats.store.db import translate_errors

_LOCK_KEY = 0x6D6F64656C  # "model": any constant shared by every migrating process
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("modelstats.store.migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


def apply(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Apply pending migrations on an autocommit connection; return those applied."""
    applied: list[Migration] = []
    with translate_errors():
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            versions = conn.cursor(row_factory=scalar_row)
            done = set(versions.execute("SELECT version FROM schema_migrations").fetchall())
            for migration in available():
                if migration.version in done:
                    continue
                with conn.transaction():
                    # Migration files ship with the package; they are not input.
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def migrate(url: str) -> list[Migration]:
    with translate_errors(), psycopg.connect(url, autocommit=True) as conn:
        return apply(conn)
