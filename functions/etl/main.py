"""The etl function (target `etl`): run the job a PingSource tick carries, reply with its reports.

An HTTP function, so that it can answer as Knative expects: 200 with one binary-mode
`modelstats.metric.reported` CloudEvent, 204 when nothing is new, 400 for a malformed ping or
job (naming the field), 503 when PostgreSQL is down or another run holds the source.
"""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework

from modelstats import db, events, jobs
from modelstats import etl as core
from modelstats.errors import BadInput, ModelstatsError, PayloadTooLarge, http_status
from modelstats.settings import get_settings

Answer = tuple[Any, int, dict[str, str]]


def _error(error: ModelstatsError) -> Answer:
    body = json.dumps(error.to_json())
    return body, http_status(error), {"content-type": "application/json"}


def _healthz() -> Answer:
    try:
        db.ping()
    except ModelstatsError as error:
        return _error(error)
    return json.dumps({"status": "ok"}), 200, {"content-type": "application/json"}


@functions_framework.http
def etl(request: flask.Request) -> Answer:
    if request.method == "GET" and request.path == "/healthz":
        return _healthz()
    if request.method != "POST":
        answer = _error(BadInput("method", "use POST"))
        return answer[0], 405, {**answer[2], "allow": "POST"}
    try:
        limit = get_settings().max_body_bytes
        if (request.content_length or 0) > limit:
            raise PayloadTooLarge("body", f"larger than {limit} bytes")
        ping = events.parse(dict(request.headers), request.get_data(), max_bytes=limit)
        outcome = core.run(jobs.from_ping(ping), ping=ping)
    except ModelstatsError as error:
        return _error(error)
    reply = outcome.event()
    if reply is None:
        return "", 204, {}
    headers, body = events.binary_response(reply)
    return body, 200, headers
