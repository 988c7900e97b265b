"""The offline manifest validator: every rule fires on a broken example; the shipped manifests
pass."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from click.testing import CliRunner

from modelstats.cli import main
from modelstats.core import contract
from modelstats.devtools import checks, schemas, webhooks

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "infra" / "knative"
CRDS = ROOT / "infra" / "crds"


def shipped(kind: str, name: str) -> dict[str, Any]:
    """A deep copy of one shipped object, to break in a test."""
    for document in checks.load_documents(checks.manifest_files(MANIFESTS)):
        if document.kind == kind and document.name == name:
            return copy.deepcopy(document.body)
    raise LookupError(f"{kind}/{name} not in {MANIFESTS}")


def problems(body: Any) -> list[str]:
    found = checks.check_documents([checks.Document("test.yaml", 0, body)], CRDS)
    return [str(problem) for problem in found]


def assert_fails(body: Any, *fragments: str) -> None:
    found = problems(body)
    assert found, "expected a problem, found none"
    for fragment in fragments:
        assert any(fragment in line for line in found), f"{fragment!r} not in {found}"


def edited(kind: str, name: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = shipped(kind, name)
    edit(body)
    return body


def container(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = body["spec"]["template"]["spec"]["containers"][0]
    return result


# --- the shipped manifests ------------------------------------------------------------------


def test_shipped_manifests_have_no_problems() -> None:
    count, found = checks.check_directory(MANIFESTS, CRDS)
    assert [str(p) for p in found] == []
    kinds = {d.kind for d in checks.load_documents(checks.manifest_files(MANIFESTS))}
    assert {"Broker", "Trigger", "PingSource", "Service", "StatefulSet", "Job"} <= kinds
    assert count >= 16


def test_shipped_manifests_also_pass_for_the_newest_bundled_kubernetes() -> None:
    _, found = checks.check_directory(MANIFESTS, CRDS, kubernetes_validate.latest_version())
    assert found == []


def test_every_shipped_object_is_really_validated_by_a_schema() -> None:
    # Guards against a check that silently skips: each shipped Knative object has a CRD
    # validator, each core object a kubernetes-validate schema.
    validators = schemas.crd_validators(CRDS)
    for document in checks.load_documents(checks.manifest_files(MANIFESTS)):
        if document.api_version.startswith("kustomize.config.k8s.io/"):
            continue
        if document.group.endswith("knative.dev"):
            assert (document.api_version, document.kind) in validators, document.label
        else:
            kubernetes_validate.validate(document.body, schemas.KUBERNETES_VERSION, strict=True)


# --- layer 1: schemas ---------------------------------------------------------------------


def test_crd_schema_is_closed_where_the_crd_is_closed() -> None:
    schema = schemas.crd_to_json_schema(
        {
            "type": "object",
            "properties": {
                "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
                "open": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "map": {"type": "object", "additionalProperties": {"type": "string"}},
                "port": {"x-kubernetes-int-or-string": True},
                "maybe": {"type": "string", "nullable": True},
            },
        }
    )
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert props["closed"]["additionalProperties"] is False
    assert "additionalProperties" not in props["open"]
    assert props["map"]["additionalProperties"] == {"type": "string"}
    assert props["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert props["maybe"]["type"] == ["string", "null"]
    assert not any(key.startswith("x-kubernetes") for key in props["open"])


@pytest.mark.parametrize(
    ("kind", "name", "edit", "fragment"),
    [
        ("Service", "ingest", lambda b: container(b).update(imag="x"), "'imag' was unexpected"),
        ("Service", "ingest", lambda b: b["spec"].update(templte={}), "'templte' was unexpected"),
        ("Broker", "default", lambda b: b["spec"].update(confg={}), "'confg' was unexpected"),
        (
            "PingSource",
            "etl-schedule",
            lambda b: b["spec"].update(scheduel="* * * * *"),
            "'scheduel' was unexpected",
        ),
        ("Trigger", "etl-ping", lambda b: b["spec"].update(filters={"exact": {}}), "not of type"),
        (
            "Service",
            "ingest",
            lambda b: b["spec"]["template"]["spec"].update(containerConcurrency="8"),
            "not of type",
        ),
    ],
)
def test_knative_schema_rejects_typos_and_wrong_types(
    kind: str, name: str, edit: Callable[[dict[str, Any]], None], fragment: str
) -> None:
    assert_fails(edited(kind, name, edit), fragment)


def test_int_or_string_fields_take_both_and_nothing_else() -> None:
    def port(value: Any) -> dict[str, Any]:
        return edited(
            "Service",
            "ingest",
            lambda b: container(b)["readinessProbe"]["httpGet"].update(port=value),
        )

    assert problems(port(8080)) == []
    assert problems(port("http")) == []
    assert_fails(port([8080]), "readinessProbe.httpGet.port")


@pytest.mark.parametrize(
    ("kind", "name", "edit", "fragment"),
    [
        (
            "Secret",
            "modelstats-db",
            lambda b: b.update(stringdata={}),
            "'stringdata' was unexpected",
        ),
        (
            "StatefulSet",
            "postgres",
            lambda b: b["spec"].pop("selector"),
            "'selector' is a required",
        ),
        ("Job", "modelstats-migrate", lambda b: b["spec"].update(backoffLimit="6"), "not of type"),
    ],
)
def test_core_kinds_are_validated_strictly(
    kind: str, name: str, edit: Callable[[dict[str, Any]], None], fragment: str
) -> None:
    assert_fails(edited(kind, name, edit), fragment)


def test_unknown_kinds_are_reported_not_skipped() -> None:
    event_type = {
        "apiVersion": "eventing.knative.dev/v1beta2",
        "kind": "EventType",
        "metadata": {"name": "x"},
    }
    assert_fails(event_type, "no vendored CRD serves eventing.knative.dev/v1beta2 EventType")
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}}
    assert_fails(widget, "unknown kind example.com/v1 Widget")
    assert_fails({"metadata": {"name": "x"}}, "needs apiVersion and kind")
    assert_fails(["not", "an", "object"], "expected a mapping")


# --- layer 2: webhook rules -----------------------------------------------------------------


def test_broker_class_annotation_is_required() -> None:
    body = edited("Broker", "default", lambda b: b["metadata"].pop("annotations"))
    assert_fails(body, "eventing.knative.dev/broker.class", "is required")


def test_kafka_broker_needs_its_config() -> None:
    def kafka(b: dict[str, Any]) -> None:
        b["metadata"]["annotations"][contract.BROKER_CLASS_ANNOTATION] = "Kafka"
        b["spec"].pop("config")

    assert_fails(edited("Broker", "default", kafka), "a Kafka broker needs its config")


@pytest.mark.parametrize(
    ("delivery", "fragment"),
    [
        ({"retry": -1}, "spec.delivery.retry: expected an integer >= 0"),
        ({"backoffPolicy": "fast"}, "expected 'linear' or 'exponential'"),
        ({"backoffDelay": "0.5s"}, "spec.delivery.backoffDelay: expected an ISO 8601 duration"),
        ({"timeout": "30"}, "spec.delivery.timeout: expected an ISO 8601 duration"),
        ({"backofDelay": "PT1S"}, "unknown field 'backofDelay'"),
        ({"deadLetterSink": {}}, "needs a ref or a uri"),
        ({"deadLetterSink": {"ref": {"kind": "Service", "name": "x"}}}, "ref.apiVersion"),
        ({"deadLetterSink": {"uri": "/relative"}}, "must be an absolute URI"),
    ],
)
def test_delivery_rules(delivery: dict[str, Any], fragment: str) -> None:
    body = edited("Broker", "default", lambda b: b["spec"]["delivery"].update(delivery))
    assert_fails(body, fragment)


def test_trigger_needs_broker_and_subscriber() -> None:
    assert_fails(edited("Trigger", "etl-ping", lambda b: b["spec"].pop("broker")), "spec.broker")
    no_subscriber = edited("Trigger", "etl-ping", lambda b: b["spec"].pop("subscriber"))
    assert_fails(no_subscriber, "spec.subscriber: is required")


def test_misspelled_trigger_field_is_reported_although_the_crd_keeps_it() -> None:
    body = edited("Trigger", "etl-ping", lambda b: b["spec"].update(subscribr={}))
    assert_fails(body, "unknown field 'subscribr'")


def with_filters(*items: Any) -> dict[str, Any]:
    def edit(b: dict[str, Any]) -> None:
        b["spec"].pop("filter")
        b["spec"]["filters"] = list(items)

    return edited("Trigger", "etl-ping", edit)


def test_filters_with_one_dialect_per_item_pass() -> None:
    body = with_filters(
        {"exact": {"type": "dev.knative.sources.ping"}},
        {"prefix": {"source": "/apis/v1/"}},
        {"any": [{"suffix": {"source": "schedule"}}, {"not": {"cesql": "type = 'x'"}}]},
        {"all": [{"exact": {"myext": "1"}}]},
    )
    assert problems(body) == []


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"exact": {"type": "a"}, "prefix": {"source": "b"}}, "exactly one dialect"),
        ({}, "exactly one dialect, found none"),
        ({"regex": {"type": ".*"}}, "unknown filter dialect(s) ['regex']"),
        ({"exact": {"Type": "a"}}, "attribute name 'Type' must match"),
        ({"exact": {"ce-type": "a"}}, "attribute name 'ce-type' must match"),
        ({"exact": {"type": 3}}, "expected a string value"),
        ({"any": [{"exact": {"type": "a"}, "suffix": {"type": "b"}}]}, "spec.filters[0].any[0]"),
        ({"all": []}, "expected a non-empty list"),
        ({"not": {"exact": {"1type": "a"}}}, "spec.filters[0].not.exact"),
        ({"cesql": ""}, "expected a CloudEvents SQL expression"),
    ],
)
def test_filter_item_rules(item: dict[str, Any], fragment: str) -> None:
    assert_fails(with_filters(item), fragment)


def test_legacy_filter_attribute_names_are_checked() -> None:
    body = edited(
        "Trigger",
        "etl-ping",
        lambda b: b["spec"]["filter"]["attributes"].update({"knative_error": "x"}),
    )
    assert_fails(body, "attribute name 'knative_error'")


def test_filter_next_to_filters_is_reported() -> None:
    body = edited(
        "Trigger",
        "etl-ping",
        lambda b: b["spec"].update(filters=[{"exact": {"type": "x"}}]),
    )
    assert_fails(body, "spec.filter: is ignored when spec.filters is non-empty")


@pytest.mark.parametrize(
    "schedule",
    [
        "* * * * *",
        "*/5 * * * *",
        "0 9 * * MON-FRI",
        "0 0 1,15 JAN,jul ?",
        "30 */2 * * * *",
        "0-30/10 * * * *",
        "@hourly",
        "@daily",
        "CRON_TZ=Europe/Paris 0 9 * * *",
    ],
)
def test_cron_schedules_accepted(schedule: str) -> None:
    assert webhooks.cron_problem(schedule) is None


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ("@every 1m", "@every is rejected"),
        ("@often", "unknown descriptor"),
        ("* * * *", "expected 5 fields"),
        ("* * * * * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("* * * * 7", "day of week"),
        ("* * * * FUN", "day of week"),
        ("5-1 * * * *", "ends before it starts"),
        ("*/0 * * * *", "bad step"),
        ("", "expected a cron expression"),
        ("TZ=Mars/Olympus 0 9 * * *", "unknown time zone"),
    ],
)
def test_cron_schedules_rejected(schedule: str, fragment: str) -> None:
    problem = webhooks.cron_problem(schedule)
    assert problem is not None and fragment in problem


def test_ping_source_schedule_is_checked() -> None:
    body = edited("PingSource", "etl-schedule", lambda b: b["spec"].update(schedule="@every 1m"))
    assert_fails(body, "spec.schedule: @every is rejected")


def test_ping_source_data_rules() -> None:
    both = edited("PingSource", "etl-schedule", lambda b: b["spec"].update(dataBase64="e30="))
    assert_fails(both, "data and dataBase64 are mutually exclusive")
    array = edited("PingSource", "etl-schedule", lambda b: b["spec"].update(data="[1, 2]"))
    assert_fails(array, "spec.data: with contentType application/json must be a JSON object")
    garbage = edited("PingSource", "etl-schedule", lambda b: b["spec"].update(data="{oops"))
    assert_fails(garbage, "must be a JSON object")

    def plain_text(b: dict[str, Any]) -> None:
        b["spec"].update(data="{oops", contentType="text/plain")

    assert problems(edited("PingSource", "etl-schedule", plain_text)) == []

    def bad_base64(b: dict[str, Any]) -> None:
        b["spec"].pop("data")
        b["spec"]["dataBase64"] = "not base64!"

    assert_fails(edited("PingSource", "etl-schedule", bad_base64), "is not valid base64")


def test_ping_source_sink_timezone_and_extensions() -> None:
    assert_fails(edited("PingSource", "etl-schedule", lambda b: b["spec"].pop("sink")), "spec.sink")
    zone = edited("PingSource", "etl-schedule", lambda b: b["spec"].update(timezone="Mars/Base"))
    assert_fails(zone, "unknown IANA time zone")
    assert (
        problems(
            edited(
                "PingSource", "etl-schedule", lambda b: b["spec"].update(timezone="Europe/Paris")
            )
        )
        == []
    )
    bad_extension = edited(
        "PingSource",
        "etl-schedule",
        lambda b: b["spec"].update(ceOverrides={"extensions": {"my-ext": "x"}}),
    )
    assert_fails(bad_extension, "attribute name 'my-ext'")


def test_autoscaling_annotations_only_on_the_template() -> None:
    def on_service(b: dict[str, Any]) -> None:
        b["metadata"]["annotations"] = {"autoscaling.knative.dev/min-scale": "1"}

    assert_fails(edited("Service", "ingest", on_service), "belong on spec.template.metadata")


@pytest.mark.parametrize(
    ("annotations", "fragment"),
    [
        ({"min-scale": "one"}, "expected a quoted integer >= 0"),
        ({"max-scale": "-1"}, "expected a quoted integer >= 0"),
        ({"min-scale": "6", "max-scale": "5"}, "is greater than max-scale"),
        ({"target": "0"}, "expected a number >= 0.01"),
        ({"target": "many"}, "expected a number >= 0.01"),
    ],
)
def test_autoscaling_annotation_values(annotations: dict[str, str], fragment: str) -> None:
    def edit(b: dict[str, Any]) -> None:
        template = b["spec"]["template"]["metadata"]["annotations"]
        for key, value in annotations.items():
            template[webhooks.AUTOSCALING_PREFIX + key] = value

    assert_fails(edited("Service", "ingest", edit), fragment)


@pytest.mark.parametrize("value", [-1, 1001])
def test_container_concurrency_range(value: int) -> None:
    body = edited(
        "Service",
        "ingest",
        lambda b: b["spec"]["template"]["spec"].update(containerConcurrency=value),
    )
    assert_fails(body, "containerConcurrency: expected an integer in 0..1000")


@pytest.mark.parametrize("value", [0, 1, 1000])
def test_container_concurrency_bounds_accepted(value: int) -> None:
    body = edited(
        "Service",
        "ingest",
        lambda b: b["spec"]["template"]["spec"].update(containerConcurrency=value),
    )
    assert problems(body) == []


def test_other_service_rules() -> None:
    reserved = edited(
        "Service", "ingest", lambda b: container(b)["env"].append({"name": "PORT", "value": "1"})
    )
    assert_fails(reserved, "PORT is reserved by Knative")
    public = edited(
        "Service",
        "ingest",
        lambda b: b["metadata"]["labels"].update({webhooks.VISIBILITY_LABEL: "public"}),
    )
    assert_fails(public, "the only value is 'cluster-local'")
    two_ports = edited(
        "Service", "ingest", lambda b: container(b)["ports"].append({"containerPort": 9090})
    )
    assert_fails(two_ports, "at most one port")
    slow = edited(
        "Service", "ingest", lambda b: b["spec"]["template"]["spec"].update(timeoutSeconds=900)
    )
    assert_fails(slow, "timeoutSeconds: expected 1..600")


def test_object_names() -> None:
    knative = edited("Service", "deadletters", lambda b: b["metadata"].update(name="dead_letters"))
    assert_fails(knative, "must be a DNS-1035 label")
    core = edited("Secret", "modelstats-db", lambda b: b["metadata"].update(name="Bad_Name"))
    assert_fails(core, "must be a DNS-1123 subdomain")
    assert_fails(
        edited("Secret", "modelstats-db", lambda b: b["metadata"].pop("name")), "metadata.name"
    )


def test_duplicates_are_reported() -> None:
    body = shipped("Trigger", "etl-ping")
    documents = [checks.Document("a.yaml", 0, body), checks.Document("b.yaml", 0, body)]
    found = [str(p) for p in checks.check_documents(documents, CRDS)]
    assert found == [
        "b.yaml[0] Trigger/etl-ping: metadata.name: duplicate of a.yaml[0] Trigger/etl-ping"
    ]


# --- directories, files and the command line -------------------------------------------------


def test_invalid_yaml_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("kind: [unclosed\n")
    count, found = checks.check_directory(tmp_path, CRDS)
    assert count == 0
    assert len(found) == 1 and "not valid YAML" in found[0].message


def test_an_overlay_is_not_checked_as_if_its_patches_were_objects() -> None:
    count, found = checks.check_directory(ROOT / "infra" / "overlays" / "production", CRDS)
    assert count == 0
    assert len(found) == 1 and "kubectl kustomize" in found[0].message


def test_cli_passes_on_the_shipped_manifests() -> None:
    result = CliRunner().invoke(main, ["check-manifests", str(MANIFESTS), "--crds", str(CRDS)])
    assert result.exit_code == 0, result.output
    assert "0 problem(s)" in result.output


def test_cli_prints_problems_and_fails(tmp_path: Path) -> None:
    import yaml

    broken = edited("Broker", "default", lambda b: b["metadata"].pop("annotations"))
    (tmp_path / "broker.yaml").write_text(yaml.safe_dump(broken))
    result = CliRunner().invoke(main, ["check-manifests", str(tmp_path), "--crds", str(CRDS)])
    assert result.exit_code == 1
    assert "eventing.knative.dev/broker.class" in result.output
    single_file = CliRunner().invoke(
        main, ["check-manifests", str(tmp_path / "broker.yaml"), "--crds", str(CRDS)]
    )
    assert single_file.exit_code == 1
