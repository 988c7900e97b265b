"""The stats function (target `stats`): read-only HTTP API over the stored samples.

ROUTES is the whole API: a path pattern and a handler each (see modelstats.stats_routes).
To add a route, write a handler here (parse -> call the core -> respond), add one line to
ROUTES, and document it with one entry in modelstats.openapi.PATHS.
"""

from __future__ import annotations

import functions_framework.aio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from modelstats import (
    alert_history,
    asgi,
    deadletters,
    openapi,
    stats_dashboard,
    stats_params,
    timestamps,
)
from modelstats import stats as core
from modelstats.stats_routes import Route, dispatch, json_response


def _respond(result: dict[str, object], query: stats_params.StatsQuery) -> Response:
    if query.csv:
        return Response(core.series_csv(result), media_type="text/csv; charset=utf-8")
    return json_response(result)


async def version_stats(request: Request, path: dict[str, str]) -> Response:
    query = stats_params.parse_stats(request.query_params.multi_items(), timestamps.now())
    model = stats_params.check_name(path["model"], "model")
    version = stats_params.check_name(path["version"], "version")
    return _respond(await core.version_stats(model, version, query), query)


async def model_stats(request: Request, path: dict[str, str]) -> Response:
    query = stats_params.parse_stats(
        request.query_params.multi_items(), timestamps.now(), baseline=True
    )
    model = stats_params.check_name(path["model"], "model")
    return _respond(await core.model_stats(model, query), query)


async def models(request: Request, path: dict[str, str]) -> Response:
    since, until = stats_params.parse_models(request.query_params.multi_items(), timestamps.now())
    return json_response(await core.models(since, until))


async def dead_letters(request: Request, path: dict[str, str]) -> Response:
    query = stats_params.parse_dead_letters(request.query_params.multi_items(), timestamps.now())
    letters = await run_in_threadpool(deadletters.recent, query.limit, query.pending, query.since)
    return json_response({"dead_letters": [letter.to_json() for letter in letters]})


async def alerts(request: Request, path: dict[str, str]) -> Response:
    query = alert_history.parse_query(request.query_params.multi_items(), timestamps.now())
    found = await run_in_threadpool(alert_history.list_alerts, query)
    return json_response({"alerts": found})


async def healthz(request: Request, path: dict[str, str]) -> Response:
    return await asgi.healthz()


async def openapi_json(request: Request, path: dict[str, str]) -> Response:
    return json_response(openapi.document())


async def dashboard(request: Request, path: dict[str, str]) -> Response:
    return HTMLResponse(stats_dashboard.PAGE)


ROUTES = [
    Route("/", dashboard, public=True),  # a static page: it asks the browser for the token
    Route("/healthz", healthz, public=True),
    Route("/openapi.json", openapi_json),
    Route("/models", models),
    Route("/dead-letters", dead_letters),
    Route("/alerts", alerts),
    Route("/stats/{model}", model_stats),
    Route("/stats/{model}/{version}", version_stats),
]


@functions_framework.aio.http
async def stats(request: Request) -> Response:
    return await dispatch(ROUTES, request)
