"""Starlette glue shared by the ASGI functions: read an event, answer errors and replies."""

from __future__ import annotations

import logging

from cloudevents.http import CloudEvent
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modelstats.core import cloudevents
from modelstats.core.errors import BadInput, DatabaseUnavailable, ModelstatsError, http_status
from modelstats.core.settings import get_settings
from modelstats.store import db

log = logging.getLogger("modelstats")


async def read_event(request: Request, strict_data: bool = True) -> cloudevents.Event:
    limit = get_settings().max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise cloudevents.PayloadTooLarge("body", f"larger than {limit} bytes")
    body = await request.body()
    return cloudevents.parse(request.headers, body, max_bytes=limit, strict_data=strict_data)


def error_response(error: ModelstatsError) -> JSONResponse:
    status = http_status(error)
    if status >= 500:
        log.warning("%s: %s", type(error).__name__, error)
    return JSONResponse(error.to_json(), status_code=status)


def event_response(event: CloudEvent, status: int = 200) -> Response:
    headers, body = cloudevents.binary_response(event)
    return Response(body, status_code=status, headers=headers)


async def healthz() -> Response:
    try:
        async with db.async_connection() as conn:
            await conn.execute("SELECT 1")
    except DatabaseUnavailable as error:
        return error_response(error)
    return JSONResponse({"status": "ok"})


def method_not_allowed(allowed: str) -> JSONResponse:
    error = BadInput("method", f"use {allowed}")
    return JSONResponse(error.to_json(), status_code=405, headers={"Allow": allowed})
