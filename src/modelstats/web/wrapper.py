"""The one wrapper that turns a function's core into a functions-framework function.

In the spirit of knative/func's Python template, a function is its handler plus lifecycle
callables passed in: `ready()` answers GET /healthz (200 with `{"status": "ok", ...what it
returns}`, or the error's status), `start()` runs once per worker process before the first
request it serves, `stop()` when that process exits. Everything else a handler used to repeat
is written here once: the health check, GET /metrics (Prometheus text, core/metrics.py),
405 for other methods, mapping errors to their status, timing each request into a histogram.
Two shapes:

- `cloudevent_function` wraps `handle(event)` for a function behind a Trigger: it reads the
  event within the size limit, answers with the reply (a CloudEvent, or an empty 204), and
  writes one INFO line for each event refused with a 4xx (`on_failure(error, event)` lets a
  function count its failures too).

      @cloudevent_function(ready=ready, start=outbox.start, stop=outbox.shutdown)
      async def alert(event: Event) -> CloudEvent | None:
          return await evaluation.handle(event)

- `http_function` serves a table of GET routes (web/routes.py), with an `authorize` rule for
  the routes that are not public:

      stats = http_function("stats", ROUTES, authorize=access.authorize, scrape=scrape)

`handle`, `ready` and the route handlers may be plain functions (run in the thread pool, so a
synchronous core never blocks the event loop) or coroutine functions (awaited).

When `start` and `stop` run, and why then: web/lifecycle.py.

Importing this module also gives the function's uvicorn workers the connection limits of
web/connections.py: a head cap (431), a head deadline (408), a bounded drain after an answer.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import functions_framework.aio
from cloudevents.http import CloudEvent
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from modelstats.core import logs, metrics
from modelstats.core.cloudevents import Event
from modelstats.core.errors import (
    BadInput,
    MethodNotAllowed,
    ModelstatsError,
    NotFound,
    PayloadTooLarge,
)
from modelstats.store import db
from modelstats.web import connections
from modelstats.web.bodies import read_event
from modelstats.web.lifecycle import Lifecycle, Start, Stop
from modelstats.web.responses import error_response, event_response, json_response
from modelstats.web.routes import Route, find

Handle = Callable[[Event], CloudEvent | None] | Callable[[Event], Awaitable[CloudEvent | None]]
Ready = Callable[[], Mapping[str, Any] | None] | Callable[[], Awaitable[Mapping[str, Any] | None]]
OnFailure = Callable[[ModelstatsError, Event | None], None]
Authorize = Callable[[Request], None]
Scrape = Callable[[Request], Awaitable[Sequence[Collector]]]
HttpFunction = Callable[[Request], Awaitable[Response]]

log = logging.getLogger("modelstats.events")

# Every function imports this module from its main.py, in gunicorn's master: its workers get
# the head cap (431), the head deadline (408) and the lingering drain (web/connections.py).
connections.guard_function_workers()

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
# The route label of event deliveries (Knative posts them to "/").
EVENT_ROUTE = "/"
# The route label of an HTTP function's 404 for a path no route matches.
UNMATCHED = "unmatched"
UNTIMED = (HEALTH_PATH, METRICS_PATH)


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


def _register(function: HttpFunction, name: str, doc: str | None) -> HttpFunction:
    """Register `function` under `name` as an ASGI http function, so `--target <name>` serves
    it (functions-framework's own wrapper around it only passes through)."""
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    functions_framework.aio.http(function)
    return function


def cloudevent_function(
    *,
    ready: Ready = database_ready,
    start: Start | None = None,
    stop: Stop | None = None,
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
        lifecycle = Lifecycle(name, start, stop)
        timer = metrics.Children(metrics.REQUEST_SECONDS, name)

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
            await lifecycle.started()
            if request.method == "GET" and request.url.path == HEALTH_PATH:
                return await health(ready)
            if request.method == "GET" and request.url.path == METRICS_PATH:
                return metrics_response(request)
            if request.method != "POST":
                raise MethodNotAllowed("POST")
            return await deliver(request)

        async def function(request: Request) -> Response:
            if request.method != "POST":
                return await answer(lambda: respond(request))
            began = time.perf_counter()
            response = await answer(lambda: respond(request))
            timer(EVENT_ROUTE, str(response.status_code)).observe(time.perf_counter() - began)
            return response

        return _register(function, name, handle.__doc__)

    return decorate


def builtin_routes(ready: Ready, scrape: Scrape | None) -> list[Route]:
    """The routes every HTTP function serves before its own: GET /healthz (public) and
    GET /metrics (the function's `authorize` rule applies, as to its data)."""

    async def healthz(request: Request, path: dict[str, str]) -> Response:
        return await health(ready)

    async def scraped(request: Request, path: dict[str, str]) -> Response:
        extra = tuple(await scrape(request)) if scrape is not None else ()
        return metrics_response(request, extra)

    return [Route(HEALTH_PATH, healthz, public=True), Route(METRICS_PATH, scraped)]


def http_function(
    name: str,
    routes: Sequence[Route],
    *,
    ready: Ready = database_ready,
    start: Start | None = None,
    stop: Stop | None = None,
    authorize: Authorize | None = None,
    scrape: Scrape | None = None,
) -> HttpFunction:
    """A GET API as a function registered under `name`: the first route matching the path
    answers (405 for another method, 404 when none matches), after `authorize(request)` unless
    the route is public. The same start, stop, health check, metrics, error answers and timing
    as a CloudEvent function; `scrape(request)` adds collectors to GET /metrics (and may
    refuse the request). Each answer is timed under its route's pattern (`unmatched` for a
    404 of no route); /healthz and /metrics are not timed."""
    lifecycle = Lifecycle(name, start, stop)
    timer = metrics.Children(metrics.REQUEST_SECONDS, name)
    table = [*builtin_routes(ready, scrape), *routes]

    async def respond(request: Request, matched: list[Route]) -> Response:
        await lifecycle.started()
        found = find(table, request)
        if found is None:
            raise NotFound(f"no such path: {request.url.path}")
        route, params = found
        matched.append(route)
        if request.method != "GET":
            raise MethodNotAllowed("GET")
        if authorize is not None and not route.public:
            authorize(request)
        return await route.handler(request, params)

    async def function(request: Request) -> Response:
        began = time.perf_counter()
        matched: list[Route] = []
        response = await answer(lambda: respond(request, matched))
        pattern = matched[0].pattern if matched else UNMATCHED
        if pattern not in UNTIMED:
            timer(pattern, str(response.status_code)).observe(time.perf_counter() - began)
        return response

    return _register(function, name, None)
