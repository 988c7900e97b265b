"""What the broker has done, counted: Prometheus counters per broker and per trigger (served at
`GET /metrics`), and one INFO summary line every few seconds while there is traffic, instead of
lines per event (those are at DEBUG).

Names follow the functions' scheme (core/metrics.py): `modelstats_broker_<thing>_<unit>`.
Each trigger's series are looked up once and kept (`_Trigger`): counting an event is a dict
lookup and an increment, not a `labels()` call per event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger("modelstats.broker")

SUMMARY_EVERY_SECONDS = 5.0


@dataclass
class Totals:
    accepted: int = 0
    refused: int = 0
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    spooled: int = 0
    lost: int = 0
    replies: int = 0
    pings: int = 0


@dataclass
class _Trigger:
    """One trigger's series, bound once."""

    delivered: Any
    dead_lettered: Any
    spooled: Any
    retried: Any
    replies: Any
    in_flight: Any


class Tally:
    """Counters of one broker process; each has its own registry (tests run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.totals = Totals()
        self._reported = Totals()
        self._in_flight = 0
        registry = self.registry
        self._accepted = Counter(
            "modelstats_broker_events_accepted",
            "Events the ingress accepted (202), replies re-ingested excluded.",
            ["broker"],
            registry=registry,
        )
        self._refused = Counter(
            "modelstats_broker_events_refused",
            "Events the ingress refused: invalid (400), too large (413), full (503).",
            ["broker", "reason"],
            registry=registry,
        )
        self._deliveries = Counter(
            "modelstats_broker_deliveries",
            "Deliveries to a trigger's subscriber by how they ended: delivered, dead_lettered"
            " (sent to the dead-letter sink), spooled (kept in the local spool file), lost (the"
            " spool was full or could not be written).",
            ["trigger", "outcome"],
            registry=registry,
        )
        self._retries = Counter(
            "modelstats_broker_delivery_retries",
            "Attempts that failed with a retried status and were tried again.",
            ["trigger"],
            registry=registry,
        )
        self._replies = Counter(
            "modelstats_broker_replies",
            "CloudEvent replies re-ingested from a trigger's subscriber.",
            ["trigger"],
            registry=registry,
        )
        self._pings = Counter(
            "modelstats_broker_pings", "PingSource ticks sent.", ["pingsource"], registry=registry
        )
        self._in_flight_gauge = Gauge(
            "modelstats_broker_events_in_flight",
            "Accepted events whose deliveries (and replies) are not finished.",
            registry=registry,
        )
        self._deliveries_in_flight = Gauge(
            "modelstats_broker_deliveries_in_flight",
            "Deliveries to a trigger's subscriber under way (attempts, waits between retries"
            " and dead-lettering included).",
            ["trigger"],
            registry=registry,
        )
        self._triggers: dict[str, _Trigger] = {}

    def _trigger(self, name: str) -> _Trigger:
        bound = self._triggers.get(name)
        if bound is None:
            bound = _Trigger(
                delivered=self._deliveries.labels(name, "delivered"),
                dead_lettered=self._deliveries.labels(name, "dead_lettered"),
                spooled=self._deliveries.labels(name, "spooled"),
                retried=self._retries.labels(name),
                replies=self._replies.labels(name),
                in_flight=self._deliveries_in_flight.labels(name),
            )
            self._triggers[name] = bound
        return bound

    def accepted(self, broker: str) -> None:
        self.totals.accepted += 1
        self._accepted.labels(broker).inc()

    def refused(self, broker: str, reason: str) -> None:
        self.totals.refused += 1
        self._refused.labels(broker, reason).inc()

    def delivering(self, trigger: str) -> None:
        self._trigger(trigger).in_flight.inc()

    def delivery_done(self, trigger: str) -> None:
        self._trigger(trigger).in_flight.dec()

    def delivered(self, trigger: str) -> None:
        self.totals.delivered += 1
        self._trigger(trigger).delivered.inc()

    def dead_lettered(self, trigger: str) -> None:
        self.totals.dead_lettered += 1
        self._trigger(trigger).dead_lettered.inc()

    def spooled(self, trigger: str) -> None:
        self.totals.spooled += 1
        self._trigger(trigger).spooled.inc()

    def lost(self, trigger: str) -> None:
        self.totals.lost += 1
        self._deliveries.labels(trigger, "lost").inc()

    def retried(self, trigger: str) -> None:
        self.totals.retried += 1
        self._trigger(trigger).retried.inc()

    def reply(self, trigger: str) -> None:
        self.totals.replies += 1
        self._trigger(trigger).replies.inc()

    def ping(self, source: str) -> None:
        self.totals.pings += 1
        self._pings.labels(source).inc()

    def set_in_flight(self, count: int) -> None:
        self._in_flight = count
        self._in_flight_gauge.set(count)

    def summary(self) -> str | None:
        """The line for the last period, or None when nothing happened and nothing waits."""
        now, before = self.totals, self._reported
        changed = now != before
        if not changed and not self._in_flight:
            return None
        self._reported = Totals(**vars(now))
        lost = now.lost - before.lost
        return (
            f"last {SUMMARY_EVERY_SECONDS:g}s: accepted {now.accepted - before.accepted},"
            f" delivered {now.delivered - before.delivered},"
            f" retried {now.retried - before.retried},"
            f" dead-lettered {now.dead_lettered - before.dead_lettered},"
            f" spooled {now.spooled - before.spooled},"
            + (f" LOST {lost}," if lost else "")
            + f" refused {now.refused - before.refused}; in flight {self._in_flight}"
        )
