"""Loading Knative manifests into typed views, and the errors for malformed ones."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from modelstats.core import contract
from modelstats.core.errors import ConfigError
from modelstats.local.knative import filters, manifests

ROOT = Path(__file__).resolve().parents[3]

FULL = """\
apiVersion: v1
kind: Namespace
metadata:
  name: modelstats
---
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {DATABASE_URL: postgresql://x}
---
# a comment-only document and a scalar document are skipped
---
just a string
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  annotations:
    eventing.knative.dev/broker.class: MTChannelBasedBroker
spec:
  delivery:
    retry: 5
    backoffPolicy: exponential
    backoffDelay: PT0.5S
    timeout: PT1M30S
    deadLetterSink:
      ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: deadletters}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: ingest}
spec:
  broker: default
  filter:
    attributes: {type: modelstats.metric.reported}
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: ingest}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: etl, namespace: other}
spec:
  broker: default
  filters:
    - exact: {type: dev.knative.sources.ping}
    - any:
        - prefix: {source: /apis/v1/}
        - not: {suffix: {source: /x}}
  subscriber:
    uri: http://example.invalid/etl
  delivery:
    retry: 2
    backoffPolicy: linear
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: etl-schedule}
spec:
  schedule: "*/2 * * * *"
  timezone: Europe/Paris
  contentType: application/json
  data: '{"source": "synthetic"}'
  ceOverrides:
    extensions: {job: demo}
  sink:
    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: raw}
spec:
  dataBase64: aGVsbG8=
  sink: {uri: http://example.invalid/raw}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: deadletters}
spec:
  template:
    spec:
      containers:
        - image: modelstats-ingest:latest
          args: ["--target", "dead_letters"]
          ports: [{containerPort: 8080}]
          env:
            - {name: THREADS, value: "8"}
            - name: DATABASE_URL
              valueFrom: {secretKeyRef: {name: db, key: DATABASE_URL}}
"""


def write(tmp_path: Path, text: str, name: str = "all.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_loads_every_kind_and_skips_the_rest(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namespace: modelstats\nresources: [all.yaml]\n")
    (tmp_path / "overlays").mkdir()
    (tmp_path / "overlays" / "prod.yaml").write_text(FULL)  # subdirectories are not read
    loaded = manifests.load(write(tmp_path, FULL))
    assert [b.name for b in loaded.brokers] == ["default"]
    assert [t.name for t in loaded.triggers] == ["ingest", "etl"]
    assert [p.name for p in loaded.ping_sources] == ["etl-schedule", "raw"]
    assert [s.name for s in loaded.services] == ["deadletters"]

    broker = loaded.brokers[0]
    assert broker.namespace == "modelstats"  # from kustomization.yaml
    assert broker.broker_class == "MTChannelBasedBroker"
    assert broker.delivery is not None
    assert broker.delivery.retry == 5
    assert broker.delivery.backoff_policy == "exponential"
    assert broker.delivery.backoff_delay == pytest.approx(0.5)
    assert broker.delivery.timeout == pytest.approx(90)
    dls = broker.delivery.dead_letter_sink
    assert dls is not None and dls.ref is not None and dls.ref.name == "deadletters"
    assert broker.source.endswith("all.yaml")


def test_trigger_views(tmp_path: Path) -> None:
    loaded = manifests.load(write(tmp_path, FULL))
    ingest, etl = loaded.triggers
    assert ingest.namespace == "default"  # no kustomization here
    assert ingest.filter == filters.LegacyAttributes({"type": "modelstats.metric.reported"})
    assert ingest.subscriber.ref is not None and ingest.subscriber.ref.kind == "Service"
    assert ingest.delivery is None
    assert etl.namespace == "other"
    assert etl.subscriber.uri == "http://example.invalid/etl"
    assert etl.delivery is not None and etl.delivery.retry_policy().wait_before(2) == 0
    ping = {"type": "dev.knative.sources.ping", "source": "/apis/v1/namespaces/m/pingsources/p"}
    assert etl.filter.matches(ping)
    assert not etl.filter.matches({**ping, "type": "other"})


def test_ping_source_views(tmp_path: Path) -> None:
    loaded = manifests.load(write(tmp_path, FULL))
    schedule, raw = loaded.ping_sources
    assert schedule.data == b'{"source": "synthetic"}'
    assert schedule.content_type == "application/json"
    assert schedule.extensions == {"job": "demo"}
    assert schedule.schedule.timezone.key == "Europe/Paris"  # type: ignore[attr-defined]
    assert schedule.event_source == "/apis/v1/namespaces/default/pingsources/etl-schedule"
    assert raw.data == base64.b64decode("aGVsbG8=")
    assert raw.schedule.text == "* * * * *"  # the default


def test_service_view(tmp_path: Path) -> None:
    (service,) = manifests.load(write(tmp_path, FULL)).services
    assert service.container.image == "modelstats-ingest:latest"
    assert service.container.args == ("--target", "dead_letters")
    assert service.container.command == ()
    assert service.container.env == {"THREADS": "8"}
    assert service.container.env_from_refs == ("DATABASE_URL",)
    assert service.container.port == 8080


TRIGGER = """\
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: bad}}
spec:
  broker: default
  subscriber: {{uri: http://x}}
{body}
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  filters:\n    - exact: {type: a}\n      prefix: {type: b}", "exactly one dialect"),
        ("  filters:\n    exact: {type: a}", "expected a list"),
        ("  filters:\n    - regex: {type: a}", "unknown filter dialect"),
        ("  filters:\n    - exact: {Type: a}", "must match ^[a-z][a-z0-9]*$"),
        ("  filters:\n    - exact: {type: ''}", "non-empty"),
        ("  filters:\n    - any: []", "non-empty list"),
        ("  filter:\n    attributes: {my-ext: a}", "must match"),
        ("  delivery:\n    backoffDelay: 2s", "ISO 8601"),
        ("  delivery:\n    backoffPolicy: fibonacci", "backoffPolicy"),
        ("  delivery:\n    retry: -1", "retry"),
    ],
)
def test_malformed_triggers_name_file_and_object(tmp_path: Path, body: str, message: str) -> None:
    write(tmp_path, TRIGGER.format(body=body), "triggers.yaml")
    with pytest.raises(ConfigError) as info:
        manifests.load(tmp_path)
    text = str(info.value)
    assert "triggers.yaml" in text and "Trigger/bad" in text and message in text


