"""Connections to PostgreSQL: lazily opened pools, and psycopg errors translated where they enter.

functions-framework imports `main.py` in gunicorn's master before it forks workers, so nothing
here connects at import: each pool opens on first use, in the process that uses it (a pool
inherited across a fork is left alone and another opened: core/holder.py).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from modelstats.core.errors import DatabaseUnavailable
from modelstats.core.holder import Holder
from modelstats.core.settings import get_settings

# SQLSTATE classes that mean "the server is not there or not usable right now".
_UNAVAILABLE_STATES = ("08", "57P", "53")


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, psycopg.OperationalError | PoolTimeout | psycopg.InterfaceError):
        return True
    state = getattr(error, "sqlstate", None) or ""
    return state.startswith(_UNAVAILABLE_STATES)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn connection-level psycopg failures into DatabaseUnavailable (HTTP 503)."""
    try:
        yield
    except DatabaseUnavailable:
        raise
    except (psycopg.Error, PoolTimeout) as error:
        if is_unavailable(error):
            raise DatabaseUnavailable(f"database unavailable: {error}") from error
        raise


def connect_kwargs() -> dict[str, Any]:
    settings = get_settings()
    return {
        "options": f"-c statement_timeout={settings.statement_timeout_ms}",
        "application_name": settings.extra.get("K_SERVICE") or "modelstats",
    }


def connect(autocommit: bool = False) -> psycopg.Connection[Any]:
    """A single connection outside the pools (CLI commands, migrations)."""
    url = get_settings().require_database_url()
    with translate_errors():
        return psycopg.connect(url, autocommit=autocommit, **connect_kwargs())


# A connection handed back less than this long ago is handed out again without a check: the
# check is a round trip per request (15% of the alert function's samples under load), and what
# it guards against (a server restart, an idle timeout) happens to connections left idle.
CHECK_AFTER_IDLE_SECONDS = 2.0
_returned_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def _note_return(conn: Any) -> None:
    _returned_at[conn] = time.monotonic()


async def _note_return_async(conn: Any) -> None:
    _note_return(conn)


def _recently_used(conn: Any) -> bool:
    return time.monotonic() - _returned_at.get(conn, float("-inf")) < CHECK_AFTER_IDLE_SECONDS


def _check(conn: psycopg.Connection[Any]) -> None:
    if not _recently_used(conn):
        ConnectionPool.check_connection(conn)


async def _check_async(conn: psycopg.AsyncConnection[Any]) -> None:
    if not _recently_used(conn):
        await AsyncConnectionPool.check_connection(conn)


def _pool_options() -> dict[str, Any]:
    settings = get_settings()
    return {
        "conninfo": settings.require_database_url(),
        "min_size": 1,
        "max_size": settings.pool_size,
        "kwargs": connect_kwargs(),
        "timeout": settings.pool_timeout_s,
        "max_idle": 300,
        "open": False,
    }


def _open_pool() -> ConnectionPool[Any]:
    pool: ConnectionPool[Any] = ConnectionPool(
        **_pool_options(), check=_check, reset=_note_return, name="modelstats"
    )
    pool.open(wait=False)
    return pool


def _async_pool() -> AsyncConnectionPool[Any]:
    # Opened by its first user, a coroutine on the loop the pool belongs to.
    return AsyncConnectionPool(
        **_pool_options(), check=_check_async, reset=_note_return_async, name="modelstats-async"
    )


# A pool inherited across a fork is not used (its sockets are the parent's): the child opens
# its own. An async pool belongs to the event loop that opened it.
_pool: Holder[ConnectionPool[Any]] = Holder(_open_pool)
_async_pools: Holder[AsyncConnectionPool[Any]] = Holder(_async_pool, per_loop=True)


@contextmanager
def connection() -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection; the block runs in a transaction committed on success."""
    with translate_errors(), _pool.get().connection() as conn:
        yield conn


@asynccontextmanager
async def async_connection() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    pool = _async_pools.get()
    if pool.closed:
        await pool.open(wait=False)  # opening an open pool again does nothing
    with translate_errors():
        async with pool.connection() as conn:
            yield conn


async def close_async_pool() -> None:
    """Close this event loop's async pool (a one-shot loop, e.g. a test, before it ends)."""
    pool = _async_pools.take()
    if pool is not None:
        await pool.close()


def close_pools() -> None:
    """Close this process's pool (tests, the CLI, a function's worker on exit); an async pool
    is closed on its own loop (close_async_pool)."""
    pool = _pool.take()
    if pool is not None:
        pool.close()


def ping() -> None:
    """Raise DatabaseUnavailable unless a trivial query succeeds."""
    with connection() as conn:
        conn.execute("SELECT 1")
