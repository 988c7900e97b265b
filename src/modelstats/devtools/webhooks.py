"""Layer 2 of the offline checks: the rules Knative's admission webhooks enforce and no schema
states: required fields, the broker class annotation, one dialect per filter item, attribute
names, ISO 8601 durations, cron schedules, `data` XOR `dataBase64`, autoscaling annotations only
on the revision template, `containerConcurrency` within 0..1000, reserved environment variables.

Durations and schedules are read with the local broker's own grammars (`core/durations.py`,
`local/knative/cron.py`), so what passes here is what `modelstats run` loads.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any

from modelstats.core import durations
from modelstats.core.contract import BROKER_CLASS_ANNOTATION
from modelstats.core.errors import BadInput
from modelstats.devtools.documents import Document, Problem
from modelstats.local.knative import cron, filters

VISIBILITY_LABEL = "networking.knative.dev/visibility"
AUTOSCALING_PREFIX = "autoscaling.knative.dev/"
# Knative Serving sets these itself and rejects them in a container's env.
RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"})
# Knative Serving's default max-revision-timeout-seconds.
MAX_TIMEOUT_SECONDS = 600
# Where the CRD keeps unknown fields, a typo is stored and silently ignored: list what is read.
TRIGGER_SPEC_FIELDS = frozenset(
    {"broker", "brokerRef", "subscriber", "filter", "filters", "delivery"}
)
DELIVERY_FIELDS = frozenset(
    {
        "retry",
        "backoffPolicy",
        "backoffDelay",
        "timeout",
        "retryAfterMax",
        "deadLetterSink",
        "format",
    }
)

# Names of Knative objects are DNS-1035 labels (they become host names).
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def cron_problem(schedule: Any, timezone: Any = None) -> str | None:
    """What the PingSource webhook would say about `schedule`, or None when it is valid: the
    local broker's own grammar (`local/knative/cron.py`), so what passes here is what it runs."""
    try:
        cron.parse(schedule, timezone)
    except BadInput as error:
        return error.message
    return None


def duration_problem(text: Any) -> str | None:
    """What the webhook would say about an ISO 8601 delivery duration, or None: the grammar
    the local broker reads these fields with (`core/durations.py`)."""
    try:
        durations.parse_iso8601(text)
    except BadInput as error:
        return error.message
    return None


class _Rules:
    """Collects the problems of one document."""

    def __init__(self, document: Document):
        self.document = document
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.document.label, path, message))

    def mapping(self, value: Any, path: str, required: bool = False) -> dict[str, Any]:
        if value is None:
            if required:
                self.fail(path, "is required")
            return {}
        if not isinstance(value, dict):
            self.fail(path, "expected a mapping")
            return {}
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, "is required (a non-empty string)")
            return ""
        return value

    def destination(self, value: Any, path: str) -> None:
        if value is None or not isinstance(value, dict):
            self.mapping(value, path, required=True)
            return
        ref, uri = value.get("ref"), value.get("uri")
        if ref is None and uri is None:
            self.fail(path, "needs a ref or a uri")
        if ref is not None:
            ref = self.mapping(ref, f"{path}.ref")
            for key in ("apiVersion", "kind", "name"):
                self.string(ref.get(key), f"{path}.ref.{key}")
        if uri is not None and ref is None and not re.match(r"^[a-z][a-z0-9+.-]*://", str(uri)):
            self.fail(f"{path}.uri", "must be an absolute URI when there is no ref")

    def known_fields(self, spec: dict[str, Any], known: frozenset[str], path: str) -> None:
        for key in spec:
            if key not in known:
                self.fail(path, f"unknown field {key!r}: the CRD keeps it, nothing reads it")

    def delivery(self, value: Any, path: str) -> None:
        spec = self.mapping(value, path)
        self.known_fields(spec, DELIVERY_FIELDS, path)
        retry = spec.get("retry")
        if retry is not None and (type(retry) is not int or retry < 0):
            self.fail(f"{path}.retry", "expected an integer >= 0")
        policy = spec.get("backoffPolicy")
        if policy is not None and policy not in ("linear", "exponential"):
            self.fail(f"{path}.backoffPolicy", "expected 'linear' or 'exponential'")
        for key in ("backoffDelay", "timeout", "retryAfterMax"):
            problem = duration_problem(spec[key]) if key in spec else None
            if problem:
                self.fail(f"{path}.{key}", problem)
        if "deadLetterSink" in spec:
            self.destination(spec["deadLetterSink"], f"{path}.deadLetterSink")

    def grammar(self, read: Callable[..., object], *args: Any) -> None:
        """Read with the local broker's own grammar; what it refuses is a problem here."""
        try:
            read(*args)
        except BadInput as error:
            self.fail(error.field, error.message)


