"""Validation of metric reports: shapes accepted, and each rule naming the offending field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from modelstats.core.errors import BadInput
from modelstats.core.reports import parse_reports
from modelstats.core.settings import from_environment

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SETTINGS = from_environment({})


def parse(data: object):
    return parse_reports(data, default_time=NOW, now=NOW, settings=SETTINGS)


def field_of(data: object) -> str:
    with pytest.raises(BadInput) as caught:
        parse(data)
    return caught.value.field


def report(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {"model": "Mistral", "version": "v1", "metrics": {"drift": 0.1}}
    base.update(overrides)
    return base


def test_one_report_is_normalized_with_time_and_labels():
    (only,) = parse(report(labels={"env": "prod"}))
    assert only.to_json() == {
        "model": "Mistral",
        "version": "v1",
        "time": "2026-11-28T12:00:00Z",
        "metrics": {"drift": 0.1},
        "labels": {"env": "prod"},
    }


def test_reports_list_and_bare_array_give_the_same_reports():
    items = [report(), report(model="GPT", metrics={"x": 1})]
    assert parse({"reports": items}) == parse(items)
    assert [r.model for r in parse(items)] == ["Mistral", "GPT"]


def test_flat_shape_of_the_first_version():
    (only,) = parse({"name": "Mistral", "version": "v1", "prediction_accuracy": 0.19, "drift": 2})
    assert only.model == "Mistral"
    assert only.metrics == {"prediction_accuracy": 0.19, "drift": 2.0}
    assert only.labels == {}


def test_explicit_time_is_kept_in_utc():
    (only,) = parse(report(time="2026-11-28T13:30:00+01:00"))
    assert only.time == datetime(2026, 11, 28, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"reports": [report(), report(metrics={"drift": "0.1"})]}, "reports[1].metrics.drift"),
        ({"reports": [report(metrics={"drift": True})]}, "reports[0].metrics.drift"),
        ({"reports": [report(metrics={"drift": None})]}, "reports[0].metrics.drift"),
        ([report(), report(), report(model="")], "[2].model"),
        ({"reports": [report(version=3)]}, "reports[0].version"),
        ({"reports": [report(metrics={})]}, "reports[0].metrics"),
        ({"reports": [report(metrics=[1])]}, "reports[0].metrics"),
        ({"reports": [report(labels={"env": 1})]}, "reports[0].labels.env"),
        ({"reports": [report(labels="prod")]}, "reports[0].labels"),
        ({"reports": [report(time="yesterday")]}, "reports[0].time"),
        ({"reports": [report(time="2026-11-28T12:00:00")]}, "reports[0].time"),
        ({"reports": [report(colour="red")]}, "reports[0].colour"),
        ({"reports": [], "extra": 1}, "extra"),
        ({"reports": []}, "reports"),
        ({"reports": "many"}, "reports"),
        ([], "data"),
        ("text", "data"),
        (None, "data"),
        ({"name": "Mistral", "version": "v1"}, "data"),
        ({"version": "v1", "drift": 1}, "data.model"),
        (report(model="bad\nname"), "data.model"),
        (report(model="x" * 201), "data.model"),
        # PostgreSQL text cannot hold NUL; a label value is stored as text in jsonb.
        ({"reports": [report(labels={"env": "a\x00b"})]}, "reports[0].labels.env"),
    ],
)
def test_bad_input_names_the_field(data: object, field: str):
    assert field_of(data) == field


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_from_json_are_rejected(literal: str):
    data = json.loads(
        '{"reports": [{"model": "m", "version": "v", "metrics": {"drift": LITERAL}}]}'.replace(
            "LITERAL", literal
        )
    )
    assert field_of(data) == "reports[0].metrics.drift"


def test_a_series_key_must_fit_an_index_row():
    """Each name is within its limit, but together (4-byte characters, several labels) they
    could exceed PostgreSQL's index row, were the text incompressible: refused up front."""
    wide = "\U0001f600" * 200  # 800 bytes
    labels = {f"k{i}": wide for i in range(3)}
    assert field_of(report(labels=labels)) == "data.labels"
    assert field_of(report(model=wide, version=wide, metrics={wide: 1.0})) == "data"
    fitting = {f"k{i}": "v" * 190 for i in range(9)}  # ASCII, 1,728 bytes with the names
    assert parse(report(labels=fitting))


def test_times_far_in_the_future_or_before_1970_are_rejected():
    future = (NOW + timedelta(days=2)).isoformat()
    assert field_of(report(time=future)) == "data.time"
    assert field_of(report(time="1969-12-31T23:59:59Z")) == "data.time"
    assert parse(report(time=(NOW + timedelta(hours=23)).isoformat()))


def test_counts_are_bounded():
    small = from_environment(
        {"MAX_REPORTS_PER_EVENT": "2", "MAX_METRICS_PER_REPORT": "2", "MAX_LABELS_PER_REPORT": "1"}
    )

    def fails(data: object) -> str:
        with pytest.raises(BadInput) as caught:
            parse_reports(data, NOW, NOW, small)
        return caught.value.field

    assert fails({"reports": [report()] * 3}) == "reports"
    assert fails(report(metrics={"a": 1, "b": 2, "c": 3})) == "data.metrics"
    assert fails(report(labels={"a": "1", "b": "2"})) == "data.labels"
    assert len(parse_reports({"reports": [report()] * 2}, NOW, NOW, small)) == 2


def test_time_forms_rfc3339_allows():
    (nanos,) = parse(report(time="2026-11-28T10:00:00.123456789Z"))
    assert nanos.time == datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC)
    (lower,) = parse(report(time="2026-11-28t10:00:00z"))
    assert lower.time == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_integers_become_floats_and_huge_ones_are_rejected():
    (only,) = parse(report(metrics={"requests": 12}))
    assert only.metrics == {"requests": 12.0}
    assert field_of(report(metrics={"requests": 10**400})) == "data.metrics.requests"
