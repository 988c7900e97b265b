"""The one wrapper that turns a function's `handle(event)` into a functions-framework function.

In the spirit of knative/func's Python template, a function is its `handle` plus lifecycle
callables passed in: `ready()` answers GET /healthz (200 with `{"status": "ok", ...what it
returns}`, or the error's status), `start()` runs once per worker process before the first
request it serves. Everything else a handler used to repeat is written here once: the health
check, 405 for other methods, reading the event within the size limit, mapping errors to their
status and answering with the reply (a CloudEvent, or an empty 204).

    @cloudevent_function(ready=db.ping, start=outbox.start)
    def alert(event: Event) -> CloudEvent | None:
        return evaluation.handle(event).reply

`handle`, `ready` and `start` may be plain functions (run in the thread pool, so a synchronous
core never blocks the event loop) or coroutine functions (awaited).

Why `start` runs on the first request and not at start-up: functions-framework imports
`main.py` in gunicorn's master before the fork and builds its Starlette app without a lifespan
hook, so the first request is the first moment that is surely in the worker process. The pid
is checked, so a forked worker starts its own.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import functions_framework.aio
from cloudevents.http import CloudEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from modelstats.core.cloudevents import Event
from modelstats.core.errors import MethodNotAllowed, ModelstatsError
from modelstats.store import db
from modelstats.web.bodies import read_event
from modelstats.web.responses import error_response, event_response, json_response

Handle = Callable[[Event], CloudEvent | None] | Callable[[Event], Awaitable[CloudEvent | None]]
Ready = Callable[[], Mapping[str, Any] | None] | Callable[[], Awaitable[Mapping[str, Any] | None]]
Start = Callable[[], None]
HttpFunction = Callable[[Request], Awaitable[Response]]


async def call(function: Callable[..., Any], *args: Any) -> Any:
    """Await a coroutine function; run a plain one in the thread pool."""
    if inspect.iscoroutinefunction(function):
        return await function(*args)
    return await run_in_threadpool(function, *args)


async def database_ready() -> None:
    """The default readiness: PostgreSQL answers (through this process's async pool)."""
    async with db.async_connection() as conn:
        await conn.execute("SELECT 1")


async def health(ready: Ready) -> Response:
    """GET /healthz: 200 with `ready()`'s details, or the status of the error it raised."""
    try:
        details = await call(ready)
    except ModelstatsError as error:
        return error_response(error)
    return json_response({"status": "ok", **(details or {})})


async def answer(respond: Callable[[], Awaitable[Response]]) -> Response:
    """`respond()`, with any ModelstatsError answered through the one status table."""
    try:
        return await respond()
    except ModelstatsError as error:
        return error_response(error)


class StartOnce:
    """Runs `start()` once per process (a forked worker runs its own); retried if it fails."""

    def __init__(self, start: Start | None):
        self._start = start
        self._pid = 0
        self._lock = threading.Lock()

    def _run(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                if self._start is not None:
                    self._start()
                self._pid = os.getpid()

    async def __call__(self) -> None:
        if self._pid != os.getpid():
            await run_in_threadpool(self._run)


def cloudevent_function(
    *, ready: Ready = database_ready, start: Start | None = None, strict_data: bool = True
) -> Callable[[Handle], HttpFunction]:
    """Decorate `handle(event)`; the result is registered under its name as an `aio.http`
    function, so `--target <name>` serves it. `strict_data=False` leaves data uninterpreted,
    the raw bytes that arrived (the dead-letter sink keeps whatever it is given)."""

    def decorate(handle: Handle) -> HttpFunction:
        started = StartOnce(start)

        async def respond(request: Request) -> Response:
            await started()
            if request.method == "GET" and request.url.path == "/healthz":
                return await health(ready)
            if request.method != "POST":
                raise MethodNotAllowed("POST")
            event = await read_event(request, strict_data=strict_data)
            reply: CloudEvent | None = await call(handle, event)
            return event_response(reply)

        async def function(request: Request) -> Response:
            return await answer(lambda: respond(request))

        function.__name__ = function.__qualname__ = handle.__name__
        function.__doc__ = handle.__doc__
        # Registers the name as an ASGI http function; its own wrapper only passes through.
        functions_framework.aio.http(function)
        return function

    return decorate
