"""Trigger filters, as Knative Eventing evaluates them (pkg/eventfilter).

Two dialects live side by side in a Trigger:

- the legacy `spec.filter.attributes` map: every key must equal (case-sensitive string
  equality); the value `""` means "present with any non-empty value";
- `spec.filters`: a list of expressions that must all hold, each one of `exact`, `prefix`,
  `suffix` (maps: every key must hold), `all`, `any` (lists), `not` (one expression) or `cesql`.

Events are matched on their attributes as strings (context attributes and extensions in one
map); a missing attribute never matches. `from_trigger_spec` reads both dialects from a Trigger's
spec (the one grammar; errors are BadInput naming the path, e.g. `spec.filters[0].exact`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any as AnyValue

from modelstats.core.errors import BadInput

Attributes = Mapping[str, str]
# Knative's rule for the attribute names a filter (or a ceOverrides extension) may use.
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")
DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")


class Filter:
    """An expression over an event's attributes."""

    def matches(self, attributes: Attributes) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Exact(Filter):
    attributes: Mapping[str, str]

    def matches(self, attributes: Attributes) -> bool:
        return all(
            key in attributes and attributes[key] == value for key, value in self.attributes.items()
        )


@dataclass(frozen=True)
class Prefix(Filter):
    attributes: Mapping[str, str]

    def matches(self, attributes: Attributes) -> bool:
        return all(
            key in attributes and attributes[key].startswith(value)
            for key, value in self.attributes.items()
        )


@dataclass(frozen=True)
class Suffix(Filter):
    attributes: Mapping[str, str]

    def matches(self, attributes: Attributes) -> bool:
        return all(
            key in attributes and attributes[key].endswith(value)
            for key, value in self.attributes.items()
        )


@dataclass(frozen=True)
class All(Filter):
    filters: tuple[Filter, ...]

    def matches(self, attributes: Attributes) -> bool:
        return all(f.matches(attributes) for f in self.filters)


@dataclass(frozen=True)
class Any(Filter):
    filters: tuple[Filter, ...]

    def matches(self, attributes: Attributes) -> bool:
        return any(f.matches(attributes) for f in self.filters)


@dataclass(frozen=True)
class Not(Filter):
    filter: Filter

    def matches(self, attributes: Attributes) -> bool:
        return not self.filter.matches(attributes)


@dataclass(frozen=True)
class CeSql(Filter):
    """Parsed so that manifests load; the local broker refuses it at start."""

    expression: str

    def matches(self, attributes: Attributes) -> bool:
        raise NotImplementedError("cesql filters are not supported by the local broker")


@dataclass(frozen=True)
class LegacyAttributes(Filter):
    """`spec.filter.attributes`: equality per key, `""` = present and non-empty."""

    attributes: Mapping[str, str]

    def matches(self, attributes: Attributes) -> bool:
        for key, value in self.attributes.items():
            actual = attributes.get(key)
            if actual is None:
                return False
            if value == "":
                if actual == "":
                    return False
            elif actual != value:
                return False
        return True


MATCH_ALL = All(())


def uses_cesql(expression: Filter) -> bool:
    if isinstance(expression, CeSql):
        return True
    if isinstance(expression, All | Any):
        return any(uses_cesql(f) for f in expression.filters)
    if isinstance(expression, Not):
        return uses_cesql(expression.filter)
    return False


def _mapping(value: AnyValue, path: str) -> dict[str, AnyValue]:
    if not isinstance(value, dict):
        raise BadInput(path, f"expected a mapping, got {type(value).__name__}")
    return value


def attribute_map(value: AnyValue, path: str, allow_empty_value: bool) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, item in _mapping(value, path).items():
        if not isinstance(key, str) or not ATTRIBUTE_NAME.match(key):
            raise BadInput(path, f"attribute name {key!r} must match ^[a-z][a-z0-9]*$")
        if not isinstance(item, str):
            raise BadInput(f"{path}.{key}", "expected a string value")
        if not allow_empty_value and item == "":
            raise BadInput(f"{path}.{key}", "expected a non-empty string value")
        result[key] = item
    if not result:
        raise BadInput(path, "must name at least one attribute")
    return result


def expression(value: AnyValue, path: str) -> Filter:
    """One item of `spec.filters`: exactly one dialect."""
    spec = _mapping(value, path)
    dialects = [key for key in spec if key in DIALECTS]
    unknown = [key for key in spec if key not in DIALECTS]
    if unknown:
        raise BadInput(
            path, f"unknown filter dialect(s) {unknown}; expected one of {list(DIALECTS)}"
        )
    if len(dialects) != 1:
        raise BadInput(path, f"each filter holds exactly one dialect, found {dialects or 'none'}")
    dialect = dialects[0]
    body, sub = spec[dialect], f"{path}.{dialect}"
    if dialect in ("exact", "prefix", "suffix"):
        attributes = attribute_map(body, sub, allow_empty_value=False)
        return {"exact": Exact, "prefix": Prefix, "suffix": Suffix}[dialect](attributes)
    if dialect in ("all", "any"):
        if not isinstance(body, list) or not body:
            raise BadInput(sub, "expected a non-empty list of filters")
        items = tuple(expression(item, f"{sub}[{i}]") for i, item in enumerate(body))
        return All(items) if dialect == "all" else Any(items)
    if dialect == "not":
        return Not(expression(body, sub))
    if not isinstance(body, str) or not body.strip():
        raise BadInput(sub, "expected a CloudEvents SQL expression")
    return CeSql(body)


def from_trigger_spec(spec: Mapping[str, AnyValue]) -> Filter:
    """A Trigger's filter: `spec.filters` when non-empty (it replaces `filter`), else the legacy
    `spec.filter.attributes`, else everything passes."""
    listed = spec.get("filters")
    if listed is not None and not isinstance(listed, list):
        raise BadInput("spec.filters", "expected a list of filters (not a mapping)")
    if listed:
        return All(tuple(expression(item, f"spec.filters[{i}]") for i, item in enumerate(listed)))
    legacy = spec.get("filter")
    attributes = _mapping(legacy, "spec.filter").get("attributes") if legacy is not None else None
    if attributes:
        return LegacyAttributes(
            attribute_map(attributes, "spec.filter.attributes", allow_empty_value=True)
        )
    return MATCH_ALL
