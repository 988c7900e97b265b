"""Shared fixtures: a real PostgreSQL for the whole session, emptied between tests; the tiers.

TEST_DATABASE_URL points the suite at your own server (its tables are dropped and recreated);
otherwise an embedded PostgreSQL starts in a temporary directory and is removed at the end.

Tiers (`make test-fast` runs `-m "not slow and not postgres"`): a test that starts a process
(a function, the broker, the stack, a CLI or script) carries the `slow` marker, and one that is
not marked cannot start any: the attempt fails the test, so the markers stay true. A test that
uses the database gets the `postgres` marker here, from its fixtures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from modelstats.core import settings
from modelstats.local.stack.embedded import EmbeddedPostgres
from modelstats.store import db, migrate

ROOT = Path(__file__).resolve().parent.parent
# The processes the tests start (functions, broker, stack, CLIs) import this checkout's code too,
# whatever copy of modelstats the environment has installed.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
)
DATABASE_FIXTURES = {"postgres", "database_url", "clean_db"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(autouse=True)
def _processes_only_in_slow_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail a test that starts a process without the `slow` marker (session fixtures, such as
    the embedded PostgreSQL, are set up before this one and are not concerned)."""
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it slow")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


@pytest.fixture(autouse=True)
def _settings_of_the_environment() -> Iterator[None]:
    """Each test starts and ends with the settings the environment gives (a test changes them
    with tests/configuration.configure)."""
    settings.forget()
    yield
    settings.forget()


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
    # In the environment: the processes the tests start inherit it too.
    os.environ["DATABASE_URL"] = url
    settings.forget()
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
    yield database_url
    db.close_pools()
