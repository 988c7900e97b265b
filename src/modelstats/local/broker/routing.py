"""The broker's routing, resolved from the manifests: which Triggers a Broker has, where each
one delivers, with which retry policy and dead-letter sink; and where each PingSource sends.

Everything the local broker cannot honour (a cesql filter, a ref it cannot resolve) is a
ConfigError at start, naming the object, rather than a surprise at the first event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from modelstats.core import contract
from modelstats.core.errors import ConfigError
from modelstats.local.knative import delivery
from modelstats.local.knative.filters import Filter, uses_cesql
from modelstats.local.knative.resources import Broker, Destination, Manifests, PingSource, Trigger

log = logging.getLogger("modelstats.broker")


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
        if broker.broker_class and broker.broker_class != contract.MT_BROKER_CLASS:
            log.warning(
                "Broker %s/%s has class %s: the local broker applies %s semantics",
                broker.namespace,
                broker.name,
                broker.broker_class,
                contract.MT_BROKER_CLASS,
            )
        subscriptions = tuple(
            _subscription(trigger, broker, resolver)
            for trigger in manifests.triggers
            if trigger.namespace == broker.namespace and trigger.broker == broker.name
        )
        brokers[(broker.namespace, broker.name)] = BrokerRoute(
            broker.namespace, broker.name, subscriptions
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


def _subscription(trigger: Trigger, broker: Broker, resolver: Resolver) -> Subscription:
    """One Trigger of `broker`: its filter, URL and the DeliverySpec in force (the Trigger's
    as a whole, else the Broker's, else the cluster default)."""
    what = f"{trigger.source}: Trigger/{trigger.name}"
    if uses_cesql(trigger.filter):
        raise ConfigError(
            f"{what}: uses a cesql filter, which the local broker does not evaluate;"
            " use the exact, prefix, suffix, all, any or not dialects"
        )
    spec = trigger.delivery or broker.delivery
    policy = spec.retry_policy() if spec else delivery.CLUSTER_DEFAULT
    sink = spec.dead_letter_sink if spec else None
    return Subscription(
        name=trigger.name,
        filter=trigger.filter,
        url=resolver.url(trigger.subscriber, trigger.namespace, f"{what} subscriber"),
        policy=policy,
        dead_letter_url=(
            resolver.url(sink, trigger.namespace, f"{what} deadLetterSink") if sink else None
        ),
    )
