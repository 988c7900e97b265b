"""The Knative resources the local broker runs (Broker, Trigger, PingSource, Service), as
`manifests.py` reads them: only the fields the local stack honours, checked and typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from modelstats.core import contract
from modelstats.local.knative import cron, delivery, filters


@dataclass(frozen=True)
class KReference:
    """Knative's KReference: the object a Destination points at (a Service, a Broker)."""

    kind: str
    name: str
    api_version: str = ""
    namespace: str | None = None


@dataclass(frozen=True)
class Destination:
    """`ref` and/or `uri`; with both, `uri` is relative to the ref's address."""

    ref: KReference | None = None
    uri: str | None = None


@dataclass(frozen=True)
class DeliverySpec:
    retry: int | None = None
    backoff_policy: str | None = None
    backoff_delay: float | None = None  # seconds
    timeout: float | None = None  # seconds, per attempt
    dead_letter_sink: Destination | None = None

    def retry_policy(self) -> delivery.RetryPolicy:
        return delivery.RetryPolicy(
            retry=self.retry or 0,
            backoff_policy=self.backoff_policy,
            backoff_delay=self.backoff_delay,
            timeout=self.timeout,
        )


@dataclass(frozen=True)
class Broker:
    name: str
    namespace: str
    broker_class: str | None
    delivery: DeliverySpec | None
    source: str  # file the object came from


@dataclass(frozen=True)
class Trigger:
    name: str
    namespace: str
    broker: str
    subscriber: Destination
    filter: filters.Filter
    delivery: DeliverySpec | None
    source: str


@dataclass(frozen=True)
class PingSource:
    name: str
    namespace: str
    schedule: cron.Schedule
    content_type: str | None
    data: bytes | None
    extensions: Mapping[str, str]
    sink: Destination
    source: str

    @property
    def event_source(self) -> str:
        return contract.ping_source(self.namespace, self.name)


@dataclass(frozen=True)
class Container:
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # literal values only
    env_from_refs: tuple[str, ...] = ()  # names of variables set from Secrets/ConfigMaps
    port: int | None = None


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    container: Container
    source: str


@dataclass
class Manifests:
    brokers: list[Broker] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    ping_sources: list[PingSource] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)

    def service(self, name: str, namespace: str | None = None) -> Service | None:
        for service in self.services:
            if service.name == name and (namespace is None or service.namespace == namespace):
                return service
        return None

    def broker(self, namespace: str, name: str) -> Broker | None:
        for broker in self.brokers:
            if broker.name == name and broker.namespace == namespace:
                return broker
        return None
