"""The stats function (target `stats`): read-only HTTP API over the stored samples.

ROUTES is the whole API beside the wrapper's GET /healthz and GET /metrics: a path pattern and
a handler each (see modelstats.web.routes). To add a route, write a handler here (parse -> call
the core -> respond), add one line to ROUTES, and document it with one entry in
modelstats.stats.openapi.PATHS.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from modelstats.core import timestamps
from modelstats.stats import (
    access,
    accuracy,
    csv,
    dashboard,
    drift,
    exported,
    listing,
    openapi,
    overview,
    params,
    summaries,
)
from modelstats.store import alert_history, deadletters
from modelstats.web.responses import json_response
from modelstats.web.routes import Route
from modelstats.web.wrapper import http_function


def _respond(result: dict[str, object], query: params.StatsQuery) -> Response:
    if query.csv:
        return Response(csv.series_csv(result), media_type="text/csv; charset=utf-8")
    return json_response(result)


async def version_stats(request: Request, path: dict[str, str]) -> Response:
    query = params.parse_stats(request.query_params.multi_items(), timestamps.now())
    model = params.check_name(path["model"], "model")
    version = params.check_name(path["version"], "version")
    return _respond(await summaries.version_stats(model, version, query), query)


async def model_stats(request: Request, path: dict[str, str]) -> Response:
    query = params.parse_stats(request.query_params.multi_items(), timestamps.now(), baseline=True)
    model = params.check_name(path["model"], "model")
    return _respond(await summaries.model_stats(model, query), query)


async def models(request: Request, path: dict[str, str]) -> Response:
    since, until = params.parse_models(request.query_params.multi_items(), timestamps.now())
    return json_response(await listing.models(since, until))


async def drift_strip(request: Request, path: dict[str, str]) -> Response:
    since, until = params.parse_range(request.query_params.multi_items(), timestamps.now())
    model = params.check_name(path["model"], "model")
    version = params.check_name(path["version"], "version")
    return json_response(await drift.drift(model, version, since, until))


async def accuracy_windows(request: Request, path: dict[str, str]) -> Response:
    now = timestamps.now()
    query = params.parse_accuracy(request.query_params.multi_items(), now)
    model = params.check_name(path["model"], "model")
    version = params.check_name(path["version"], "version")
    return json_response(await accuracy.accuracy(model, version, query, now))


async def models_overview(request: Request, path: dict[str, str]) -> Response:
    since, until = params.parse_range(request.query_params.multi_items(), timestamps.now())
    return json_response(await overview.overview(since, until))


async def dead_letters(request: Request, path: dict[str, str]) -> Response:
    query = params.parse_dead_letters(request.query_params.multi_items(), timestamps.now())
    letters = await run_in_threadpool(deadletters.recent, query.limit, query.pending, query.since)
    return json_response({"dead_letters": [letter.to_json() for letter in letters]})


async def alerts(request: Request, path: dict[str, str]) -> Response:
    query = params.parse_alerts(request.query_params.multi_items(), timestamps.now())
    found = await run_in_threadpool(
        alert_history.list_alerts,
        query.states,
        query.model,
        query.version,
        query.since,
        query.limit,
    )
    return json_response({"alerts": [alert.to_json() for alert in found]})


async def openapi_json(request: Request, path: dict[str, str]) -> Response:
    return json_response(openapi.document())


async def dashboard_page(request: Request, path: dict[str, str]) -> Response:
    return dashboard.response(dashboard.PAGE, request.headers.get("if-none-match"))


async def dashboard_file(request: Request, path: dict[str, str]) -> Response:
    return dashboard.response(path["asset"], request.headers.get("if-none-match"))


ROUTES = [
    Route("/", dashboard_page, public=True),  # a static page: it asks the browser for the token
    Route("/dashboard/{asset}", dashboard_file, public=True),  # its scripts and styles
    Route("/openapi.json", openapi_json),
    Route("/models", models),
    Route("/overview", models_overview),
    Route("/dead-letters", dead_letters),
    Route("/alerts", alerts),
    Route("/stats/{model}", model_stats),
    Route("/stats/{model}/{version}", version_stats),
    Route("/drift/{model}/{version}", drift_strip),
    Route("/accuracy/{model}/{version}", accuracy_windows),
]


async def scrape(request: Request) -> Sequence[Collector]:
    """GET /metrics adds each recent series' last value to the process's own metrics."""
    params.parse_metrics(request.query_params.multi_items())
    return (await exported.last_values(),)


stats = http_function("stats", ROUTES, authorize=access.authorize, scrape=scrape)
