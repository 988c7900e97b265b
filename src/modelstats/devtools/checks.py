"""Offline checks for the Kubernetes and Knative manifests in `infra/` (no cluster needed).

Two layers, as `knative/SEMANTICS.md` ("Offline validation") prescribes, because the Knative CRD
schemas alone miss most mistakes (the eventing ones have no `required`, `enum` or `pattern`):

1. Schemas (`schemas.py`): each Knative object against its vendored CRD, closed wherever the
   CRD is closed; core kinds against the Kubernetes schemas (`kubernetes-validate`, strict).
2. Webhooks (`webhooks.py`): the rules Knative's admission webhooks enforce and no schema
   states (required fields, broker class, filter dialects, attribute names, durations, cron,
   data XOR dataBase64, autoscaling annotations, containerConcurrency, reserved variables).

`check_directory()` returns every problem found; `modelstats check-manifests` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from modelstats.devtools.documents import Document, Problem, load_documents, manifest_files
from modelstats.devtools.schemas import DEFAULT_CRDS, KUBERNETES_VERSION, schema_problems
from modelstats.devtools.webhooks import webhook_problems

# The documents are this module's input: callers read them through here.
__all__ = [
    "Document",
    "Problem",
    "check_directory",
    "check_documents",
    "load_documents",
    "manifest_files",
]

DEFAULT_MANIFESTS = Path("infra/knative")


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
        problems.extend(schema_problems(document, crd_dir, kubernetes_version))
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
