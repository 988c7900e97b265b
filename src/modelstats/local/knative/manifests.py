"""The Knative manifests the local stack reads, loaded from every YAML document in a directory
into the typed resources of `resources.py`.

Objects of other kinds (StatefulSet, Secret, Job, ConfigMap, kustomization files...) are skipped.
Malformed objects raise ConfigError naming the file and the object. A namespace missing from an
object's metadata comes from the directory's kustomization.yaml `namespace`, else `default`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from modelstats.core import contract, durations
from modelstats.core.errors import BadInput, ConfigError
from modelstats.local.knative import cron, delivery, filters
from modelstats.local.knative.resources import (
    Broker,
    Container,
    DeliverySpec,
    Destination,
    KReference,
    Manifests,
    PingSource,
    Service,
    Trigger,
)


class _Where:
    """Builds errors that name the file and the object."""

    def __init__(self, source: str, kind: str, name: str):
        self.label = f"{source}: {kind}/{name}"

    def error(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.label}: {path}: {message}")


def _mapping(value: Any, where: _Where, path: str, required: bool = False) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise where.error(path, f"expected a mapping, got {type(value).__name__}")
    return value


def _string(value: Any, where: _Where, path: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise where.error(path, "expected a non-empty string")
    return value


def _duration(value: Any, where: _Where, path: str) -> float | None:
    if value is None:
        return None
    try:
        return durations.parse_iso8601(value).total_seconds()
    except BadInput as error:
        raise where.error(path, error.message) from None


def _destination(value: Any, where: _Where, path: str) -> Destination:
    spec = _mapping(value, where, path, required=True)
    ref = None
    if "ref" in spec:
        raw = _mapping(spec["ref"], where, f"{path}.ref", required=True)
        ref = KReference(
            kind=_string(raw.get("kind"), where, f"{path}.ref.kind"),
            name=_string(raw.get("name"), where, f"{path}.ref.name"),
            api_version=_string(raw.get("apiVersion"), where, f"{path}.ref.apiVersion", False),
            namespace=raw.get("namespace"),
        )
    uri = spec.get("uri")
    if uri is not None:
        uri = _string(uri, where, f"{path}.uri")
    if ref is None and uri is None:
        raise where.error(path, "needs a ref or a uri")
    return Destination(ref=ref, uri=uri)


def _delivery(value: Any, where: _Where, path: str) -> DeliverySpec | None:
    if value is None:
        return None
    spec = _mapping(value, where, path)
    retry = spec.get("retry")
    if retry is not None and (not isinstance(retry, int) or isinstance(retry, bool) or retry < 0):
        raise where.error(f"{path}.retry", "expected an integer >= 0")
    policy = spec.get("backoffPolicy")
    if policy is not None and policy not in delivery.POLICIES:
        raise where.error(f"{path}.backoffPolicy", f"expected one of {delivery.POLICIES}")
    dls = spec.get("deadLetterSink")
    return DeliverySpec(
        retry=retry,
        backoff_policy=policy,
        backoff_delay=_duration(spec.get("backoffDelay"), where, f"{path}.backoffDelay"),
        timeout=_duration(spec.get("timeout"), where, f"{path}.timeout"),
        dead_letter_sink=None
        if dls is None
        else _destination(dls, where, f"{path}.deadLetterSink"),
    )


def _filter(spec: dict[str, Any], where: _Where) -> filters.Filter:
    try:
        return filters.from_trigger_spec(spec)
    except BadInput as error:
        raise where.error(error.field, error.message) from None


def _broker(doc: dict[str, Any], where: _Where, name: str, namespace: str, source: str) -> Broker:
    metadata = doc.get("metadata") or {}
    annotations = _mapping(metadata.get("annotations"), where, "metadata.annotations")
    spec = _mapping(doc.get("spec"), where, "spec")
    return Broker(
        name=name,
        namespace=namespace,
        broker_class=annotations.get(contract.BROKER_CLASS_ANNOTATION),
        delivery=_delivery(spec.get("delivery"), where, "spec.delivery"),
        source=source,
    )


def _trigger(doc: dict[str, Any], where: _Where, name: str, namespace: str, source: str) -> Trigger:
    spec = _mapping(doc.get("spec"), where, "spec", required=True)
    return Trigger(
        name=name,
        namespace=namespace,
        broker=_string(spec.get("broker"), where, "spec.broker"),
        subscriber=_destination(spec.get("subscriber"), where, "spec.subscriber"),
        filter=_filter(spec, where),
        delivery=_delivery(spec.get("delivery"), where, "spec.delivery"),
        source=source,
    )


def _ping_source(
    doc: dict[str, Any], where: _Where, name: str, namespace: str, source: str
) -> PingSource:
    spec = _mapping(doc.get("spec"), where, "spec", required=True)
    try:
        schedule = cron.parse(spec.get("schedule") or cron.DEFAULT_SCHEDULE, spec.get("timezone"))
    except BadInput as error:
        raise where.error(f"spec.{error.field}", error.message) from None
    content_type = spec.get("contentType")
    data_text, data_b64 = spec.get("data"), spec.get("dataBase64")
    if data_text is not None and data_b64 is not None:
        raise where.error("spec", "data and dataBase64 are mutually exclusive")
    data: bytes | None = None
    if data_text is not None:
        data = _string(data_text, where, "spec.data", required=False).encode()
        if content_type == "application/json":
            try:
                parsed = json.loads(data)
            except ValueError:
                raise where.error("spec.data", "is not valid JSON") from None
            if not isinstance(parsed, dict):
                raise where.error("spec.data", "with application/json must be a JSON object")
    elif data_b64 is not None:
        try:
            data = base64.b64decode(_string(data_b64, where, "spec.dataBase64"), validate=True)
        except binascii.Error:
            raise where.error("spec.dataBase64", "is not valid base64") from None
    overrides = _mapping(spec.get("ceOverrides"), where, "spec.ceOverrides")
    extensions: dict[str, str] = {}
    if overrides.get("extensions"):
        try:
            extensions = filters.attribute_map(
                overrides["extensions"], "spec.ceOverrides.extensions", allow_empty_value=True
            )
        except BadInput as error:
            raise where.error(error.field, error.message) from None
    return PingSource(
        name=name,
        namespace=namespace,
        schedule=schedule,
        content_type=content_type,
        data=data,
        extensions=dict(extensions),
        sink=_destination(spec.get("sink"), where, "spec.sink"),
        source=source,
    )


def _service(doc: dict[str, Any], where: _Where, name: str, namespace: str, source: str) -> Service:
    spec = _mapping(doc.get("spec"), where, "spec", required=True)
    template = _mapping(spec.get("template"), where, "spec.template", required=True)
    pod = _mapping(template.get("spec"), where, "spec.template.spec", required=True)
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        raise where.error("spec.template.spec.containers", "expected a non-empty list")
    raw = _mapping(containers[0], where, "spec.template.spec.containers[0]", required=True)
    path = "spec.template.spec.containers[0]"
    env: dict[str, str] = {}
    from_refs: list[str] = []
    for i, item in enumerate(raw.get("env") or []):
        entry = _mapping(item, where, f"{path}.env[{i}]", required=True)
        var = _string(entry.get("name"), where, f"{path}.env[{i}].name")
        if "value" in entry:
            env[var] = str(entry["value"])
        else:
            from_refs.append(var)
    for key in ("command", "args"):
        value = raw.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise where.error(f"{path}.{key}", "expected a list of strings")
    ports = raw.get("ports") or []
    port = ports[0].get("containerPort") if ports and isinstance(ports[0], dict) else None
    return Service(
        name=name,
        namespace=namespace,
        container=Container(
            image=_string(raw.get("image"), where, f"{path}.image", required=False),
            command=tuple(raw.get("command") or ()),
            args=tuple(raw.get("args") or ()),
            env=env,
            env_from_refs=tuple(from_refs),
            port=port if isinstance(port, int) else None,
        ),
        source=source,
    )


_READERS = {
    ("eventing.knative.dev", "Broker"): _broker,
    ("eventing.knative.dev", "Trigger"): _trigger,
    ("sources.knative.dev", "PingSource"): _ping_source,
    ("serving.knative.dev", "Service"): _service,
}


def _documents(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        text = path.read_text("utf-8")
        for doc in yaml.safe_load_all(text):
            yield str(path), doc
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None


def _default_namespace(directory: Path) -> str:
    for name in ("kustomization.yaml", "kustomization.yml"):
        path = directory / name
        if path.is_file():
            for _, doc in _documents(path):
                if isinstance(doc, dict) and isinstance(doc.get("namespace"), str):
                    return str(doc["namespace"])
    return "default"


def load_documents(documents: Iterator[tuple[str, Any]], default_namespace: str) -> Manifests:
    manifests = Manifests()
    for source, doc in documents:
        if not isinstance(doc, dict):
            continue
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            continue
        group = api_version.split("/")[0] if "/" in api_version else ""
        reader = _READERS.get((group, kind))
        if reader is None:
            continue
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            raise ConfigError(f"{source}: {kind} without metadata.name")
        name = metadata["name"]
        namespace = metadata.get("namespace") or default_namespace
        where = _Where(source, kind, name)
        obj = reader(doc, where, name, str(namespace), source)
        if isinstance(obj, Broker):
            manifests.brokers.append(obj)
        elif isinstance(obj, Trigger):
            manifests.triggers.append(obj)
        elif isinstance(obj, PingSource):
            manifests.ping_sources.append(obj)
        elif isinstance(obj, Service):
            manifests.services.append(obj)
    return manifests


def load(directory: str | Path) -> Manifests:
    """Every `*.yaml` / `*.yml` directly in `directory`, in name order (subdirectories, such as
    kustomize overlays, are not read)."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory of manifests")
    files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())

    def documents() -> Iterator[tuple[str, Any]]:
        for path in files:
            yield from _documents(path)

    return load_documents(documents(), _default_namespace(root))
