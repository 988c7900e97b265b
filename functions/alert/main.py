"""The alert function (target `alert`): rules evaluated on `modelstats.metric.stored` events,
and on the ticks of its own PingSource (`dev.knative.sources.ping` from `alert-schedule`).

Answers 200 with a binary-mode `modelstats.alert.fired` / `.resolved` CloudEvent, 204 when
there is nothing to say, 400 for a bad event (naming the field), 503 while PostgreSQL is
unreachable, 500 while the rules file is malformed (GET /healthz answers the same, so such a
revision never becomes ready). Concurrent events share one transaction (group commit).
The outbox senders start with the worker process, before the first request it serves, and
stop when it exits.
"""

from __future__ import annotations

from collections.abc import Mapping

from cloudevents.http import CloudEvent

from modelstats.alert import evaluation, outbox, rulebook
from modelstats.core.cloudevents import Event
from modelstats.store import db
from modelstats.web.wrapper import cloudevent_function


def ready() -> Mapping[str, int]:
    """Ready when the rules file validates and PostgreSQL answers."""
    loaded = rulebook.current()
    db.ping()
    return {"rules": len(loaded)}


@cloudevent_function(ready=ready, start=outbox.start, stop=outbox.shutdown)
async def alert(event: Event) -> CloudEvent | None:
    return await evaluation.handle(event)
