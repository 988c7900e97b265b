"""Connections to PostgreSQL: lazily opened pools, and psycopg errors translated where they enter.

functions-framework imports `main.py` in gunicorn's master before it forks workers, so nothing
here connects at import: each pool opens on first use, in the process that uses it (a pool
inherited across a fork is left alone and another opened: core/holder.py).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
from psycopg_pool.base import AttemptWithBackoff

from modelstats.core.errors import BadInput, DatabaseUnavailable, InternalError, ModelstatsError
from modelstats.core.holder import Holder
from modelstats.core.settings import get_settings

log = logging.getLogger("modelstats.store")

# What means "not now" rather than "not this" (retried: 503). SQLSTATE classes 08 (connection
# exception) and 53 (insufficient resources: too many connections, disk full, out of memory);
# 57P0x (admin or crash shutdown, cannot connect now) and 57014 (a statement cancelled by its
# timeout under load). Everything else is about the statement or its values and would fail
# the same way again: a data exception (class 22) or a program limit (54) is the values' fault.
_UNAVAILABLE_CLASSES = ("08", "53", "57P")
_UNAVAILABLE_STATES = frozenset({"57014"})
_REFUSED_VALUE_CLASSES = ("22", "54")


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database is away or overloaded (worth retrying as is)."""
    if isinstance(error, DatabaseUnavailable | PoolTimeout | psycopg.InterfaceError):
        return True  # no connection within the pool's timeout, or a connection closed under us
    if not isinstance(error, psycopg.Error):
        return False
    state = error.sqlstate
    if state is None:
        # Raised by libpq, not the server: could not connect, or the server closed the
        # connection; an error the server answered carries a SQLSTATE.
        return isinstance(error, psycopg.OperationalError)
    return state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES


def refused_values(error: BaseException) -> bool:
    """Whether `error` refuses the values written (text with no UTF-8 form, which psycopg
    cannot send; a data exception or a program limit from the server)."""
    if isinstance(error, UnicodeError):
        return True
    state = error.sqlstate if isinstance(error, psycopg.Error) else None
    return state is not None and state.startswith(_REFUSED_VALUE_CLASSES)


def judge(error: Exception) -> ModelstatsError:
    """The typed error a write that failed for ONE event alone means for that event: the
    database away (503), its values refused (400: nothing else shared its write), or a bug
    (500, logged here with its traceback, once)."""
    if isinstance(error, ModelstatsError):
        return error
    if is_unavailable(error):
        return DatabaseUnavailable(f"database unavailable: {error}")
    if refused_values(error):
        return BadInput("data", f"the store refused a value: {_first_line(error)}")
    log.error("writing an event failed: %s", _first_line(error), exc_info=error)
    return InternalError(f"{type(error).__name__}: {_first_line(error)}")


def _first_line(error: BaseException) -> str:
    return str(error).strip().split("\n", 1)[0]


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


# How soon ingest answers again once PostgreSQL is back, two delays of psycopg_pool's decide:
# - it retries a failed connection after 1 s, doubling each time for as long as its reconnect
#   timeout (5 minutes): the attempt that succeeds could come as late as the outage was long
#   (about 9 s after a 20 s outage). Connecting to a server that is away is refused at once,
#   so the delay here starts at 0.1 s and stays under a second;
# - a request that draws a connection which fails its check sleeps (1 s, 2 s, ...) before it
#   draws the next; after a restart every idle connection is stale, so a failed check tests
#   them all at once (`check()`), and the next draw finds live ones or waits for new ones.
RECONNECT_INITIAL_DELAY = 0.1
RECONNECT_MAX_DELAY = 1.0


class _Reconnection(AttemptWithBackoff):
    INITIAL_DELAY = RECONNECT_INITIAL_DELAY

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_MAX_DELAY)


class _Pool(ConnectionPool[Any]):
    def __init__(self, **options: Any):
        super().__init__(**options, check=self._check_idle, reset=_note_return)

    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        super()._add_connection(attempt or _Reconnection(timeout=self.reconnect_timeout), growing)

    def _check_idle(self, conn: psycopg.Connection[Any]) -> None:
        if _recently_used(conn):
            return
        try:
            self.check_connection(conn)
        except Exception:
            self.check()
            raise


class _AsyncPool(AsyncConnectionPool[Any]):
    def __init__(self, **options: Any):
        super().__init__(**options, check=self._check_idle, reset=_note_return_async)

    async def _add_connection(
        self, attempt: AttemptWithBackoff | None, growing: bool = False
    ) -> None:
        attempt = attempt or _Reconnection(timeout=self.reconnect_timeout)
        await super()._add_connection(attempt, growing)

    async def _check_idle(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if _recently_used(conn):
            return
        try:
            await self.check_connection(conn)
        except Exception:
            await self.check()
            raise


def _open_pool() -> ConnectionPool[Any]:
    pool = _Pool(**_pool_options(), name="modelstats")
    pool.open(wait=False)
    return pool


def _async_pool() -> AsyncConnectionPool[Any]:
    # Opened by its first user, a coroutine on the loop the pool belongs to.
    return _AsyncPool(**_pool_options(), name="modelstats-async")


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
