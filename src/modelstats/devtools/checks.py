"""Offline checks for the Kubernetes and Knative manifests in `infra/` (no cluster needed).

Two layers, as `knative/SEMANTICS.md` ("Offline validation") prescribes, because the Knative CRD
schemas alone miss most mistakes (the eventing ones have no `required`, `enum` or `pattern`):

1. Schemas. Each Knative object is validated against its vendored CRD (`infra/crds/`), turned
   into a JSON Schema that is closed wherever the CRD is closed, so a misspelled field fails
   as it would under kubectl's strict field validation. Core kinds (Namespace, Secret, Service,
   StatefulSet, Job, ConfigMap, ...) are validated by the `kubernetes-validate` package, strict.
2. The rules Knative's admission webhooks enforce and no schema states: required fields, the
   broker class annotation, one dialect per filter item, attribute names, ISO 8601 durations,
   cron schedules, `data` XOR `dataBase64`, autoscaling annotations only on the revision
   template, `containerConcurrency` within 0..1000, reserved environment variables.

`check_directory()` returns every problem found; `modelstats check-manifests` prints them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from modelstats.core import durations
from modelstats.core.errors import BadInput
from modelstats.local import cron

# Core kinds are checked against this Kubernetes minor version. kubernetes-validate 1.37 ships
# schemas for 1.25 to 1.37, offline; infra/minikube.sh starts minikube with 1.34, and the core
# kinds used here have not changed shape across those versions.
KUBERNETES_VERSION = "1.34"

DEFAULT_MANIFESTS = Path("infra/knative")
DEFAULT_CRDS = Path("infra/crds")

BROKER_CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
VISIBILITY_LABEL = "networking.knative.dev/visibility"
AUTOSCALING_PREFIX = "autoscaling.knative.dev/"
FILTER_DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")
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

_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")
# Names of Knative objects are DNS-1035 labels (they become host names).
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Document:
    """One YAML document of a manifest file."""

    source: str
    index: int  # position in its file, from 0
    body: Any

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", "")) if isinstance(self.body, dict) else ""

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", "")) if isinstance(self.body, dict) else ""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def name(self) -> str:
        metadata = self.body.get("metadata") if isinstance(self.body, dict) else None
        return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""

    @property
    def label(self) -> str:
        return f"{self.source}[{self.index}] {self.kind or '?'}/{self.name or '?'}"


@dataclass(frozen=True, order=True)
class Problem:
    where: str
    path: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.path}: {self.message}"
            if self.path
            else (f"{self.where}: {self.message}")
        )


# --- loading ---------------------------------------------------------------------------------


def manifest_files(directory: Path) -> list[Path]:
    """The `*.yaml` / `*.yml` files directly in `directory`, by name (overlays below it are not
    read: they are patches, not objects)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def load_documents(paths: Iterable[Path]) -> list[Document]:
    """Every non-empty document of the files. A file that is not valid YAML raises ValueError."""
    documents: list[Document] = []
    for path in paths:
        try:
            bodies = list(yaml.safe_load_all(path.read_text("utf-8")))
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML: {error}") from None
        documents.extend(
            Document(str(path), index, body)
            for index, body in enumerate(bodies)
            if body is not None
        )
    return documents


# --- layer 1: schemas ------------------------------------------------------------------------


