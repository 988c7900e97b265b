"""The ingest function (target `ingest`) and the dead-letter sink (target `dead_letters`).

Both are HTTP functions so that they can answer as Knative expects: ingest replies with a
`modelstats.metric.stored` CloudEvent, the sink with an empty 2xx.
"""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from modelstats.core import cloudevents
from modelstats.core.errors import ModelstatsError
from modelstats.ingest import ingestor as core
from modelstats.store import deadletters
from modelstats.web import asgi


@functions_framework.aio.http
async def ingest(request: Request) -> Response:
    if request.method == "GET" and request.url.path == "/healthz":
        return await asgi.healthz()
    if request.method != "POST":
        return asgi.method_not_allowed("POST")
    try:
        event = await asgi.read_event(request)
        stored = await core.ingest(event)
    except ModelstatsError as error:
        return asgi.error_response(error)
    reply = cloudevents.reply(
        core.STORED,
        core.REPLY_SOURCE,
        cloudevents.derived_id(event.source, event.id),
        core.stored_reply_data(stored),
        time=stored.received_at,
    )
    return asgi.event_response(reply)


@functions_framework.aio.http
async def dead_letters(request: Request) -> Response:
    if request.method == "GET" and request.url.path == "/healthz":
        return await asgi.healthz()
    if request.method != "POST":
        return asgi.method_not_allowed("POST")
    try:
        event = await asgi.read_event(request, strict_data=False)
        await deadletters.keep(event)
    except ModelstatsError as error:
        return asgi.error_response(error)
    return Response(status_code=204)
