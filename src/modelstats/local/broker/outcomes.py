"""What became of the events `modelstats replay` sent: delivered, failed again, or still in
delivery.

The ingress's 202 says only that the broker holds an event. So after sending, replay watches,
for a bounded time, the two places where a delivery that fails for good ends up: the dead
letters (the sink reopens an event's letter when it fails again: pending, with a new failure
time) and the spool (when the sink refuses it too). A replayed event found in either, failed
since the replay began, has failed again. Watching ends as soon as the broker holds nothing in
flight (its `modelstats_broker_events_in_flight` gauge at 0: every delivery, reply and dead
letter of the replayed events is finished, since the broker answers 202 only once an event
holds its slot), or after `wait` seconds. An event not seen failing by then was delivered if
the broker had settled, and is still in delivery if it had not (or if its broker has no such
gauge, as a cluster's broker-ingress).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelstats.core import contract
from modelstats.local.broker import spool
from modelstats.local.broker.replay import error_code

IN_FLIGHT = "modelstats_broker_events_in_flight"
POLL_SECONDS = 0.2
# The database's clock may be a little behind this one: a failure this much before the replay
# began still counts (the letter must also be pending again, which sending it had ended).
CLOCK_MARGIN = timedelta(seconds=2)

Key = tuple[str, str]  # (source, id)


@dataclass(frozen=True)
class Failure:
    code: int | None  # the status the delivery failed with (0: no answer at all)
    dest: str  # where it failed
    kept_in: str  # "dead letters" or "the spool"


@dataclass
class Outcome:
    replayed: int = 0
    failed_again: dict[Key, Failure] = field(default_factory=dict)
    # The broker held nothing in flight when watching ended.
    settled: bool = False
    waited: float = 0.0
    watched: bool = True

    @property
    def delivered(self) -> int:
        return self.replayed - len(self.failed_again) if self.settled else 0

    @property
    def in_delivery(self) -> int:
        return 0 if self.settled else self.replayed - len(self.failed_again)

    def summary(self) -> str:
        if not self.watched:
            return f"{self.replayed} replayed (not watched: --wait 0)"
        text = f"{self.replayed} replayed: {self.delivered} delivered"
        text += f", {len(self.failed_again)} failed again"
        if self.in_delivery:
            text += f", {self.in_delivery} still in delivery after {self.waited:.0f}s"
        return text

    def failure_lines(self) -> list[str]:
        """The failures by status and destination, most frequent first."""
        counts = Counter(self.failed_again.values())
        return [
            f"failed again: {n} x {_status(failure.code)} at {failure.dest}, now in"
            f" {failure.kept_in}"
            for failure, n in counts.most_common()
        ]


def _status(code: int | None) -> str:
    if code is None:
        return "an unknown status"
    return "no answer" if code == 0 else f"HTTP {code}"


def metrics_url(broker_url: str) -> str:
    parts = urlsplit(broker_url)
    return urlunsplit((parts.scheme, parts.netloc, "/metrics", "", ""))


def in_flight(client: httpx.Client, url: str) -> float | None:
    """The broker's gauge of events in flight; None when it has none to read."""
    try:
        response = client.get(url, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == IN_FLIGHT:
                return float(sample.value)
    return None


def spooled_failures(
    path: Path, sent: Collection[Key], since: datetime
) -> Iterator[tuple[Key, Failure]]:
    for entry in spool.read(path):
        key = (entry.envelope.source, entry.envelope.id)
        if key in sent and datetime.fromisoformat(entry.spooled_at) >= since:
            dest = entry.envelope.attributes.get(contract.ERROR_DEST) or entry.reason
            yield key, Failure(error_code(entry.envelope), dest, "the spool")


def letter_failures(sent: Collection[Key], since: datetime) -> Iterator[tuple[Key, Failure]]:
    from modelstats.store import deadletters

    for letter in deadletters.recent(limit=10 * len(sent) + 100, pending_only=True, since=since):
        key = (letter.source, letter.event_id)
        if key in sent:
            yield key, Failure(letter.error_code, letter.error_dest or "?", "dead letters")


def watch(
    client: httpx.Client,
    broker_url: str,
    sent: Collection[Key],
    since: datetime,
    spool_path: Path,
    with_letters: bool,
    wait: float,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Watch the replayed events `sent` (from `since`) for up to `wait` seconds."""
    outcome = Outcome(replayed=len(sent), watched=wait > 0)
    if not sent or wait <= 0:
        outcome.settled = not sent
        return outcome
    started = clock()
    gauge = metrics_url(broker_url)
    earliest = since - CLOCK_MARGIN
    while True:
        outcome.settled = in_flight(client, gauge) == 0
        outcome.waited = clock() - started
        if outcome.settled or outcome.waited >= wait:
            break
        time.sleep(POLL_SECONDS)
    # Read once the broker has settled: every failure of the replayed events is written by then.
    outcome.failed_again = dict(spooled_failures(spool_path, sent, earliest))
    if with_letters:
        outcome.failed_again.update(letter_failures(sent, earliest))
    return outcome
