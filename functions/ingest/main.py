"""The ingest function (target `ingest`) and the dead-letter sink (target `dead_letters`).

Ingest answers 200 with a `modelstats.metric.stored` CloudEvent for metric reports (also for a
redelivery, which stores nothing), an empty 204 for logged inference traffic (KServe's and
Seldon's loggers, `modelstats.inference.logged`), 400 naming the field, 413, 503 while
PostgreSQL is down. The sink keeps every
event it is given, whatever its data, and answers an empty 204.
"""

from __future__ import annotations

from cloudevents.http import CloudEvent

from modelstats.core.cloudevents import Event
from modelstats.ingest import ingestor
from modelstats.store import deadletters
from modelstats.web.wrapper import cloudevent_function


@cloudevent_function(on_failure=ingestor.failed)
async def ingest(event: Event) -> CloudEvent | None:
    return await ingestor.handle(event)


@cloudevent_function(strict=False)
async def dead_letters(event: Event) -> None:
    await deadletters.keep(event)
