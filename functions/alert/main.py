"""The alert function (target `alert`): rules evaluated on `modelstats.metric.stored` events.

A Flask (WSGI) HTTP function, because the core is synchronous (the psycopg pool, and the outbox
sender threads started on the first request). Answers: 200 with a binary-mode
`modelstats.alert.fired` / `.resolved` CloudEvent, 204 when there is nothing to say, 400 for a
bad event (naming the field), 503 while PostgreSQL is unreachable, 500 while the rules file is
malformed (GET /healthz answers the same, so such a revision never becomes ready).
"""

from __future__ import annotations

import flask
import functions_framework

from modelstats.alert import evaluation as core
from modelstats.alert import outbox, rules
from modelstats.core.errors import ModelstatsError
from modelstats.store import db
from modelstats.web import wsgi


def _healthz() -> wsgi.Answer:
    try:
        loaded = rules.current()
        db.ping()
        outbox.dispatcher()  # undelivered notifications go out once the pod is up
    except ModelstatsError as error:
        return wsgi.error_response(error)
    return wsgi.json_response({"status": "ok", "rules": len(loaded)})


@functions_framework.http
def alert(request: flask.Request) -> wsgi.Answer:
    if request.method == "GET" and request.path == "/healthz":
        return _healthz()
    if request.method != "POST":
        return wsgi.method_not_allowed("POST")
    try:
        outcome = core.handle(wsgi.read_event(request))
    except ModelstatsError as error:
        return wsgi.error_response(error)
    return wsgi.event_response(outcome.reply)
