"""Flask glue shared by the WSGI functions (alert, etl): read an event, answer errors and replies.

The ASGI twin is `asgi.py`; both answer with the statuses of `errors.HTTP_STATUS`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import flask
from cloudevents.http import CloudEvent

from modelstats.core import cloudevents
from modelstats.core.errors import BadInput, ModelstatsError, PayloadTooLarge, http_status
from modelstats.core.settings import get_settings

log = logging.getLogger("modelstats")

Answer = tuple[Any, int, dict[str, str]]
_JSON = {"content-type": "application/json"}


def read_event(request: flask.Request) -> cloudevents.Event:
    limit = get_settings().max_body_bytes
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge("body", f"larger than {limit} bytes")
    return cloudevents.parse(dict(request.headers), request.get_data(), max_bytes=limit)


def json_response(body: dict[str, Any], status: int = 200) -> Answer:
    return json.dumps(body), status, dict(_JSON)


def error_response(error: ModelstatsError) -> Answer:
    status = http_status(error)
    if status >= 500:
        log.warning("%s: %s", type(error).__name__, error)
    return json_response(error.to_json(), status)


def event_response(event: CloudEvent | None) -> Answer:
    """200 with a binary-mode CloudEvent, or an empty 204 when there is nothing to say."""
    if event is None:
        return "", 204, {}
    headers, body = cloudevents.binary_response(event)
    return body, 200, headers


def method_not_allowed(allowed: str) -> Answer:
    body, _, headers = json_response(BadInput("method", f"use {allowed}").to_json())
    return body, 405, {**headers, "allow": allowed}
