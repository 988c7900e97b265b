"""The etl function (target `etl`): run the job a PingSource tick carries, reply with its reports.

Answers 200 with one binary-mode `modelstats.metric.reported` CloudEvent, 204 when nothing is
new, 400 for a malformed ping or job (naming the field), 503 when PostgreSQL is down or another
run holds the source. The core is synchronous: the wrapper runs it in a thread pool.
"""

from __future__ import annotations

from cloudevents.http import CloudEvent

from modelstats.core.cloudevents import Event
from modelstats.etl import runner
from modelstats.store import db
from modelstats.web.wrapper import cloudevent_function


@cloudevent_function(ready=db.ping)
def etl(ping: Event) -> CloudEvent | None:
    return runner.handle(ping)
