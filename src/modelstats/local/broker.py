"""The local broker: Knative's MTChannelBasedBroker semantics on one machine.

It reads Brokers, Triggers and PingSources from manifests (see manifests.py) and follows
`knative/SEMANTICS.md`:

- ingress `POST /<namespace>/<broker>`: 202 once accepted, 400 for what is not a valid CloudEvent
  (binary or structured) or whose TTL is spent, 404 for `/` or an unknown broker, 405 for other
  methods, 200 for OPTIONS; it sets `knativearrivaltime` and `knativebrokerttl` (255 when absent,
  else decremented: an event arriving with a TTL is a reply coming back round);
- every Trigger whose filter matches gets the event in binary mode with `Prefer: reply` and
  `Kn-Namespace`, concurrently with the other Triggers, retried per the effective DeliverySpec
  (the Trigger's, else the Broker's, else the cluster default) and dead-lettered with the
  `knativeerror*` extensions when it fails for good;
- a 2xx reply that is a CloudEvent is re-ingested (TTL guard), an empty 2xx is done, a 2xx with
  another body is a failure (502), as in Knative; a reply that the ingress refuses dead-letters
  the event that caused it, as Knative's dispatcher does.

Where it differs from an InMemoryChannel, on purpose:

- the ingress answers 202 as soon as the event is accepted into memory, instead of holding the
  POST until every delivery is finished (retries can take minutes); at most `max_in_flight`
  accepted events are being delivered at once, beyond which the ingress answers 503 with
  `Retry-After` (backpressure; Knative senders retry 503). A reply travels inside the slot of
  the event that caused it, so the cascade can never deadlock on slots;
- nothing accepted is lost while it runs: an event that the dead-letter sink refuses (or that has
  no sink) is appended to the spool file, and so is every event still in flight when the broker
  is stopped after its drain period. `modelstats replay` sends the spool back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from modelstats.core.errors import BadInput, ConfigError
from modelstats.local import delivery, envelopes, spool
from modelstats.local.envelopes import Envelope
from modelstats.local.filters import Filter, uses_cesql
from modelstats.local.manifests import Destination, Manifests, PingSource

log = logging.getLogger("modelstats.broker")

TTL_EXTENSION = "knativebrokerttl"
ARRIVAL_EXTENSION = "knativearrivaltime"
ERROR_DEST = "knativeerrordest"
ERROR_CODE = "knativeerrorcode"
ERROR_DATA = "knativeerrordata"
ERROR_EXTENSIONS = (ERROR_DEST, ERROR_CODE, ERROR_DATA)
DEFAULT_TTL = 255
ERROR_DATA_MAX_CHARS = 1024
PING_TYPE = "dev.knative.sources.ping"
PING_RETRIES = 5
MT_BROKER_CLASS = "MTChannelBasedBroker"


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Subscription:
    """One Trigger, resolved: where to send, how to retry, where to dead-letter."""

    name: str
    filter: Filter
    url: str
    policy: delivery.RetryPolicy
    dead_letter_url: str | None


@dataclass(frozen=True)
class BrokerRoute:
    namespace: str
    name: str
    subscriptions: tuple[Subscription, ...]


@dataclass(frozen=True)
class Pinger:
    source: PingSource
    url: str


@dataclass(frozen=True)
class Routing:
    brokers: Mapping[tuple[str, str], BrokerRoute]
    pingers: tuple[Pinger, ...]


@dataclass
class Outcome:
    """The result of one delivery attempt."""

    ok: bool
    status: int | None = None  # None: no response (network error, timeout)
    body: bytes = b""
    error: str = ""
    reply: Envelope | None = None

    def describe(self) -> str:
        if self.status is None:
            return self.error or "no response"
        return f"HTTP {self.status}" + (f" ({self.error})" if self.error else "")


class Resolver:
    """Destinations to URLs: Services from a name -> URL mapping, Brokers to this ingress."""

    def __init__(self, services: Mapping[str, str], ingress_base: str):
        self.services = dict(services)
        self.ingress_base = ingress_base.rstrip("/")

    def url(self, destination: Destination, namespace: str, what: str) -> str:
        base: str | None = None
        if destination.ref is not None:
            ref = destination.ref
            if ref.kind == "Broker":
                base = f"{self.ingress_base}/{ref.namespace or namespace}/{ref.name}"
            elif ref.kind == "Service":
                base = self.services.get(ref.name)
                if base is None:
                    known = ", ".join(sorted(self.services)) or "none"
                    raise ConfigError(
                        f"{what}: Service {ref.name!r} has no local URL"
                        f" (give --service {ref.name}=http://...; known: {known})"
                    )
            else:
                raise ConfigError(f"{what}: cannot resolve a ref of kind {ref.kind!r} locally")
        uri = destination.uri
        if base is None:
            assert uri is not None  # manifests guarantee ref or uri
            return uri
        if uri:
            if "://" in uri:
                return uri
            return base.rstrip("/") + "/" + uri.lstrip("/")
        return base


def compile_routing(manifests: Manifests, resolver: Resolver) -> Routing:
    """Resolve every Trigger and PingSource; ConfigError for what the broker cannot honour."""
    brokers: dict[tuple[str, str], BrokerRoute] = {}
    for broker in manifests.brokers:
        if broker.broker_class and broker.broker_class != MT_BROKER_CLASS:
            log.warning(
                "Broker %s/%s has class %s: the local broker applies %s semantics",
                broker.namespace,
                broker.name,
                broker.broker_class,
                MT_BROKER_CLASS,
            )
        subscriptions = []
        for trigger in manifests.triggers:
            if trigger.namespace != broker.namespace or trigger.broker != broker.name:
                continue
            what = f"{trigger.source}: Trigger/{trigger.name}"
            if uses_cesql(trigger.filter):
                raise ConfigError(
                    f"{what}: uses a cesql filter, which the local broker does not evaluate;"
                    " use the exact, prefix, suffix, all, any or not dialects"
                )
            spec = trigger.delivery or broker.delivery
            policy = spec.retry_policy() if spec else delivery.CLUSTER_DEFAULT
            dls = spec.dead_letter_sink if spec else None
            subscriptions.append(
                Subscription(
                    name=trigger.name,
                    filter=trigger.filter,
                    url=resolver.url(trigger.subscriber, trigger.namespace, f"{what} subscriber"),
                    policy=policy,
                    dead_letter_url=(
                        resolver.url(dls, trigger.namespace, f"{what} deadLetterSink")
                        if dls
                        else None
                    ),
                )
            )
        brokers[(broker.namespace, broker.name)] = BrokerRoute(
            broker.namespace, broker.name, tuple(subscriptions)
        )
    for trigger in manifests.triggers:
        if (trigger.namespace, trigger.broker) not in brokers:
            log.warning(
                "Trigger %s names Broker %s/%s, which is not in the manifests: ignored",
                trigger.name,
                trigger.namespace,
                trigger.broker,
            )
    pingers = tuple(
        Pinger(
            ping, resolver.url(ping.sink, ping.namespace, f"{ping.source}: PingSource/{ping.name}")
        )
        for ping in manifests.ping_sources
    )
    return Routing(brokers, pingers)


def _error_data(body: bytes) -> str:
    # base64 of at most 768 bytes is at most 1024 characters.
    limit = ERROR_DATA_MAX_CHARS // 4 * 3
    return base64.b64encode(body[:limit]).decode()


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


@dataclass
class BrokerStats:
    accepted: int = 0
    rejected: int = 0
    delivered: int = 0
    dead_lettered: int = 0
    spooled: int = 0
    replies: int = 0
    pings: int = 0


@dataclass
class LocalBroker:
    routing: Routing
    spool_path: Path
    max_in_flight: int = 1000
    ping_every: float | None = None
    drain_seconds: float = 5.0
    ingress_base: str = ""
    stats: BrokerStats = field(default_factory=BrokerStats)

    def __post_init__(self) -> None:
        self._slots_used = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._ping_loops: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            # Servers close idle keep-alive connections (gunicorn after 2 s, uvicorn 5 s);
            # dropping ours sooner avoids sending on a connection that is being closed.
            limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=100, keepalive_expiry=1.0
            ),
            trust_env=False,
        )
        for pinger in self.routing.pingers:
            self._ping_loops.append(asyncio.create_task(self._ping_loop(pinger)))

    async def stop(self) -> None:
        """Stop the pings, let deliveries finish for `drain_seconds`, spool what remains."""
        for loop in self._ping_loops:
            loop.cancel()
        await asyncio.gather(*self._ping_loops, return_exceptions=True)
        if self._tasks:
            log.info("draining %d event(s) in flight", len(self._tasks))
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.drain_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    @property
    def in_flight(self) -> int:
        """Accepted events whose deliveries (and replies) are not finished."""
        return self._slots_used

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the broker is not started")
        return self._client

    # -- ingress ---------------------------------------------------------------------------

    def admit(self, namespace: str, name: str, envelope: Envelope) -> tuple[BrokerRoute, Envelope]:
        """Validate an incoming event against a broker and stamp its TTL and arrival time."""
        route = self.routing.brokers.get((namespace, name))
        if route is None:
            raise LookupError(f"no broker {namespace}/{name}")
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
        stamped = envelope.with_attributes(
            **{TTL_EXTENSION: str(ttl), ARRIVAL_EXTENSION: now_rfc3339()}
        )
        return route, stamped

    def try_accept(self, namespace: str, name: str, envelope: Envelope) -> bool:
        """Accept an external event if a slot is free; False means "full, retry later"."""
        route, stamped = self.admit(namespace, name, envelope)
        if self._slots_used >= self.max_in_flight:
            return False
        self._slots_used += 1
        self.stats.accepted += 1
        self._spawn(route, stamped)
        return True

    def _spawn(self, route: BrokerRoute, envelope: Envelope) -> None:
        task = asyncio.create_task(self._run_slot(route, envelope))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_slot(self, route: BrokerRoute, envelope: Envelope) -> None:
        try:
            await self._fan_out(route, envelope)
        finally:
            self._slots_used -= 1

    # -- fan-out and delivery --------------------------------------------------------------

    async def _fan_out(self, route: BrokerRoute, envelope: Envelope) -> None:
        matching = [s for s in route.subscriptions if s.filter.matches(envelope.attributes)]
        if not matching:
            log.info("event %s matched no trigger of %s/%s", envelope.label(), *_key(route))
            return
        finished: set[str] = set()

        async def one(subscription: Subscription) -> None:
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
                    self._spool(envelope, f"broker error delivering to {subscription.name}")
                    finished.add(subscription.name)

        try:
            await asyncio.gather(*(one(s) for s in matching))
        except asyncio.CancelledError:
            unfinished = [s.name for s in matching if s.name not in finished]
            if unfinished:
                self._spool(envelope, f"broker stopped before delivery to {', '.join(unfinished)}")
            raise

    async def _attempt(
        self, url: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> Outcome:
        try:
            response = await self.client.post(url, headers=headers, content=body, timeout=timeout)
        except httpx.TimeoutException:
            return Outcome(False, None, error=f"timed out after {timeout:g}s")
        except httpx.HTTPError as error:
            return Outcome(False, None, error=f"{type(error).__name__}: {error}")
        status, content = response.status_code, response.content
        if not delivery.is_success(status):
            return Outcome(False, status, content)
        lowered = {k.lower(): v for k, v in response.headers.items()}
        if envelopes.is_cloudevent(lowered):
            try:
                return Outcome(True, status, content, reply=envelopes.decode(lowered, content))
            except BadInput as error:
                return Outcome(False, 502, content, error=f"invalid CloudEvent reply: {error}")
        if content:
            return Outcome(
                False, 502, content, error=f"{status} with a body that is not a CloudEvent"
            )
        return Outcome(True, status)

    async def _send(
        self,
        url: str,
        envelope: Envelope,
        policy: delivery.RetryPolicy,
        extra: dict[str, str],
        what: str,
    ) -> Outcome:
        """POST with retries per `policy`; returns the final outcome."""
        headers, body = envelopes.encode_binary(envelope)
        headers.update(extra)
        outcome = Outcome(False, None, error="not attempted")
        for attempt in range(policy.attempts):
            if attempt:
                wait = policy.wait_before(attempt - 1)
                if wait:
                    await asyncio.sleep(wait)
            outcome = await self._attempt(url, headers, body, policy.attempt_timeout())
            if outcome.ok:
                return outcome
            retried = delivery.is_retried(outcome.status) and attempt + 1 < policy.attempts
            log.warning(
                "%s: attempt %d/%d to %s failed: %s%s",
                what,
                attempt + 1,
                policy.attempts,
                url,
                outcome.describe(),
                f"; retry in {policy.wait_before(attempt):g}s" if retried else "",
            )
            if not delivery.is_retried(outcome.status):
                break
        return outcome

    async def _deliver(
        self, route: BrokerRoute, subscription: Subscription, envelope: Envelope
    ) -> Envelope | None:
        outgoing = envelope.without(TTL_EXTENSION)
        what = f"event {envelope.label()} -> trigger {subscription.name}"
        outcome = await self._send(
            subscription.url,
            outgoing,
            subscription.policy,
            {"prefer": "reply", "kn-namespace": route.namespace},
            what,
        )
        if outcome.ok:
            self.stats.delivered += 1
            log.info("%s: delivered (%s)", what, outcome.status)
            return outcome.reply
        await self._dead_letter(subscription, outgoing, subscription.url, outcome)
        return None

    async def _dead_letter(
        self, subscription: Subscription, envelope: Envelope, failed_url: str, outcome: Outcome
    ) -> None:
        body = outcome.body if outcome.status is not None else outcome.error.encode()
        letter = envelope.with_attributes(
            **{
                ERROR_DEST: failed_url,
                ERROR_CODE: str(outcome.status or 0),
                ERROR_DATA: _error_data(body) if body else None,
            }
        )
        if subscription.dead_letter_url is None:
            self._spool(letter, f"trigger {subscription.name} has no deadLetterSink")
            return
        what = f"dead letter {envelope.label()} (trigger {subscription.name})"
        result = await self._send(
            subscription.dead_letter_url, letter, subscription.policy, {}, what
        )
        if result.ok:
            self.stats.dead_lettered += 1
            log.warning(
                "event %s -> trigger %s: failed for good (%s), sent to the dead-letter sink",
                envelope.label(),
                subscription.name,
                outcome.describe(),
            )
        else:
            self._spool(
                letter, f"dead-letter sink {subscription.dead_letter_url}: {result.describe()}"
            )

    async def _reingest(
        self, route: BrokerRoute, subscription: Subscription, cause: Envelope, reply: Envelope
    ) -> None:
        """A reply goes back through the ingress checks, carrying the cause's TTL."""
        self.stats.replies += 1
        reply = reply.with_attributes(**{TTL_EXTENSION: cause.attributes.get(TTL_EXTENSION)})
        try:
            _, stamped = self.admit(route.namespace, route.name, reply)
        except BadInput as error:
            log.warning(
                "reply %s from trigger %s refused: %s", reply.label(), subscription.name, error
            )
            ingress = f"{self.ingress_base}/{route.namespace}/{route.name}"
            await self._dead_letter(
                subscription,
                cause.without(TTL_EXTENSION),
                ingress,
                Outcome(False, 400, str(error).encode()),
            )
            return
        log.info("reply %s from trigger %s re-ingested", reply.label(), subscription.name)
        await self._fan_out(route, stamped)

    def _spool(self, envelope: Envelope, reason: str) -> None:
        self.stats.spooled += 1
        try:
            spool.append(self.spool_path, envelope, reason)
            log.error("event %s spooled to %s: %s", envelope.label(), self.spool_path, reason)
        except OSError as error:
            log.critical(
                "event %s LOST: cannot write the spool (%s): %s", envelope.id, error, reason
            )

    # -- pings -----------------------------------------------------------------------------

    async def _ping_loop(self, pinger: Pinger) -> None:
        schedule = pinger.source.schedule
        previous = datetime.now(UTC)
        while True:
            if self.ping_every:
                await asyncio.sleep(self.ping_every)
            else:
                # Never before the previous tick: a sleep that ends a hair early must not
                # find the same tick again.
                now = max(datetime.now(UTC), previous)
                previous = schedule.next_after(now)
                await asyncio.sleep(max((previous - datetime.now(UTC)).total_seconds(), 0))
            task = asyncio.create_task(self._ping(pinger))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ping(self, pinger: Pinger) -> None:
        """Send one tick to the sink, with up to PING_RETRIES retries (as mtping)."""
        self.stats.pings += 1
        event = ping_event(pinger.source)
        policy = delivery.RetryPolicy(PING_RETRIES, delivery.EXPONENTIAL, 0.2)
        outcome = await self._send(
            pinger.url, event, policy, {}, f"PingSource {pinger.source.name} tick {event.id}"
        )
        if not outcome.ok:
            log.error(
                "PingSource %s: tick %s not delivered: %s",
                pinger.source.name,
                event.id,
                outcome.describe(),
            )