def crd_to_json_schema(node: Any) -> Any:
    """A CRD's OpenAPI v3 schema as a JSON Schema that rejects what the API server would drop or
    refuse: object nodes with `properties` become closed unless the CRD keeps unknown fields
    there (`x-kubernetes-preserve-unknown-fields`) or says otherwise (`additionalProperties`);
    `x-kubernetes-int-or-string` becomes "integer or string"; `nullable` admits null."""
    if isinstance(node, list):
        return [crd_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties" and isinstance(value, dict):
            result[key] = {name: crd_to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "anyOf", "allOf", "oneOf"):
            result[key] = crd_to_json_schema(value)
        else:
            result[key] = value
    if node.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        result.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    open_here = node.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in node
    if "properties" in node and not open_here:
        result["additionalProperties"] = False
    return result


def _top_level(schema: dict[str, Any]) -> dict[str, Any]:
    # The API server always accepts these three, listed in the CRD or not.
    schema = copy.deepcopy(schema)
    properties = schema.setdefault("properties", {})
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    properties.setdefault("metadata", {"type": "object"})
    return schema


@lru_cache(maxsize=8)
def crd_validators(crd_dir: Path) -> Mapping[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> validator, for every served version of every CRD in `crd_dir`."""
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for document in load_documents(manifest_files(crd_dir)):
        body = document.body
        if not isinstance(body, dict) or body.get("kind") != "CustomResourceDefinition":
            continue
        spec = body["spec"]
        for version in spec["versions"]:
            if not version.get("served", False):
                continue
            schema = _top_level(crd_to_json_schema(version["schema"]["openAPIV3Schema"]))
            validator_class = jsonschema.validators.validator_for(schema)
            validator_class.check_schema(schema)
            key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            validators[key] = validator_class(schema)
    return validators


def _json_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _schema_problems(
    document: Document, crd_dir: Path, kubernetes_version: str
) -> Iterator[Problem]:
    where = document.label
    if document.group.endswith("knative.dev"):
        validator = crd_validators(crd_dir).get((document.api_version, document.kind))
        if validator is None:
            yield Problem(
                where, "", f"no vendored CRD serves {document.api_version} {document.kind}"
            )
            return
        for error in sorted(validator.iter_errors(document.body), key=lambda e: list(e.path)):
            yield Problem(where, _json_path(error.absolute_path), error.message)
        return
    try:
        kubernetes_validate.validate(document.body, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        yield Problem(where, _json_path(error.path), error.message)
    except kubernetes_validate.SchemaNotFoundError:
        yield Problem(
            where,
            "",
            f"unknown kind {document.api_version} {document.kind}: neither a vendored Knative CRD"
            f" nor a Kubernetes {kubernetes_version} kind",
        )


# --- layer 2: the admission webhooks' rules --------------------------------------------------


def cron_problem(schedule: Any, timezone: Any = None) -> str | None:
    """What the PingSource webhook would say about `schedule`, or None when it is valid: the
    local broker's own grammar (`local/cron.py`), so what passes here is what it runs."""
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

    def attributes(self, value: Any, path: str) -> None:
        spec = self.mapping(value, path, required=True)
        for key, item in spec.items():
            if not isinstance(key, str) or not _ATTRIBUTE_NAME.match(key):
                self.fail(path, f"attribute name {key!r} must match ^[a-z][a-z0-9]*$")
            if not isinstance(item, str):
                self.fail(f"{path}.{key}", "expected a string value")

    def filter_item(self, value: Any, path: str) -> None:
        spec = self.mapping(value, path, required=True)
        dialects = [key for key in spec if key in FILTER_DIALECTS]
        unknown = [key for key in spec if key not in FILTER_DIALECTS]
        if unknown:
            self.fail(
                path, f"unknown dialect(s) {unknown}; expected one of {list(FILTER_DIALECTS)}"
            )
        if len(dialects) != 1:
            self.fail(
                path, f"each filter item holds exactly one dialect, found {dialects or 'none'}"
            )
        for dialect in dialects:
            body, sub = spec[dialect], f"{path}.{dialect}"
            if dialect in ("exact", "prefix", "suffix"):
                self.attributes(body, sub)
            elif dialect in ("all", "any"):
                if not isinstance(body, list) or not body:
                    self.fail(sub, "expected a non-empty list of filter items")
                    continue
                for i, item in enumerate(body):
                    self.filter_item(item, f"{sub}[{i}]")
            elif dialect == "not":
                self.filter_item(body, sub)
            elif not isinstance(body, str) or not body.strip():
                self.fail(sub, "expected a CloudEvents SQL expression")


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
    if "attributes" in legacy:
        rules.attributes(legacy["attributes"], "spec.filter.attributes")
    listed = spec.get("filters")
    if listed is not None:
        if not isinstance(listed, list):
            rules.fail("spec.filters", "expected a list of filter items (not a mapping)")
        else:
            for i, item in enumerate(listed):
                rules.filter_item(item, f"spec.filters[{i}]")
            if listed and legacy.get("attributes"):
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
    if "extensions" in overrides:
        rules.attributes(overrides["extensions"], "spec.ceOverrides.extensions")


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


# --- entry points ----------------------------------------------------------------------------


def _is_kustomization(document: Document) -> bool:
    return document.api_version.startswith("kustomize.config.k8s.io/")


def check_documents(
    documents: Iterable[Document],
    crd_dir: Path = DEFAULT_CRDS,
    kubernetes_version: str = KUBERNETES_VERSION,
) -> list[Problem]:
    """Both layers for every document, plus duplicates (same kind, namespace and name)."""
    problems: list[Problem] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for document in documents:
        if not isinstance(document.body, dict):
            problems.append(Problem(document.label, "", "expected a mapping (a Kubernetes object)"))
            continue
        if _is_kustomization(document):
            continue
        if not document.api_version or not document.kind:
            problems.append(Problem(document.label, "", "needs apiVersion and kind"))
            continue
        problems.extend(_schema_problems(document, crd_dir, kubernetes_version))
        problems.extend(webhook_problems(document))
        metadata = document.body.get("metadata") or {}
        namespace = str(metadata.get("namespace", "")) if isinstance(metadata, dict) else ""
        key = (document.group, document.kind, namespace, document.name)
        if key in seen:
            problems.append(Problem(document.label, "metadata.name", f"duplicate of {seen[key]}"))
        else:
            seen[key] = document.label
    return problems


# Kustomization fields that change objects: a directory using them is an overlay whose files are
# patches, not objects, and whose meaning only the rendered output shows.
_OVERLAY_FIELDS = (
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "images",
    "replacements",
    "components",
)


def _overlay_problem(directory: Path) -> Problem | None:
    for path in (directory / "kustomization.yaml", directory / "kustomization.yml"):
        if path.is_file():
            body = yaml.safe_load(path.read_text("utf-8")) or {}
            used = [key for key in _OVERLAY_FIELDS if isinstance(body, dict) and body.get(key)]
            if used:
                return Problem(
                    str(path),
                    "",
                    f"a kustomize overlay ({', '.join(used)}): its files are patches, not objects."
                    f" Check the rendered output instead: kubectl kustomize {directory} >"
                    " rendered.yaml && modelstats check-manifests rendered.yaml",
                )
    return None


def check_directory(
    directory: Path = DEFAULT_MANIFESTS,
    crd_dir: Path = DEFAULT_CRDS,
    kubernetes_version: str = KUBERNETES_VERSION,
) -> tuple[int, list[Problem]]:
    """(number of documents checked, problems) for every manifest file directly in `directory`
    (or for the one file `directory` names). A file that is not valid YAML is a problem; so is a
    kustomize overlay, which is not checked (render it first)."""
    if directory.is_file():
        paths = [directory]
    else:
        overlay = _overlay_problem(directory)
        if overlay is not None:
            return 0, [overlay]
        paths = manifest_files(directory)
    documents: list[Document] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            documents.extend(load_documents([path]))
        except ValueError as error:
            problems.append(Problem(str(path), "", str(error)))
    problems.extend(check_documents(documents, crd_dir, kubernetes_version))
    return len(documents), problems
