"""`modelstats replay`: send dead letters and spooled events back to the broker.

Each stored dead letter not yet replayed, and each line of the local spool file, is POSTed to
the broker ingress as the original CloudEvent (binary mode) without the `knativeerror*`
extensions and without the broker's own TTL and arrival stamps, so it enters as new. A dead
letter is marked replayed once the ingress accepts it (2xx); a spool line that is not accepted
stays in the spool: as it was when the refusal may pass (no answer, a status Knative retries),
else stamped with the ingress's refusal (`knativeerrordest` the ingress, `knativeerrorcode` its
status), so that it counts as failed for good and later runs leave it alone like any other.
What became of the events once accepted (delivered, or failed again) is outcomes.py's.

What is not sent:
- a failure Knative would not retry (a 4xx other than 404, 408, 409, 429: the rule of
  `contract.is_retried`) is permanent: the same event would fail the same way and come back.
  Such letters and spool lines are skipped, counted by status, and stay as they are, unless
  the run includes them (`--include-permanent`, once the subscriber was fixed to accept them);
- an event already sent in this run (the same `source` and `id`, failed at two subscribers,
  or both a letter and a spool line): the ingress fans it out to every trigger again, so once
  is enough. Its other letters are marked replayed, its other spool lines dropped, except a
  line spooled since the run began: that is the event failing again, and it stays.

A replayed event that fails again does not make a second letter: the sink reopens the letter
(see store/deadletters), and a letter is only marked replayed if it has not failed again
since it was read.
"""

from __future__ import annotations

import base64
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from modelstats.core import cloudevents, contract
from modelstats.core.cloudevents import Envelope
from modelstats.local.broker import failures, spool
from modelstats.local.broker.sender import DeliveryResult

log = logging.getLogger("modelstats.replay")

DEFAULT_LIMIT = 10_000


def failed_for_good(code: int | None) -> bool:
    """Whether a letter's `knativeerrorcode` is a failure Knative does not retry.

    0 is the local broker's code for a network error (no status) and None an unknown code:
    both are treated as transient, like the network errors Knative retries."""
    status = code or None
    return (
        status is not None and not contract.is_success(status) and not contract.is_retried(status)
    )


def error_code(envelope: Envelope) -> int | None:
    try:
        return int(envelope.attributes.get(contract.ERROR_CODE, ""))
    except ValueError:
        return None


@dataclass
class Result:
    # Accepted by the ingress (2xx): what happens to them next is outcomes.py's to tell.
    sent: int = 0
    failed: int = 0
    # Permanent failures left alone, by status.
    skipped: Counter[int] = field(default_factory=Counter)
    # Refused for good by the ingress itself (spool lines, stamped so), by status.
    refused: Counter[int] = field(default_factory=Counter)
    # Events already sent earlier in this run.
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self, kept_word: str) -> str:
        text = f"{self.sent} sent, {self.failed} {kept_word}"
        if self.refused:
            statuses = ", ".join(f"{n} x HTTP {code}" for code, n in sorted(self.refused.items()))
            text += f" ({statuses} refused for good by the ingress: left alone from now on)"
        if self.skipped:
            text += f", {sum(self.skipped.values())} skipped"
        if self.duplicates:
            text += f", {self.duplicates} already sent in this run"
        return text

    def skipped_reason(self) -> str | None:
        if not self.skipped:
            return None
        statuses = ", ".join(f"{n} x HTTP {code}" for code, n in sorted(self.skipped.items()))
        return (
            f"skipped {sum(self.skipped.values())} that failed for good ({statuses}): Knative"
            " does not retry these statuses, so they would fail again; fix the subscriber or"
            " the events, then replay with --include-permanent"
        )


@dataclass(frozen=True)
class Refusal:
    """Why the ingress did not take an event: its status (None: no answer) and words."""

    status: int | None
    text: str

    @property
    def permanent(self) -> bool:
        return not contract.is_retried(self.status)

    def __str__(self) -> str:
        return self.text if self.status is None else f"HTTP {self.status}: {self.text[:200]}"


@dataclass
class Replay:
    """One run of `modelstats replay`: where to send, what to include, what was sent."""

    client: httpx.Client
    broker_url: str
    include_permanent: bool = False
    sent: set[tuple[str, str]] = field(default_factory=set)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def leaves_alone(self, code: int | None) -> bool:
        return failed_for_good(code) and not self.include_permanent

    def post(self, envelope: Envelope) -> Refusal | None:
        """POST one event; None on acceptance, else the refusal."""
        headers, body = cloudevents.encode_binary(envelope)
        try:
            response = self.client.post(self.broker_url, headers=headers, content=body)
        except httpx.HTTPError as error:
            return Refusal(None, f"{type(error).__name__}: {error}")
        if contract.is_success(response.status_code):
            self.sent.add((envelope.source, envelope.id))
            return None
        return Refusal(response.status_code, response.text.strip())


def original(envelope: Envelope) -> Envelope:
    return envelope.without(*contract.BROKER_EXTENSIONS)


def letter_envelope(attributes: dict[str, Any], data: bytes | None) -> Envelope:
    """A stored dead letter (attributes as kept by the sink) back into an event."""
    document: dict[str, Any] = {k: v for k, v in attributes.items() if v is not None}
    if data is not None:
        document["data_base64"] = base64.b64encode(data).decode()
    return original(cloudevents.from_json(document))


def replay_dead_letters(run: Replay, limit: int = DEFAULT_LIMIT) -> Result:
    from modelstats.store import deadletters

    result = Result()
    letters = deadletters.recent(limit=limit, pending_only=True)
    for letter in reversed(letters):  # oldest failure first
        label = f"dead letter {letter.id} ({letter.type} {letter.source} {letter.event_id})"
        if run.leaves_alone(letter.error_code):
            result.skipped[letter.error_code or 0] += 1
            continue
        if (letter.source, letter.event_id) in run.sent:
            deadletters.mark_replayed(letter)
            result.duplicates += 1
            continue
        try:
            envelope = letter_envelope(letter.attributes, letter.data)
        except Exception as error:
            result.failed += 1
            result.errors.append(f"{label}: cannot rebuild the event: {error}")
            continue
        refusal = run.post(envelope)
        if refusal is not None:
            result.failed += 1
            result.errors.append(f"{label}: {refusal}")
            continue
        result.sent += 1
        if not deadletters.mark_replayed(letter):
            result.notes.append(f"{label}: failed again since it was sent: still pending")
    return result


def replay_spool(run: Replay, path: Path) -> Result:
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
        envelope = entry.envelope
        code = error_code(envelope)
        if run.leaves_alone(code):
            kept.append(line)
            result.skipped[code or 0] += 1
            continue
        if (envelope.source, envelope.id) in run.sent:
            if datetime.fromisoformat(entry.spooled_at) >= run.started:
                kept.append(line)  # it failed again during this run: a new failure, kept
            else:
                result.duplicates += 1
            continue
        refusal = run.post(original(envelope))
        if refusal is None:
            result.sent += 1
            continue
        result.failed += 1
        result.errors.append(f"spooled event {envelope.label()}: {refusal}")
        if refusal.permanent and refusal.status is not None:
            result.refused[refusal.status] += 1
            answer = DeliveryResult(refusal.status, refusal.text.encode())
            stamped = failures.dead_letter(original(envelope), run.broker_url, answer)
            kept.append(spool.line(stamped, f"refused by the ingress at replay: {refusal}"))
        else:
            kept.append(line)
    spool.give_back(path, taken, kept)
    return result
