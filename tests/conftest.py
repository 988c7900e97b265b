"""Shared fixtures: a real PostgreSQL for the whole session, emptied between tests.

TEST_DATABASE_URL points the suite at your own server (its tables are dropped and recreated);
otherwise an embedded PostgreSQL starts in a temporary directory and is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from modelstats.core import settings
from modelstats.local.embedded import EmbeddedPostgres
from modelstats.store import db, migrate

ROOT = Path(__file__).resolve().parent.parent


def _reset_schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres | None]:
    """The embedded server (None when TEST_DATABASE_URL is used)."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    home = Path(tempfile.mkdtemp(prefix="modelstats-test-"))
    server = EmbeddedPostgres(home / "pg")
    server.start()
    yield server
    server.remove()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres: EmbeddedPostgres | None) -> str:
    """A migrated, empty database; DATABASE_URL is set to it for the code under test."""
    url = os.environ.get("TEST_DATABASE_URL") or (postgres.url if postgres else "")
    _reset_schema(url)
    migrate.migrate(url)
    os.environ["DATABASE_URL"] = url
    settings.reset_settings()
    return url


TABLES_KEPT = {"schema_migrations"}


@pytest.fixture
def clean_db(database_url: str) -> Iterator[str]:
    """Every table emptied (and sample partitions dropped) before the test; pools closed after."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
                " AND NOT c.relispartition"
            )
            if row[0] not in TABLES_KEPT
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY")
        conn.execute("SELECT drop_sample_partitions_before('9999-01-01')")
    settings.reset_settings()
    yield database_url
    db.close_pools()
    settings.reset_settings()
