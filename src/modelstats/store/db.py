"""Connections to PostgreSQL: lazily opened pools, and psycopg errors translated where they enter.

functions-framework imports `main.py` in gunicorn's master before it forks workers, so nothing
here connects at import: each pool opens on first use, in the process that uses it (a pool
inherited across a fork is discarded and reopened).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from modelstats.core.errors import DatabaseUnavailable
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
        "application_name": os.environ.get("K_SERVICE", "modelstats"),
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


class _PoolHolder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._pool: ConnectionPool[Any] | None = None
        self._async_pool: AsyncConnectionPool[Any] | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # A pool copied from the parent process must not be used (its sockets are shared).
            self._pool = None
            self._async_pool = None
            self._pid = os.getpid()

    def pool(self) -> ConnectionPool[Any]:
        with self._lock:
            self._check_fork()
            if self._pool is None:
                pool: ConnectionPool[Any] = ConnectionPool(
                    **_pool_options(), check=_check, reset=_note_return, name="modelstats"
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

    async def async_pool(self) -> AsyncConnectionPool[Any]:
        with self._lock:
            self._check_fork()
            # An async pool belongs to the event loop that opened it.
            loop = asyncio.get_running_loop()
            created = self._async_pool is None or self._async_loop is not loop
            if created:
                self._async_loop = loop
                self._async_pool = AsyncConnectionPool(
                    **_pool_options(),
                    check=_check_async,
                    reset=_note_return_async,
                    name="modelstats-async",
                )
            pool = self._async_pool
        assert pool is not None
        if created:
            await pool.open(wait=False)
        return pool

    async def close_async(self) -> None:
        """Close the async pool if it belongs to the running loop."""
        with self._lock:
            pool, mine = self._async_pool, self._async_loop is asyncio.get_running_loop()
            if mine:
                self._async_pool = None
                self._async_loop = None
        if pool is not None and mine:
            await pool.close()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None
            self._async_pool = None


_holder = _PoolHolder()


@contextmanager
def connection() -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection; the block runs in a transaction committed on success."""
    with translate_errors(), _holder.pool().connection() as conn:
        yield conn


@asynccontextmanager
async def async_connection() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    pool = await _holder.async_pool()
    with translate_errors():
        async with pool.connection() as conn:
            yield conn


async def close_async_pool() -> None:
    """Close this event loop's async pool (a one-shot loop, e.g. a test, before it ends)."""
    await _holder.close_async()


def close_pools() -> None:
    """Close the pools of this process (tests, and the CLI on exit)."""
    _holder.close()


def ping() -> None:
    """Raise DatabaseUnavailable unless a trivial query succeeds."""
    with connection() as conn:
        conn.execute("SELECT 1")
