"""The etl function (target `etl`): run the job a PingSource tick carries, reply with its reports.

An HTTP function, so that it can answer as Knative expects: 200 with one binary-mode
`modelstats.metric.reported` CloudEvent, 204 when nothing is new, 400 for a malformed ping or
job (naming the field), 503 when PostgreSQL is down or another run holds the source.
"""

from __future__ import annotations

import flask
import functions_framework

from modelstats.core.errors import ModelstatsError
from modelstats.etl import jobs
from modelstats.etl import runner as core
from modelstats.store import db
from modelstats.web import wsgi


@functions_framework.http
def etl(request: flask.Request) -> wsgi.Answer:
    if request.method == "GET" and request.path == "/healthz":
        try:
            db.ping()
        except ModelstatsError as error:
            return wsgi.error_response(error)
        return wsgi.json_response({"status": "ok"})
    if request.method != "POST":
        return wsgi.method_not_allowed("POST")
    try:
        ping = wsgi.read_event(request)
        outcome = core.run(jobs.from_ping(ping), ping=ping)
    except ModelstatsError as error:
        return wsgi.error_response(error)
    return wsgi.event_response(outcome.event())