def _check_metadata(rules: _Rules, knative: bool) -> None:
    metadata = rules.mapping(rules.document.body.get("metadata"), "metadata", required=True)
    name = rules.string(metadata.get("name"), "metadata.name")
    pattern = _DNS_LABEL if knative else _DNS_SUBDOMAIN
    if name and not pattern.match(name):
        kind = "a DNS-1035 label" if knative else "a DNS-1123 subdomain"
        rules.fail("metadata.name", f"{name!r} must be {kind} (lowercase letters, digits, '-')")


def _check_broker(rules: _Rules, body: dict[str, Any]) -> None:
    metadata = rules.mapping(body.get("metadata"), "metadata")
    annotations = rules.mapping(metadata.get("annotations"), "metadata.annotations")
    broker_class = annotations.get(BROKER_CLASS_ANNOTATION)
    if not isinstance(broker_class, str) or not broker_class:
        rules.fail(f"metadata.annotations[{BROKER_CLASS_ANNOTATION}]", "is required")
    spec = rules.mapping(body.get("spec"), "spec")
    if "config" in spec:
        config = rules.mapping(spec["config"], "spec.config")
        for key in ("kind", "name"):
            rules.string(config.get(key), f"spec.config.{key}")
    elif broker_class == "Kafka":
        rules.fail("spec.config", "a Kafka broker needs its config ConfigMap")
    if "delivery" in spec:
        rules.delivery(spec["delivery"], "spec.delivery")


def _check_trigger(rules: _Rules, body: dict[str, Any]) -> None:
    spec = rules.mapping(body.get("spec"), "spec", required=True)
    rules.known_fields(spec, TRIGGER_SPEC_FIELDS, "spec")
    rules.string(spec.get("broker"), "spec.broker")
    rules.destination(spec.get("subscriber"), "spec.subscriber")
    legacy = rules.mapping(spec.get("filter"), "spec.filter")
    if legacy.get("attributes"):
        rules.grammar(filters.attribute_map, legacy["attributes"], "spec.filter.attributes", True)
    listed = spec.get("filters")
    if listed is not None and not isinstance(listed, list):
        rules.fail("spec.filters", "expected a list of filters (not a mapping)")
    elif listed:
        for i, item in enumerate(listed):
            rules.grammar(filters.expression, item, f"spec.filters[{i}]")
        if legacy.get("attributes"):
            # Not a webhook error, but the broker ignores `filter` then: surely a mistake.
            rules.fail("spec.filter", "is ignored when spec.filters is non-empty")
    if "delivery" in spec:
        rules.delivery(spec["delivery"], "spec.delivery")


