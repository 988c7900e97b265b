"""PingSource ticks, as Knative's mtping adapter sends them (EV pkg/adapter/mtping).

Each tick is a new event: type `dev.knative.sources.ping`, source
`/apis/v1/namespaces/<ns>/pingsources/<name>`, a fresh UUID and time, `contentType` as
`datacontenttype`, the `data` bytes (or decoded `dataBase64`), extensions from `ceOverrides`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from modelstats.core import contract
from modelstats.core.cloudevents import Envelope
from modelstats.local.broker.routing import Pinger
from modelstats.local.broker.sender import DeliveryResult, Sender
from modelstats.local.knative import delivery
from modelstats.local.knative.resources import PingSource

log = logging.getLogger("modelstats.broker")

PING_TYPE = contract.PING
# mtping retries a tick up to 5 times.
RETRY_POLICY = delivery.RetryPolicy(5, delivery.EXPONENTIAL, 0.2)


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def ping_event(ping: PingSource) -> Envelope:
    attributes = {
        "specversion": "1.0",
        "type": PING_TYPE,
        "source": ping.event_source,
        "id": str(uuid.uuid4()),
        "time": now_rfc3339(),
    }
    if ping.content_type:
        attributes["datacontenttype"] = ping.content_type
    attributes.update(ping.extensions)
    return Envelope(attributes, ping.data or b"", ping.data is not None)


async def ping_loop(pinger: Pinger, every: float | None, fire: Callable[[Pinger], None]) -> None:
    """Call `fire` at each tick of the schedule (or every `every` seconds), until cancelled."""
    schedule = pinger.source.schedule
    previous = datetime.now(UTC)
    while True:
        if every:
            await asyncio.sleep(every)
        else:
            # Never before the previous tick: a sleep that ends a hair early must not find
            # the same tick again.
            now = max(datetime.now(UTC), previous)
            previous = schedule.next_after(now)
            await asyncio.sleep(max((previous - datetime.now(UTC)).total_seconds(), 0))
        fire(pinger)


async def send_tick(sender: Sender, pinger: Pinger) -> None:
    """Send one tick to the sink, with mtping's retries."""
    event = ping_event(pinger.source)
    what = f"PingSource {pinger.source.name} tick {event.id}"

    def failed(result: DeliveryResult, attempt: int, retry_in: float | None) -> None:
        log.warning("%s: attempt %d failed: %s", what, attempt, result.describe())

    result = await sender.send(pinger.url, event, RETRY_POLICY, {}, failed)
    if not result.ok:
        log.error("%s not delivered: %s", what, result.describe())