def _key(route: BrokerRoute) -> tuple[str, str]:
    return route.namespace, route.name


# -- HTTP ------------------------------------------------------------------------------------


def create_app(broker: LocalBroker) -> Starlette:
    async def ingress(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=200, headers={"Allow": "POST, OPTIONS"})
        parts = [p for p in request.url.path.split("/") if p]
        if request.method == "GET" and parts == ["healthz"]:
            return PlainTextResponse("ok")
        if request.method != "POST":
            return PlainTextResponse(
                "only POST is accepted\n", 405, headers={"Allow": "POST, OPTIONS"}
            )
        if len(parts) != 2:
            return PlainTextResponse("POST /<namespace>/<broker>\n", 404)
        namespace, name = parts
        if (namespace, name) not in broker.routing.brokers:
            return PlainTextResponse(f"no broker {namespace}/{name}\n", 404)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            envelope = envelopes.decode(headers, body)
            accepted = broker.try_accept(namespace, name, envelope)
        except BadInput as error:
            broker.stats.rejected += 1
            return PlainTextResponse(f"{error}\n", 400)
        if not accepted:
            return PlainTextResponse(
                "the broker is at its in-flight limit, retry later\n",
                503,
                headers={"Retry-After": "1"},
            )
        return Response(status_code=202)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()

    return Starlette(
        routes=[
            Route("/", ingress, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
            Route(
                "/{path:path}",
                ingress,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            ),
        ],
        lifespan=lifespan,
    )


def build(
    manifests: Manifests,
    *,
    port: int,
    services: Mapping[str, str],
    spool_path: Path,
    ping_every: float | None = None,
    max_in_flight: int = 1000,
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
    )


def serve(broker: LocalBroker, host: str, port: int) -> None:
    """Run the ingress until SIGINT/SIGTERM (uvicorn's handlers), then drain and spool."""
    import uvicorn

    config = uvicorn.Config(
        create_app(broker),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run()