def test_trigger_without_subscriber(tmp_path: Path) -> None:
    write(
        tmp_path,
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\n"
        "spec: {broker: default, subscriber: {}}\n",
    )
    with pytest.raises(ConfigError, match=r"Trigger/t: spec\.subscriber: needs a ref or a uri"):
        manifests.load(tmp_path)


PING = """\
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {{name: p}}
spec:
  sink: {{uri: http://x}}
{body}
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  schedule: '@every 1m'", "@every"),
        ("  schedule: '61 * * * *'", "schedule"),
        ("  timezone: Nowhere/Land", "timezone"),
        ("  data: x\n  dataBase64: eA==", "mutually exclusive"),
        ("  contentType: application/json\n  data: '[1, 2]'", "JSON object"),
        ("  contentType: application/json\n  data: '{nope'", "not valid JSON"),
        ("  dataBase64: '***'", "base64"),
    ],
)
def test_malformed_ping_sources(tmp_path: Path, body: str, message: str) -> None:
    write(tmp_path, PING.format(body=body), "ping.yaml")
    with pytest.raises(ConfigError) as info:
        manifests.load(tmp_path)
    assert "ping.yaml: PingSource/p" in str(info.value) and message in str(info.value)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "kind: [unclosed\n", "broken.yaml")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        manifests.load(tmp_path)


def test_missing_directory() -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        manifests.load("/nonexistent/manifests")


def test_the_project_manifests_load_and_route() -> None:
    """infra/knative: one Broker, Triggers routing to Services that exist there."""
    directory = ROOT / "infra" / "knative"
    # Kinds the local broker has no use for (the NetworkPolicy among them) are skipped.
    assert "kind: NetworkPolicy" in (directory / "networkpolicy.yaml").read_text()
    loaded = manifests.load(directory)
    assert loaded.broker("modelstats", "default") is not None, "infra/knative has no Broker yet"
    names = {s.name for s in loaded.services}
    assert {"ingest", "stats", "alert", "etl", "deadletters"} <= names
    for trigger in loaded.triggers:
        assert trigger.subscriber.ref is not None and trigger.subscriber.ref.name in names
        assert not filters.uses_cesql(trigger.filter)
    filters_of = {t.name: t.filter for t in loaded.triggers}
    stored = {"type": "modelstats.metric.stored", "source": "x"}
    assert filters_of["ingest-metric-reported"].matches(
        {**stored, "type": contract.METRIC_REPORTED}
    )
    assert filters_of["alert-metric-stored"].matches(stored)
    pings = {p.name: {"type": contract.PING, "source": p.event_source} for p in loaded.ping_sources}
    assert filters_of["etl-ping"].matches(pings["etl-schedule"])
    assert filters_of["alert-ping"].matches(pings["alert-schedule"])
    assert not filters_of["etl-ping"].matches(pings["alert-schedule"])
    for logged in (*contract.INFERENCE_TYPES, contract.LABEL_REPORTED):
        routed = {
            t.subscriber.ref.name
            for t in loaded.triggers
            if t.filter.matches({"type": logged, "source": "x"})
        }  # type: ignore[union-attr]
        assert routed == {"ingest"}, logged
