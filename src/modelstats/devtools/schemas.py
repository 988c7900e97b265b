"""Layer 1 of the offline checks: every object against its schema.

Each Knative object is validated against its vendored CRD (`infra/crds/`), turned into a JSON
Schema that is closed wherever the CRD is closed, so a misspelled field fails as it would under
kubectl's strict field validation. Core kinds (Namespace, Secret, Service, StatefulSet, Job,
ConfigMap, ...) are validated by the `kubernetes-validate` package, strict.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

from modelstats.devtools.documents import Document, Problem, load_documents, manifest_files

# Core kinds are checked against this Kubernetes minor version. kubernetes-validate 1.37 ships
# schemas for 1.25 to 1.37, offline; infra/minikube.sh starts minikube with 1.34, and the core
# kinds used here have not changed shape across those versions.
KUBERNETES_VERSION = "1.34"
DEFAULT_CRDS = Path("infra/crds")


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


def schema_problems(
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
