"""The local broker: Knative's MTChannelBasedBroker semantics on one machine.

It follows `knative/SEMANTICS.md` for what it routes (routing.py, sender.py, knative/filters.py):

- the ingress (ingress.py) admits an event into a Broker: 400 when its TTL is spent, else it
  stamps `knativearrivaltime` and `knativebrokerttl` (255 when absent, else decremented: an
  event arriving with a TTL is a reply coming back round);
- every Trigger whose filter matches gets the event in binary mode with `Prefer: reply` and
  `Kn-Namespace`, concurrently with the other Triggers, retried per the effective DeliverySpec
  and dead-lettered with the `knativeerror*` extensions when it fails for good;
- a 2xx reply that is a CloudEvent is re-ingested (TTL guard); a reply that the ingress refuses
  dead-letters the event that caused it, as Knative's dispatcher does.

Where it differs from an InMemoryChannel, on purpose:

- the ingress answers 202 as soon as the event is held in memory, instead of holding the POST
  until every delivery is finished (retries can take minutes). At most `max_in_flight` accepted
  events are being delivered at once; past that the ingress waits up to `admission_wait` seconds
  for a slot (slowing the sender down), then answers 503 with `Retry-After`. A reply travels
  inside the slot of the event that caused it, so the cascade can never deadlock on slots;
- nothing accepted is lost while it runs: an event that the dead-letter sink refuses (or that has
  no sink) is appended to the spool file, and so is every event still in flight when the broker
  is stopped after its drain period, or at once when it is hurried (a second Ctrl-C, SIGQUIT).
  `modelstats replay` sends the spool back. The spool has a size cap: past it an event is
  logged as lost rather than fill the disk. What the broker holds in memory dies with it
  (kill -9): see docs/local-stack.md, "What survives what".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelstats.core import contract
from modelstats.core.cloudevents import Envelope
from modelstats.core.errors import BadInput
from modelstats.local.broker import failures, pings, spool
from modelstats.local.broker.routing import (
    BrokerRoute,
    Pinger,
    Resolver,
    Routing,
    Subscription,
    compile_routing,
)
from modelstats.local.broker.sender import DeliveryResult, Sender
from modelstats.local.broker.tally import SUMMARY_EVERY_SECONDS, Tally
from modelstats.local.knative.resources import Manifests

log = logging.getLogger("modelstats.broker")

TTL_EXTENSION = contract.BROKER_TTL
ARRIVAL_EXTENSION = contract.ARRIVAL_TIME
DEFAULT_TTL = 255


@dataclass
class LocalBroker:
    routing: Routing
    spool_path: Path
    max_in_flight: int = 1000
    ping_every: float | None = None
    drain_seconds: float = 5.0
    ingress_base: str = ""
    # How long an event waits at the ingress for an in-flight slot before the 503.
    admission_wait: float = 2.0
    spool_max_bytes: int = spool.DEFAULT_MAX_BYTES
    tally: Tally = field(default_factory=Tally)

    def __post_init__(self) -> None:
        self._slots: asyncio.Semaphore | None = None
        self._slots_used = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._closing = False
        self._hurry: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sender = Sender()
        self.spool = spool.Spool(self.spool_path, self.spool_max_bytes)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self._hurry = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        await self.sender.open()
        for pinger in self.routing.pingers:
            loop = pings.ping_loop(pinger, self.ping_every, self._fire_ping)
            self._background.append(asyncio.create_task(loop))
        self._background.append(asyncio.create_task(self._summaries()))

    async def stop(self) -> None:
        """Stop admitting and pinging, let deliveries finish for `drain_seconds` (not at all
        once hurried), then spool what remains, all with one fsync."""
        self._closing = True
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._tasks and not self.hurried:
            log.info("draining %d event(s) in flight", len(self._tasks))
            await self._drain()
        pending = set(self._tasks)
        if pending:
            log.warning("spooling what is still in flight (%d task(s))", len(pending))
            with self.spool.batch():
                for task in pending:
                    task.cancel()  # each unfinished delivery spools its event (_fan_out)
                await asyncio.gather(*pending, return_exceptions=True)
        await self.sender.close()
        self._log_summary()

    async def _drain(self) -> None:
        """Wait for every delivery, or `drain_seconds`, or a hurry, whichever comes first."""
        assert self._hurry is not None
        everything = asyncio.ensure_future(asyncio.wait(set(self._tasks)))
        hurry = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait(
            {everything, hurry}, timeout=self.drain_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        everything.cancel()  # the wait, not the deliveries
        hurry.cancel()

    @property
    def hurried(self) -> bool:
        return self._hurry is not None and self._hurry.is_set()

    def hurry(self) -> None:
        """Stop waiting for deliveries: spool them now. Safe from a signal handler."""
        if self._loop is not None and self._hurry is not None:
            self._loop.call_soon_threadsafe(self._hurry.set)

    @property
    def in_flight(self) -> int:
        """Accepted events whose deliveries (and replies) are not finished."""
        return self._slots_used

    async def _summaries(self) -> None:
        while True:
            await asyncio.sleep(SUMMARY_EVERY_SECONDS)
            self._log_summary()

    def _log_summary(self) -> None:
        line = self.tally.summary()
        if line:
            log.info("%s", line)

    # -- ingress ---------------------------------------------------------------------------

    def route(self, namespace: str, name: str) -> BrokerRoute | None:
        return self.routing.brokers.get((namespace, name))

    def admit(self, route: BrokerRoute, envelope: Envelope) -> Envelope:
        """Check an incoming event's TTL and stamp its TTL and arrival time (BadInput if spent)."""
        raw_ttl = envelope.attributes.get(TTL_EXTENSION)
        if raw_ttl is None:
            ttl = DEFAULT_TTL
        else:
            try:
                ttl = int(raw_ttl) - 1
            except ValueError:
                raise BadInput(TTL_EXTENSION, f"not an integer: {raw_ttl!r}") from None
            if ttl <= 0:
                raise BadInput(TTL_EXTENSION, "TTL exhausted: the event went round too many times")
        return envelope.with_attributes(
            **{TTL_EXTENSION: str(ttl), ARRIVAL_EXTENSION: pings.now_rfc3339()}
        )

    async def accept(self, route: BrokerRoute, envelope: Envelope) -> bool:
        """Admit an external event and start its deliveries; False when no slot freed in time
        (the caller answers 503). BadInput when the event may not enter."""
        stamped = self.admit(route, envelope)
        slots = self._slots
        if slots is None:
            raise RuntimeError("the broker is not started")
        if self._closing:
            return False  # stopping: a 503 is retried against the next broker
        if slots.locked():
            if self.admission_wait <= 0:
                return False
            try:
                async with asyncio.timeout(self.admission_wait):
                    await slots.acquire()
            except TimeoutError:
                return False
        else:
            await slots.acquire()
        self._slots_used += 1
        self.tally.set_in_flight(self._slots_used)
        self.tally.accepted(route.name)
        task = asyncio.create_task(self._run_slot(route, stamped))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run_slot(self, route: BrokerRoute, envelope: Envelope) -> None:
        try:
            await self._fan_out(route, envelope)
        finally:
            self._slots_used -= 1
            self.tally.set_in_flight(self._slots_used)
            assert self._slots is not None
            self._slots.release()

    # -- fan-out and delivery --------------------------------------------------------------

    async def _fan_out(self, route: BrokerRoute, envelope: Envelope) -> None:
        matching = [s for s in route.subscriptions if s.filter.matches(envelope.attributes)]
        if not matching:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("event %s matched no trigger of %s", envelope.label(), route.name)
            return
        finished: set[str] = set()
        try:
            if len(matching) == 1:
                await self._deliver_and_follow(route, matching[0], envelope, finished)
            else:
                await asyncio.gather(
                    *(self._deliver_and_follow(route, s, envelope, finished) for s in matching)
                )
        except asyncio.CancelledError:
            unfinished = [s.name for s in matching if s.name not in finished]
            if unfinished:
                reason = f"broker stopped before delivery to {', '.join(unfinished)}"
                self._spool(envelope, reason, unfinished)
            raise

    async def _deliver_and_follow(
        self,
        route: BrokerRoute,
        subscription: Subscription,
        envelope: Envelope,
        finished: set[str],
    ) -> None:
        try:
            reply = await self._deliver(route, subscription, envelope)
            finished.add(subscription.name)
            if reply is not None:
                await self._reingest(route, subscription, envelope, reply)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery to trigger %s failed unexpectedly", subscription.name)
            if subscription.name not in finished:
                reason = f"broker error delivering to {subscription.name}"
                self._spool(envelope, reason, [subscription.name])
                finished.add(subscription.name)

    async def _deliver(
        self, route: BrokerRoute, subscription: Subscription, envelope: Envelope
    ) -> Envelope | None:
        outgoing = envelope.without(TTL_EXTENSION)
        headers = {"prefer": "reply", "kn-namespace": route.namespace}

        def failed(result: DeliveryResult, attempt: int, retry_in: float | None) -> None:
            self._failed_attempt(subscription, outgoing, result, attempt, retry_in)

        self.tally.delivering(subscription.name)
        try:
            result = await self.sender.send(
                subscription.url, outgoing, subscription.policy, headers, failed
            )
            if result.ok:
                self.tally.delivered(subscription.name)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "%s -> %s: delivered (%s)",
                        outgoing.label(),
                        subscription.name,
                        result.status,
                    )
                return result.reply
            await self._dead_letter(subscription, outgoing, subscription.url, result)
            return None
        finally:
            self.tally.delivery_done(subscription.name)

    def _failed_attempt(
        self,
        subscription: Subscription,
        envelope: Envelope,
        result: DeliveryResult,
        attempt: int,
        retry_in: float | None,
    ) -> None:
        if retry_in is not None:
            self.tally.retried(subscription.name)
        failures.log_failure(subscription, envelope, result, attempt, retry_in)

    async def _dead_letter(
        self,
        subscription: Subscription,
        envelope: Envelope,
        failed_url: str,
        result: DeliveryResult,
    ) -> None:
        letter = failures.dead_letter(envelope, failed_url, result)
        if subscription.dead_letter_url is None:
            reason = f"trigger {subscription.name} has no deadLetterSink"
            self._spool(letter, reason, [subscription.name])
            return

        def failed(outcome: DeliveryResult, attempt: int, retry_in: float | None) -> None:
            log.warning(
                "dead letter %s (trigger %s): attempt %d failed: %s",
                envelope.label(),
                subscription.name,
                attempt,
                outcome.describe(),
            )

        sent = await self.sender.send(
            subscription.dead_letter_url, letter, subscription.policy, {}, failed
        )
        if sent.ok:
            self.tally.dead_lettered(subscription.name)
            log.warning(
                "event %s -> trigger %s: failed for good (%s), sent to the dead-letter sink",
                envelope.label(),
                subscription.name,
                result.describe(),
            )
        else:
            reason = f"dead-letter sink {subscription.dead_letter_url}: {sent.describe()}"
            self._spool(letter, reason, [subscription.name])

    async def _reingest(
        self, route: BrokerRoute, subscription: Subscription, cause: Envelope, reply: Envelope
    ) -> None:
        """A reply goes back through the ingress checks, carrying the cause's TTL."""
        self.tally.reply(subscription.name)
        reply = reply.with_attributes(**{TTL_EXTENSION: cause.attributes.get(TTL_EXTENSION)})
        try:
            stamped = self.admit(route, reply)
        except BadInput as error:
            log.warning(
                "reply %s from trigger %s refused: %s", reply.label(), subscription.name, error
            )
            ingress = f"{self.ingress_base}/{route.namespace}/{route.name}"
            refusal = DeliveryResult(400, str(error).encode())
            await self._dead_letter(subscription, cause.without(TTL_EXTENSION), ingress, refusal)
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("reply %s from trigger %s re-ingested", reply.label(), subscription.name)
        await self._fan_out(route, stamped)

    def _spool(self, envelope: Envelope, reason: str, triggers: list[str]) -> None:
        try:
            self.spool.put(envelope, reason)
        except (OSError, spool.SpoolFull) as error:
            for trigger in triggers:
                self.tally.lost(trigger)
            log.critical("event %s LOST: %s: %s", envelope.label(), error, reason)
            return
        for trigger in triggers:
            self.tally.spooled(trigger)
        if not self.spool.batching:  # a batch is summed up once, not per event
            log.error("event %s spooled to %s: %s", envelope.label(), self.spool_path, reason)

    # -- pings -----------------------------------------------------------------------------

    def _fire_ping(self, pinger: Pinger) -> None:
        self.tally.ping(pinger.source.name)
        task = asyncio.create_task(pings.send_tick(self.sender, pinger))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def build(
    manifests: Manifests,
    *,
    port: int,
    services: Mapping[str, str],
    spool_path: Path,
    ping_every: float | None = None,
    max_in_flight: int = 1000,
    admission_wait: float = 2.0,
    spool_max_bytes: int = spool.DEFAULT_MAX_BYTES,
    host: str = "127.0.0.1",
) -> LocalBroker:
    ingress_base = f"http://{host}:{port}"
    routing = compile_routing(manifests, Resolver(services, ingress_base))
    return LocalBroker(
        routing,
        spool_path=spool_path,
        max_in_flight=max_in_flight,
        ping_every=ping_every,
        ingress_base=ingress_base,
        admission_wait=admission_wait,
        spool_max_bytes=spool_max_bytes,
    )
