"""Property: whatever the query string or path, the stats API answers 200, 400 or 404, never 500."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stats.samples import add_samples, client, hours_ago

KEYS = [
    "state", "rule", "model", "version", "limit",
    "metric", "since", "until", "bucket", "format", "exact", "baseline", "label.env",
    "label.", "label", "limit", "pending", "", "x",
]  # fmt: skip
VALUES = [
    "1h", "24h", "7d", "400d", "0m", "1.5h", "-1h", "now", "2026-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "2026-02-30T00:00:00Z", "1m", "1d",
    "csv", "json", "true", "no", "prod", "v1", "v2", "accuracy", "a,,b", "", "%", "%00", "%ff",
    "firing", "pending,resolved",
    "%C3%A8", "1e400", "NaN", "99999999999999999999d", "&", "=",
]  # fmt: skip
PATHS = [
    "/stats/Mistral/v1",
    "/stats/Mistral",
    "/models",
    "/dead-letters",
    "/alerts",
    "/",
    "/openapi.json",
]

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
pairs = st.tuples(st.sampled_from(KEYS) | texts, st.sampled_from(VALUES) | texts)


def _encode(key: str, value: str, raw: bool) -> str:
    if raw:  # stray %, &, = and the like as written; only what a URL cannot hold is escaped
        keep = "%&=,:;/?+@!$'()*[]"
        return f"{quote(key, safe=keep)}={quote(value, safe=keep)}"
    return f"{quote(key, safe='.')}={quote(value, safe=',:')}"


@pytest.fixture
def seeded(clean_db: str) -> str:
    rows = []
    for i in range(30):
        rows.append(("Mistral", "v1", "accuracy", {"env": "prod"}, hours_ago(i * 2), i / 30))
        rows.append(("Mistral", "v2", "accuracy", {}, hours_ago(i * 3 + 1), 1 - i / 30))
    rows.append(("Mistral", "v1", "latency", {}, hours_ago(24 * 10) - timedelta(minutes=1), 3.0))
    add_samples(clean_db, rows)
    return clean_db


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PATHS),
    query=st.lists(st.tuples(pairs, st.booleans()), max_size=6),
)
def test_random_query_strings_never_give_a_500(seeded: str, path: str, query: list) -> None:
    text = "&".join(_encode(key, value, raw) for (key, value), raw in query)
    with client() as http:
        response = http.get(f"{path}?{text}")
    assert response.status_code in (200, 400, 404), (text, response.text)
    if response.status_code == 400:
        assert "field" in response.json()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(model=texts, version=texts)
def test_random_names_in_the_path_never_give_a_500(seeded: str, model: str, version: str) -> None:
    with client() as http:
        one = http.get(f"/stats/{quote(model, safe='')}/{quote(version, safe='')}")
        every = http.get(f"/stats/{quote(model, safe='')}")
    assert one.status_code in (200, 400, 404), one.text
    assert every.status_code in (200, 400, 404), every.text
