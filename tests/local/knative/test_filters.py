"""Trigger filters without a broker: both dialects as Knative evaluates them, and their grammar.

tests/local/broker/test_broker.py::test_trigger_filters runs the same table through a broker
process; these hold each rule on its own, in no time.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelstats.core.errors import BadInput
from modelstats.local.knative import filters
from modelstats.local.knative.filters import from_trigger_spec

EVENT = {"type": "order.created", "source": "/shop/eu", "id": "1", "region": "eu", "empty": ""}


def matches(spec: dict[str, Any], attributes: dict[str, str] = EVENT) -> bool:
    return from_trigger_spec(spec).matches(attributes)


# -- the legacy `spec.filter.attributes` -----------------------------------------------------


def legacy(**attributes: str) -> dict[str, Any]:
    return {"filter": {"attributes": attributes}}


def test_legacy_every_key_must_equal() -> None:
    assert matches(legacy(type="order.created", region="eu"))
    assert not matches(legacy(type="order.created", region="us"))


def test_legacy_equality_is_case_sensitive_and_whole() -> None:
    assert not matches(legacy(type="Order.created"))
    assert not matches(legacy(type="order"))


def test_legacy_empty_value_means_present_and_not_empty() -> None:
    assert matches(legacy(region=""))
    assert not matches(legacy(empty=""))  # present, but empty
    assert not matches(legacy(missing=""))


def test_legacy_a_missing_attribute_never_matches() -> None:
    assert not matches(legacy(missing="x"))


# -- `spec.filters`: the new dialects --------------------------------------------------------


def listed(*expressions: dict[str, Any]) -> dict[str, Any]:
    return {"filters": list(expressions)}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"exact": {"type": "order.created"}}, True),
        ({"exact": {"type": "order.created", "region": "us"}}, False),
        ({"exact": {"type": "ORDER.CREATED"}}, False),
        ({"prefix": {"type": "order."}}, True),
        ({"prefix": {"type": "Order."}}, False),
        ({"suffix": {"source": "/eu"}}, True),
        ({"suffix": {"source": "/us"}}, False),
        ({"all": [{"prefix": {"type": "order"}}, {"exact": {"region": "eu"}}]}, True),
        ({"all": [{"prefix": {"type": "order"}}, {"exact": {"region": "us"}}]}, False),
        ({"any": [{"exact": {"region": "us"}}, {"suffix": {"source": "eu"}}]}, True),
        ({"any": [{"exact": {"region": "us"}}, {"suffix": {"source": "us"}}]}, False),
        ({"not": {"exact": {"region": "us"}}}, True),
        ({"not": {"exact": {"region": "eu"}}}, False),
        ({"not": {"not": {"prefix": {"type": "order"}}}}, True),
    ],
)
def test_each_dialect(expression: dict[str, Any], expected: bool) -> None:
    assert matches(listed(expression)) is expected


@pytest.mark.parametrize("dialect", ["exact", "prefix", "suffix"])
def test_a_missing_attribute_never_matches_and_its_negation_does(dialect: str) -> None:
    assert not matches(listed({dialect: {"missing": "x"}}))
    assert matches(listed({"not": {dialect: {"missing": "x"}}}))


def test_the_listed_filters_must_all_hold() -> None:
    assert matches(listed({"prefix": {"type": "order"}}, {"exact": {"region": "eu"}}))
    assert not matches(listed({"prefix": {"type": "order"}}, {"exact": {"region": "us"}}))


def test_filters_replace_the_legacy_filter_when_not_empty() -> None:
    both = {**legacy(region="us"), **listed({"exact": {"region": "eu"}})}
    assert matches(both)
    # An empty list is no filter: the legacy one is in force.
    assert not matches({**legacy(region="us"), "filters": []})


@pytest.mark.parametrize("spec", [{}, {"filter": {}}, {"filters": []}, {"filter": None}])
def test_no_filter_passes_everything(spec: dict[str, Any]) -> None:
    assert from_trigger_spec(spec) is filters.MATCH_ALL
    assert matches(spec, {"type": "anything"})


# -- cesql: parsed, so that manifests load; refused by the broker at start -------------------


def test_cesql_is_found_however_deep() -> None:
    deep = from_trigger_spec(listed({"not": {"any": [{"cesql": "type = 'x'"}]}}))
    assert filters.uses_cesql(deep)
    assert not filters.uses_cesql(from_trigger_spec(listed({"exact": {"type": "x"}})))


# -- the grammar: errors name the path -------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({"filters": {"exact": {}}}, "spec.filters", "expected a list"),
        (
            listed({"exact": {"type": "x"}, "prefix": {"type": "y"}}),
            "spec.filters[0]",
            "exactly one",
        ),
        (listed({"regex": {"type": "x"}}), "spec.filters[0]", "unknown filter dialect"),
        (listed({}), "spec.filters[0]", "exactly one dialect, found none"),
        (listed({"exact": {"Type": "x"}}), "spec.filters[0].exact", "must match"),
        (listed({"exact": {"type": ""}}), "spec.filters[0].exact.type", "non-empty"),
        (listed({"exact": {"type": 1}}), "spec.filters[0].exact.type", "string"),
        (listed({"exact": {}}), "spec.filters[0].exact", "at least one"),
        (listed({"all": []}), "spec.filters[0].all", "non-empty list"),
        (listed({"any": [{"exact": "x"}]}), "spec.filters[0].any[0].exact", "mapping"),
        (listed({"cesql": "  "}), "spec.filters[0].cesql", "SQL expression"),
        ({"filter": {"attributes": {"type-x": "a"}}}, "spec.filter.attributes", "must match"),
        ({"filter": "type=x"}, "spec.filter", "mapping"),
    ],
)
def test_bad_filters_name_their_path(spec: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(BadInput) as raised:
        from_trigger_spec(spec)
    assert raised.value.field == path
    assert message in raised.value.message
