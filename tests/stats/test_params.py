"""The one query-string parser of the stats API, without a server: errors name the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelstats.core import timestamps
from modelstats.core.errors import BadInput
from modelstats.stats import params

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"state": "burning"}, "state"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"model": ""}, "model"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_alert_parameters_name_the_parameter(given, field):
    with pytest.raises(BadInput) as caught:
        params.parse_alerts(given.items(), timestamps.now())
    assert caught.value.field == field


def test_repeated_alert_parameter():
    with pytest.raises(BadInput) as caught:
        params.parse_alerts([("state", "firing"), ("state", "pending")], timestamps.now())
    assert caught.value.field == "state"


@pytest.mark.parametrize("parse", [params.parse_alerts, params.parse_dead_letters])
@pytest.mark.parametrize("text", ["0", "1001", "ten", "-1", "1.5", "²", "99999999999", ""])
def test_one_limit_rule_for_every_route(parse, text):
    with pytest.raises(BadInput) as caught:
        parse([("limit", text)], NOW)
    assert caught.value.field == "limit"


@pytest.mark.parametrize("parse", [params.parse_alerts, params.parse_dead_letters])
def test_limits_within_range_and_the_default(parse):
    assert parse([("limit", " 7 ")], NOW).limit == 7
    assert parse([("limit", "1000")], NOW).limit == 1000
    assert parse([], NOW).limit == params.DEFAULT_LIMIT


@pytest.mark.parametrize("parse", [params.parse_alerts, params.parse_dead_letters])
def test_one_time_rule_for_every_route(parse):
    assert parse([("since", "now")], NOW).since == NOW
    assert parse([("since", "90m")], NOW).since == NOW - timedelta(minutes=90)
    assert parse([("since", "2026-11-01T00:00:00Z")], NOW).since == datetime(
        2026, 11, 1, tzinfo=UTC
    )
    for text in ("yesterday", "10y", "1000000w", "2026-11-01"):
        with pytest.raises(BadInput) as caught:
            parse([("since", text)], NOW)
        assert caught.value.field == "since"


def test_alert_states_are_sorted_and_deduplicated():
    query = params.parse_alerts([("state", "pending, firing,pending")], NOW)
    assert query.states == ("firing", "pending")
    assert params.parse_alerts([], timestamps.now()).states is None


def test_the_accuracy_horizon_defaults_to_the_monitors_and_keeps_its_bounds():
    default = params.parse_accuracy([], NOW)
    assert default.horizon == timedelta(days=7)
    assert (default.since, default.until) == (NOW - timedelta(hours=24), NOW)
    assert params.parse_accuracy([("horizon", "90d")], NOW).horizon == timedelta(days=90)
    for text in ("30s", "91d", "", "7"):
        with pytest.raises(BadInput) as caught:
            params.parse_accuracy([("horizon", text)], NOW)
        assert caught.value.field == "horizon"
    with pytest.raises(BadInput) as caught:
        params.parse_accuracy([("horizon", "1d"), ("horizon", "2d")], NOW)
    assert caught.value.field == "horizon"


def test_a_range_alone_takes_since_and_until_and_nothing_else():
    assert params.parse_range([("since", "6h")], NOW) == (NOW - timedelta(hours=6), NOW)
    with pytest.raises(BadInput) as caught:
        params.parse_range([("label.env", "prod")], NOW)
    assert caught.value.field == "label.env"
