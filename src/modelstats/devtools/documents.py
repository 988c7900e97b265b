"""Manifest files as YAML documents, and the problems the checks find in them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


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
