"""The routing compiled from the manifests, without a broker process: where each Trigger sends,
with which retry policy and dead-letter sink, and what is refused at start."""

from __future__ import annotations

import logging

import pytest

from modelstats.core.errors import ConfigError
from modelstats.local.broker.routing import Resolver, Routing, Subscription, compile_routing
from modelstats.local.knative import cron, delivery, filters
from modelstats.local.knative.resources import (
    Broker,
    DeliverySpec,
    Destination,
    KReference,
    Manifests,
    PingSource,
    Trigger,
)

INGRESS = "http://127.0.0.1:8080"
SERVICES = {"ingest": "http://127.0.0.1:9001", "deadletters": "http://127.0.0.1:9002/"}


def service(name: str, uri: str | None = None) -> Destination:
    return Destination(KReference("Service", name, "serving.knative.dev/v1"), uri)


def broker(delivery: DeliverySpec | None = None, name: str = "default") -> Broker:
    return Broker(name, "modelstats", "MTChannelBasedBroker", delivery, "broker.yaml")


def trigger(
    name: str,
    subscriber: Destination,
    delivery: DeliverySpec | None = None,
    filter: filters.Filter = filters.MATCH_ALL,
    broker: str = "default",
) -> Trigger:
    return Trigger(name, "modelstats", broker, subscriber, filter, delivery, "triggers.yaml")


def compiled(
    *triggers: Trigger,
    brokers: tuple[Broker, ...] = (broker(),),
    pings: tuple[PingSource, ...] = (),
) -> Routing:
    manifests = Manifests(list(brokers), list(triggers), list(pings))
    return compile_routing(manifests, Resolver(SERVICES, INGRESS + "/"))


def only_subscription(
    *triggers: Trigger, brokers: tuple[Broker, ...] = (broker(),)
) -> Subscription:
    (route,) = compiled(*triggers, brokers=brokers).brokers.values()
    (subscription,) = route.subscriptions
    return subscription


# -- where a Trigger sends -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscriber", "url"),
    [
        (service("ingest"), "http://127.0.0.1:9001"),
        # uri relative to the ref's address; an absolute uri stands alone.
        (service("deadletters", "/dead_letters"), "http://127.0.0.1:9002/dead_letters"),
        (service("ingest", "https://elsewhere/x"), "https://elsewhere/x"),
        (Destination(uri="http://127.0.0.1:7000/in"), "http://127.0.0.1:7000/in"),
        # A Broker ref is this ingress, in the Trigger's namespace unless the ref names one.
        (Destination(KReference("Broker", "other")), f"{INGRESS}/modelstats/other"),
        (Destination(KReference("Broker", "b", namespace="ns")), f"{INGRESS}/ns/b"),
    ],
)
def test_subscriber_urls(subscriber: Destination, url: str) -> None:
    assert only_subscription(trigger("t", subscriber)).url == url


def test_a_service_without_a_local_url_is_refused_naming_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"Trigger/t subscriber: Service 'alert'.*--service"):
        compiled(trigger("t", service("alert")))


def test_a_ref_of_another_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match="kind 'Channel'"):
        compiled(trigger("t", Destination(KReference("Channel", "c"))))


def test_a_cesql_filter_is_refused_at_start_naming_the_trigger() -> None:
    cesql = filters.All((filters.CeSql("type = 'x'"),))
    with pytest.raises(ConfigError, match=r"triggers.yaml: Trigger/sql: uses a cesql filter"):
        compiled(trigger("sql", service("ingest"), filter=cesql))


# -- which DeliverySpec is in force ----------------------------------------------------------

SINK = service("deadletters", "/dead_letters")
BROKER_SPEC = DeliverySpec(3, delivery.LINEAR, 1.0, None, SINK)


def test_the_trigger_delivery_replaces_the_broker_delivery_as_a_whole() -> None:
    own = DeliverySpec(retry=1)
    subscription = only_subscription(
        trigger("t", service("ingest"), own), brokers=(broker(BROKER_SPEC),)
    )
    assert subscription.policy == delivery.RetryPolicy(1)
    assert subscription.dead_letter_url is None  # not inherited from the Broker's


def test_without_its_own_a_trigger_takes_the_broker_delivery() -> None:
    subscription = only_subscription(
        trigger("t", service("ingest")), brokers=(broker(BROKER_SPEC),)
    )
    assert subscription.policy == delivery.RetryPolicy(3, delivery.LINEAR, 1.0)
    assert subscription.dead_letter_url == "http://127.0.0.1:9002/dead_letters"


def test_without_any_delivery_the_cluster_default_holds() -> None:
    subscription = only_subscription(trigger("t", service("ingest")))
    assert subscription.policy == delivery.CLUSTER_DEFAULT
    assert subscription.dead_letter_url is None


# -- which Broker a Trigger belongs to, and PingSources ---------------------------------------


def test_triggers_go_to_their_broker_and_a_stray_one_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "modelstats.broker"):
        routing = compiled(
            trigger("a", service("ingest")),
            trigger("b", service("ingest"), broker="other"),
            trigger("stray", service("ingest"), broker="nowhere"),
            brokers=(broker(), broker(name="other")),
        )
    names = {key: [s.name for s in r.subscriptions] for key, r in routing.brokers.items()}
    assert names == {("modelstats", "default"): ["a"], ("modelstats", "other"): ["b"]}
    assert "Trigger stray names Broker modelstats/nowhere" in caplog.text


def test_another_broker_class_is_run_with_mt_semantics_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kafka = Broker("default", "modelstats", "Kafka", None, "broker.yaml")
    with caplog.at_level(logging.WARNING, "modelstats.broker"):
        routing = compiled(trigger("t", service("ingest")), brokers=(kafka,))
    assert ("modelstats", "default") in routing.brokers
    assert "class Kafka" in caplog.text


def test_a_ping_source_sends_to_its_resolved_sink() -> None:
    ping = PingSource(
        "etl-schedule",
        "modelstats",
        cron.parse("*/5 * * * *"),
        "application/json",
        b"{}",
        {},
        Destination(KReference("Broker", "default")),
        "pings.yaml",
    )
    (pinger,) = compiled(pings=(ping,)).pingers
    assert pinger.source is ping
    assert pinger.url == f"{INGRESS}/modelstats/default"
