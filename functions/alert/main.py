"""The alert function (target `alert`): rules evaluated on `modelstats.metric.stored` events.

A Flask (WSGI) HTTP function, because the core is synchronous (the psycopg pool, and the outbox
sender threads started on the first request). Answers: 200 with a binary-mode
`modelstats.alert.fired` / `.resolved` CloudEvent, 204 when there is nothing to say, 400 for a
bad event (naming the field), 503 while PostgreSQL is unreachable, 500 while the rules file is
malformed (GET /healthz answers the same, so such a revision never becomes ready).
"""

from __future__ import annotations

import logging
from typing import Any

import flask
import functions_framework

from modelstats import alerts as core
from modelstats import db, events, notify, rules
from modelstats.errors import BadInput, ModelstatsError, PayloadTooLarge, http_status
from modelstats.settings import get_settings

log = logging.getLogger("modelstats.alert")

Response = tuple[Any, int] | tuple[Any, int, dict[str, str]]


def _error(error: ModelstatsError) -> Response:
    status = http_status(error)
    if status >= 500:
        log.error("%s: %s", type(error).__name__, error)
    return error.to_json(), status


def _healthz() -> Response:
    try:
        loaded = rules.current()
        db.ping()
        notify.dispatcher()  # undelivered notifications go out once the pod is up
    except ModelstatsError as error:
        return _error(error)
    return {"status": "ok", "rules": len(loaded)}, 200


@functions_framework.http
def alert(request: flask.Request) -> Response:
    if request.method == "GET" and request.path == "/healthz":
        return _healthz()
    if request.method != "POST":
        return BadInput("method", "use POST").to_json(), 405, {"Allow": "POST"}
    try:
        limit = get_settings().max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge("body", f"larger than {limit} bytes")
        event = events.parse(request.headers, request.get_data(), max_bytes=limit)
        outcome = core.handle(event)
    except ModelstatsError as error:
        return _error(error)
    if outcome.reply is None:
        return "", 204
    headers, body = events.binary_response(outcome.reply)
    return body, 200, headers