def _check_ping_source(rules: _Rules, body: dict[str, Any]) -> None:
    spec = rules.mapping(body.get("spec"), "spec", required=True)
    try:
        cron.parse(spec.get("schedule") or cron.DEFAULT_SCHEDULE, spec.get("timezone"))
    except BadInput as error:
        rules.fail(f"spec.{error.field}", error.message)
    if "data" in spec and "dataBase64" in spec:
        rules.fail("spec", "data and dataBase64 are mutually exclusive")
    elif "data" in spec and spec.get("contentType") == "application/json":
        try:
            parsed = json.loads(spec["data"]) if isinstance(spec["data"], str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            rules.fail("spec.data", "with contentType application/json must be a JSON object")
    elif "dataBase64" in spec:
        try:
            base64.b64decode(str(spec["dataBase64"]), validate=True)
        except binascii.Error:
            rules.fail("spec.dataBase64", "is not valid base64")
    rules.destination(spec.get("sink"), "spec.sink")
    overrides = rules.mapping(spec.get("ceOverrides"), "spec.ceOverrides")
    if overrides.get("extensions"):
        extensions = overrides["extensions"]
        rules.grammar(filters.attribute_map, extensions, "spec.ceOverrides.extensions", True)


def _nonnegative_int(text: Any) -> int | None:
    return int(text) if isinstance(text, str) and text.isdigit() else None


def _check_autoscaling(rules: _Rules, annotations: dict[str, Any], path: str) -> None:
    scale: dict[str, int] = {}
    for key in ("min-scale", "max-scale", "initial-scale"):
        full = AUTOSCALING_PREFIX + key
        if full in annotations:
            value = _nonnegative_int(annotations[full])
            if value is None:
                rules.fail(f"{path}[{full}]", "expected a quoted integer >= 0")
            else:
                scale[key] = value
    if scale.get("max-scale", 0) and scale.get("min-scale", 0) > scale["max-scale"]:
        rules.fail(f"{path}[{AUTOSCALING_PREFIX}min-scale]", "is greater than max-scale")
    target = annotations.get(AUTOSCALING_PREFIX + "target")
    if target is not None:
        try:
            ok = float(target) >= 0.01
        except (TypeError, ValueError):
            ok = False
        if not ok:
            rules.fail(f"{path}[{AUTOSCALING_PREFIX}target]", "expected a number >= 0.01")


def _check_service(rules: _Rules, body: dict[str, Any]) -> None:
    metadata = rules.mapping(body.get("metadata"), "metadata")
    for key in rules.mapping(metadata.get("annotations"), "metadata.annotations"):
        if str(key).startswith(AUTOSCALING_PREFIX):
            rules.fail(
                f"metadata.annotations[{key}]",
                "autoscaling annotations belong on spec.template.metadata (the webhook rejects"
                " them on the Service)",
            )
    labels = rules.mapping(metadata.get("labels"), "metadata.labels")
    if VISIBILITY_LABEL in labels and labels[VISIBILITY_LABEL] != "cluster-local":
        rules.fail(f"metadata.labels[{VISIBILITY_LABEL}]", "the only value is 'cluster-local'")
    spec = rules.mapping(body.get("spec"), "spec", required=True)
    template = rules.mapping(spec.get("template"), "spec.template", required=True)
    template_meta = rules.mapping(template.get("metadata"), "spec.template.metadata")
    template_annotations = rules.mapping(
        template_meta.get("annotations"), "spec.template.metadata.annotations"
    )
    _check_autoscaling(rules, template_annotations, "spec.template.metadata.annotations")
    if VISIBILITY_LABEL in rules.mapping(template_meta.get("labels"), "spec.template.metadata"):
        rules.fail("spec.template.metadata.labels", f"{VISIBILITY_LABEL} belongs on the Service")
    pod = rules.mapping(template.get("spec"), "spec.template.spec", required=True)
    concurrency = pod.get("containerConcurrency")
    if concurrency is not None and (type(concurrency) is not int or not 0 <= concurrency <= 1000):
        rules.fail("spec.template.spec.containerConcurrency", "expected an integer in 0..1000")
    timeout = pod.get("timeoutSeconds")
    if timeout is not None and (type(timeout) is not int or not 0 < timeout <= MAX_TIMEOUT_SECONDS):
        rules.fail("spec.template.spec.timeoutSeconds", f"expected 1..{MAX_TIMEOUT_SECONDS}")
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        rules.fail("spec.template.spec.containers", "needs at least one container")
        return
    with_ports = 0
    for i, container in enumerate(containers):
        path = f"spec.template.spec.containers[{i}]"
        container = rules.mapping(container, path)
        rules.string(container.get("image"), f"{path}.image")
        ports = container.get("ports") or []
        if isinstance(ports, list) and len(ports) > 1:
            rules.fail(f"{path}.ports", "a Knative container exposes at most one port")
        with_ports += bool(ports)
        for j, env in enumerate(container.get("env") or []):
            if isinstance(env, dict) and env.get("name") in RESERVED_ENV:
                rules.fail(f"{path}.env[{j}].name", f"{env['name']} is reserved by Knative")
    if len(containers) > 1 and with_ports != 1:
        rules.fail("spec.template.spec.containers", "exactly one container must name a port")


_KNATIVE_RULES: dict[tuple[str, str], Callable[[_Rules, dict[str, Any]], None]] = {
    ("eventing.knative.dev", "Broker"): _check_broker,
    ("eventing.knative.dev", "Trigger"): _check_trigger,
    ("sources.knative.dev", "PingSource"): _check_ping_source,
    ("serving.knative.dev", "Service"): _check_service,
}


def webhook_problems(document: Document) -> list[Problem]:
    """Layer 2 alone: the admission rules for one document."""
    rules = _Rules(document)
    body = document.body
    knative = document.group.endswith("knative.dev")
    _check_metadata(rules, knative)
    check = _KNATIVE_RULES.get((document.group, document.kind))
    if check is not None:
        check(rules, body)
    elif knative and isinstance(body.get("spec"), dict) and "delivery" in body["spec"]:
        rules.delivery(body["spec"]["delivery"], "spec.delivery")
    return rules.problems
