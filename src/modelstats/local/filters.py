"""Trigger filters, as Knative Eventing evaluates them (pkg/eventfilter).

Two dialects live side by side in a Trigger:

- the legacy `spec.filter.attributes` map: every key must equal (case-sensitive string
  equality); the value `""` means "present with any non-empty value";
- `spec.filters`: a list of expressions that must all hold, each one of `exact`, `prefix`,
  `suffix` (maps: every key must hold), `all`, `any` (lists), `not` (one expression) or `cesql`.

Events are matched on their attributes as strings (context attributes and extensions in one
map); a missing attribute never matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Attributes = Mapping[str, str]


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
