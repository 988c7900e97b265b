"""`modelstats check-manifests` and the local broker read the same manifests with one grammar
for durations and one for cron: every manifest the checker accepts, the broker loads, and a
duration or schedule the broker refuses, the checker reports.

The examples vary the fields both read with their own grammar (delivery durations, retry,
schedule, time zone, extension names) on top of the shipped objects.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modelstats.core.errors import ConfigError
from modelstats.devtools import checks
from modelstats.local.knative import manifests

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "infra" / "knative"
CRDS = ROOT / "infra" / "crds"
SHIPPED = checks.load_documents(checks.manifest_files(MANIFESTS))


def shipped(kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(d.body for d in SHIPPED if d.kind == kind))


def _part(unit: str) -> st.SearchStrategy[str]:
    number = st.from_regex(r"\A\d{1,3}(\.\d{1,2})?\Z")
    return st.one_of(st.just(""), number.map(lambda n: n + unit))


_ISO_LIKE = st.builds(
    lambda date, t, time: f"P{date}{t}{time}",
    st.tuples(_part("Y"), _part("M"), _part("W"), _part("D")).map("".join),
    st.sampled_from(["", "T"]),
    st.tuples(_part("H"), _part("M"), _part("S")).map("".join),
)
DURATIONS = st.one_of(_ISO_LIKE, st.text(alphabet="PTYMWDHS0123456789.-", max_size=8))
_CRON_FIELDS = ["*", "?", "0", "5", "59", "60", "*/5", "*/0", "1-5", "5-1", "0-30/10", "1,2"]
_CRON_FIELDS += ["1,,2", "7", "13", "24", "31", "MON", "mon-fri", "JAN", "FUN", "a", "?/2"]
SCHEDULES = st.one_of(
    st.lists(st.sampled_from(_CRON_FIELDS), min_size=4, max_size=7).map(" ".join),
    st.sampled_from(["@hourly", "@daily", "@every 1m", "@often", "", "   "]),
    st.tuples(
        st.sampled_from(["CRON_TZ=Europe/Paris", "TZ=UTC", "TZ=Mars/Olympus"]),
        st.lists(st.sampled_from(_CRON_FIELDS), min_size=5, max_size=5).map(" ".join),
    ).map(" ".join),
)
ZONES = st.sampled_from([None, "Europe/Paris", "UTC", "Mars/Base", "", "../etc"])
NAMES = st.sampled_from(["myext", "a1", "Bad", "1abc", "ce-type", "x_y"])


def _set(spec: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        spec.pop(key, None)
    else:
        spec[key] = value


def _loads(documents: list[dict[str, Any]]) -> bool:
    try:
        manifests.load_documents(iter([("example.yaml", d) for d in documents]), "modelstats")
    except ConfigError:
        return False
    return True


def _accepted(documents: list[dict[str, Any]]) -> bool:
    wrapped = [checks.Document("example.yaml", i, d) for i, d in enumerate(documents)]
    return not checks.check_documents(wrapped, CRDS)


def test_the_shipped_manifests_pass_the_checker_and_load() -> None:
    assert _accepted([d.body for d in SHIPPED])
    assert manifests.load(MANIFESTS).ping_sources


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    backoff_delay=st.one_of(st.none(), DURATIONS),
    timeout=st.one_of(st.none(), DURATIONS),
    retry=st.sampled_from([None, 0, 3, -1]),
    schedule=st.one_of(st.none(), SCHEDULES),
    timezone=ZONES,
    extension=NAMES,
)
# The disagreement this test was written for: the checker passed P1M, the broker refused it.
@example(None, "P1M", None, None, None, "myext")
@example("P1Y", None, 2, "0 9 * * MON-FRI", "Europe/Paris", "myext")
def test_what_the_checker_accepts_the_broker_loads(
    backoff_delay: str | None,
    timeout: str | None,
    retry: int | None,
    schedule: str | None,
    timezone: str | None,
    extension: str,
) -> None:
    broker, ping = shipped("Broker"), shipped("PingSource")
    delivery = broker["spec"]["delivery"]
    _set(delivery, "backoffDelay", backoff_delay)
    _set(delivery, "timeout", timeout)
    _set(delivery, "retry", retry)
    _set(ping["spec"], "schedule", schedule)
    _set(ping["spec"], "timezone", timezone)
    ping["spec"]["ceOverrides"] = {"extensions": {extension: "x"}}
    documents = [broker, ping]
    if _accepted(documents):
        assert _loads(documents)


@settings(max_examples=300, deadline=None)
@given(duration=DURATIONS, schedule=SCHEDULES, timezone=ZONES)
def test_the_checker_reports_every_duration_and_schedule_the_broker_refuses(
    duration: str, schedule: str, timezone: str | None
) -> None:
    broker, ping = shipped("Broker"), shipped("PingSource")
    broker["spec"]["delivery"]["backoffDelay"] = duration
    ping["spec"]["schedule"] = schedule
    _set(ping["spec"], "timezone", timezone)
    for document in (broker, ping):
        assert _loads([document]) == _accepted([document]), document["spec"]


_FILTER_LEAVES = st.sampled_from(
    [
        {"exact": {"type": "t"}},
        {"exact": {"type": ""}},
        {"prefix": {"source": "/a"}},
        {"suffix": {"Bad": "x"}},
        {"exact": {"type": 3}},
        {"cesql": "type = 'x'"},
        {"cesql": " "},
        {},
        {"exact": {"type": "a"}, "prefix": {"source": "b"}},
        {"regex": {"type": "b"}},
    ]
)
FILTERS = st.recursive(
    _FILTER_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=2).map(lambda items: {"all": items}),
        st.lists(inner, max_size=2).map(lambda items: {"any": items}),
        inner.map(lambda item: {"not": item}),
    ),
    max_leaves=4,
)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(FILTERS, max_size=3))
def test_checker_and_broker_read_trigger_filters_alike(items: list[Any]) -> None:
    trigger = shipped("Trigger")
    trigger["spec"].pop("filter", None)
    trigger["spec"]["filters"] = items
    assert _loads([trigger]) == _accepted([trigger]), items
