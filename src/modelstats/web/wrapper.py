"""The one wrapper that turns a function's `handle(event)` into a functions-framework function.

In the spirit of knative/func's Python template, a function is its `handle` plus lifecycle
callables passed in: `ready()` answers GET /healthz (200 with `{"status": "ok", ...what it
returns}`, or the error's status), `start()` runs once per worker process before the first
request it serves. Everything else a handler used to repeat is written here once: the health
check, GET /metrics (Prometheus text, core/metrics.py), 405 for other methods, reading the
event within the size limit, mapping errors to their status, answering with the reply (a
CloudEvent, or an empty 204), timing each event into a histogram, and one INFO line for each
event refused with a 4xx (`on_failure(error, event)` lets a function count its failures too).

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
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import functions_framework.aio
from cloudevents.http import CloudEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from modelstats.core import logs, metrics
from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput, MethodNotAllowed, ModelstatsError, PayloadTooLarge
from modelstats.core.settings import get_settings
from modelstats.store import db
from modelstats.web.bodies import read_event
from modelstats.web.responses import error_response, event_response, json_response

Handle = Callable[[Event], CloudEvent | None] | Callable[[Event], Awaitable[CloudEvent | None]]
Ready = Callable[[], Mapping[str, Any] | None] | Callable[[], Awaitable[Mapping[str, Any] | None]]
Start = Callable[[], None]
OnFailure = Callable[[ModelstatsError, Event | None], None]
HttpFunction = Callable[[Request], Awaitable[Response]]

log = logging.getLogger("modelstats.events")

# The route label of event deliveries (Knative posts them to "/").
EVENT_ROUTE = "/"


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


def metrics_response(request: Request, extra: tuple[Any, ...] = ()) -> Response:
    """GET /metrics: the scrape, in the format the scraper's Accept header asks for."""
    body, content_type = metrics.exposition(request.headers.get("accept", ""), extra)
    return Response(body, headers={"content-type": content_type})


async def answer(respond: Callable[[], Awaitable[Response]]) -> Response:
    """`respond()`, with any ModelstatsError answered through the one status table."""
    try:
        return await respond()
    except ModelstatsError as error:
        return error_response(error)


class StartOnce:
    """Runs once per process (a forked worker runs its own), before its first request: logging
    configured, then `start()`; retried if it fails."""

    def __init__(self, function: str, start: Start | None):
        self._function = function
        self._start = start
        self._pid = 0
        self._lock = threading.Lock()

    def _run(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                logs.configure(get_settings().extra.get("K_SERVICE") or self._function)
                if self._start is not None:
                    self._start()
                self._pid = os.getpid()

    async def __call__(self) -> None:
        if self._pid != os.getpid():
            await run_in_threadpool(self._run)


def rejection_reason(error: ModelstatsError, event: Event | None) -> str:
    """The class of a 4xx refusal, for a metric label: a small fixed set."""
    if isinstance(error, PayloadTooLarge):
        return "too_large"
    if event is None:
        return "not_cloudevent"
    if isinstance(error, BadInput) and error.field == "type":
        return "wrong_type"
    return "invalid_data"


def log_rejection(error: ModelstatsError, event: Event | None, request: Request) -> None:
    """One INFO line per refused event, naming it, the field and why (the same words the
    sender gets in the 400 body, which Knative keeps only in the dead letter)."""
    headers = request.headers
    source = event.source if event else headers.get("ce-source", "?")
    event_id = event.id if event else headers.get("ce-id", "?")
    field = logs.clip(error.field) if isinstance(error, BadInput) else ""
    message = error.message if isinstance(error, BadInput) else str(error)
    event_type = event.type if event else headers.get("ce-type", "?")
    log.info(
        "rejected event %s from %s: %s: %s",
        logs.clip(event_id),
        logs.clip(source),
        field,
        logs.clip(message),
        extra={
            "fields": {
                "source": logs.clip(source),
                "id": logs.clip(event_id),
                "type": logs.clip(event_type),
                "field": field,
                "message": logs.clip(message),
                "reason": rejection_reason(error, event),
            }
        },
    )


def cloudevent_function(
    *,
    ready: Ready = database_ready,
    start: Start | None = None,
    strict: bool = True,
    on_failure: OnFailure | None = None,
) -> Callable[[Handle], HttpFunction]:
    """Decorate `handle(event)`; the result is registered under its name as an `aio.http`
    function, so `--target <name>` serves it. `strict=False` leaves data uninterpreted,
    the raw bytes that arrived, and attribute values unjudged (the dead-letter sink keeps
    whatever it is given).
    `on_failure(error, event)` is called for every event answered with an error status
    (`event` is None when the request was not a CloudEvent)."""

    def decorate(handle: Handle) -> HttpFunction:
        name = handle.__name__
        started = StartOnce(name, start)
        timer = metrics.Children(metrics.REQUEST_SECONDS, name, EVENT_ROUTE)

        async def deliver(request: Request) -> Response:
            event: Event | None = None
            try:
                event = await read_event(request, strict=strict)
                reply: CloudEvent | None = await call(handle, event)
            except ModelstatsError as error:
                if isinstance(error, BadInput):
                    log_rejection(error, event, request)
                if on_failure is not None:
                    on_failure(error, event)
                raise
            return event_response(reply)

        async def respond(request: Request) -> Response:
            await started()
            if request.method == "GET" and request.url.path == "/healthz":
                return await health(ready)
            if request.method == "GET" and request.url.path == "/metrics":
                return metrics_response(request)
            if request.method != "POST":
                raise MethodNotAllowed("POST")
            return await deliver(request)

        async def function(request: Request) -> Response:
            if request.method != "POST":
                return await answer(lambda: respond(request))
            began = time.perf_counter()
            response = await answer(lambda: respond(request))
            timer(str(response.status_code)).observe(time.perf_counter() - began)
            return response

        function.__name__ = function.__qualname__ = name
        function.__doc__ = handle.__doc__
        # Registers the name as an ASGI http function; its own wrapper only passes through.
        functions_framework.aio.http(function)
        return function

    return decorate
