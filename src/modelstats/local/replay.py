"""`modelstats replay`: send dead letters and spooled events back to the broker.

Each stored dead letter not yet replayed, and each line of the local spool file, is POSTed to
the broker ingress as the original CloudEvent (binary mode) without the `knativeerror*`
extensions and without the broker's own TTL and arrival stamps, so it enters as new. A dead
letter is marked replayed once the ingress accepts it (2xx); a spool line that is not accepted
stays in the spool.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from modelstats.local import envelopes, spool
from modelstats.local.envelopes import Envelope

log = logging.getLogger("modelstats.replay")

# The broker's own stamps and error extensions: never part of the original event.
BROKER_EXTENSIONS = (
    "knativeerrordest",
    "knativeerrorcode",
    "knativeerrordata",
    "knativebrokerttl",
    "knativearrivaltime",
)
DEFAULT_LIMIT = 10_000


@dataclass
class Result:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def original(envelope: Envelope) -> Envelope:
    return envelope.without(*BROKER_EXTENSIONS)


def letter_envelope(attributes: dict[str, Any], data: bytes | None) -> Envelope:
    """A stored dead letter (attributes as kept by the sink) back into an event."""
    document: dict[str, Any] = {k: v for k, v in attributes.items() if v is not None}
    if data is not None:
        document["data_base64"] = base64.b64encode(data).decode()
    return original(envelopes.from_json(document))


def post(client: httpx.Client, broker_url: str, envelope: Envelope) -> str | None:
    """POST one event; None on acceptance, else a description of the failure."""
    headers, body = envelopes.encode_binary(envelope)
    try:
        response = client.post(broker_url, headers=headers, content=body)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text.strip()[:200]}"


def replay_dead_letters(
    client: httpx.Client, broker_url: str, limit: int = DEFAULT_LIMIT
) -> Result:
    from modelstats.store import deadletters

    result = Result()
    letters = deadletters.recent(limit=limit, pending_only=True)
    for letter in reversed(letters):  # oldest first
        label = f"dead letter {letter.id} ({letter.type} {letter.source} {letter.event_id})"
        try:
            envelope = letter_envelope(letter.attributes, letter.data)
        except Exception as error:
            result.failed += 1
            result.errors.append(f"{label}: cannot rebuild the event: {error}")
            continue
        problem = post(client, broker_url, envelope)
        if problem is None:
            deadletters.mark_replayed(letter.id)
            result.sent += 1
        else:
            result.failed += 1
            result.errors.append(f"{label}: {problem}")
    return result


def replay_spool(client: httpx.Client, broker_url: str, path: Path) -> Result:
    result = Result()
    taken, lines = spool.take(path)
    if taken is None:
        return result
    kept: list[str] = []
    for line, entry in lines:
        if entry is None:
            kept.append(line)
            result.failed += 1
            result.errors.append(f"spool: unreadable line kept: {line[:80]}")
            continue
        problem = post(client, broker_url, original(entry.envelope))
        if problem is None:
            result.sent += 1
        else:
            kept.append(line)
            result.failed += 1
            result.errors.append(f"spooled event {entry.envelope.label()}: {problem}")
    spool.give_back(path, taken, kept)
    return result


def describe(source: str, result: Result) -> str:
    return json.dumps({"from": source, "sent": result.sent, "failed": result.failed})
