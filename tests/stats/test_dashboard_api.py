"""The stats API answers the dashboard builds on: bucket=auto, the label values of each version,
and the time of the last sample when a window holds none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelstats.stats.params import AUTO_POINTS
from tests.stats.samples import add_samples, client, hours_ago, iso


@pytest.fixture
def steady(clean_db: str) -> datetime:
    """M v1: a sample every 10 minutes for the last 31 days."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = [
        ("M", "v1", "x", {}, now - timedelta(minutes=i), float(i))
        for i in range(1, 31 * 24 * 60, 10)
    ]
    add_samples(clean_db, rows)
    return now


@pytest.mark.parametrize(
    ("since", "seconds"),
    [("15m", 60), ("1h", 60), ("6h", 120), ("24h", 300), ("7d", 3600), ("30d", 3 * 3600)],
)
def test_bucket_auto_keeps_a_chart_to_a_few_hundred_points(
    steady: datetime, since: str, seconds: int
) -> None:
    with client() as http:
        auto = http.get("/stats/M/v1", params={"since": since, "bucket": "auto"}).json()
        until = auto["until"]
        explicit = http.get(
            "/stats/M/v1", params={"since": auto["since"], "until": until, "bucket": f"{seconds}s"}
        ).json()
    assert auto["bucket_seconds"] == seconds
    points = auto["series"]["x"]
    assert len(points) <= AUTO_POINTS + 1  # the first bucket may start before `since`
    assert points == explicit["series"]["x"]
    assert sum(p["count"] for p in points) == auto["metrics"]["x"]["count"]


def test_bucket_auto_on_versions_side_by_side_and_a_bad_bucket(steady: datetime) -> None:
    with client() as http:
        side = http.get("/stats/M", params={"since": "24h", "bucket": "auto"}).json()
        plain = http.get("/stats/M/v1").json()
        bad = http.get("/stats/M/v1", params={"bucket": "automatic"})
    assert side["bucket_seconds"] == 300
    assert "bucket_seconds" not in plain
    assert bad.status_code == 400 and bad.json()["field"] == "bucket"


def test_models_lists_the_label_values_of_each_version(clean_db: str) -> None:
    add_samples(
        clean_db,
        [
            ("M", "v1", "x", {"env": "prod", "region": "eu"}, hours_ago(1), 1.0),
            ("M", "v1", "y", {"env": "staging"}, hours_ago(1), 1.0),
            ("M", "v1", "x", {"env": "dev"}, hours_ago(72), 1.0),  # outside since=24h
            ("M", "v2", "x", {}, hours_ago(1), 1.0),
        ],
    )
    with client() as http:
        everything = http.get("/models").json()
        recent = http.get("/models", params={"since": "24h"}).json()
    versions = {v["version"]: v for v in everything["models"][0]["versions"]}
    assert versions["v1"]["labels"] == {"env": ["dev", "prod", "staging"], "region": ["eu"]}
    assert versions["v2"]["labels"] == {}
    recent_v1 = recent["models"][0]["versions"][0]
    assert recent_v1["labels"] == {"env": ["prod", "staging"], "region": ["eu"]}


def test_an_empty_window_says_when_the_last_sample_was(clean_db: str) -> None:
    newest = hours_ago(50).replace(microsecond=0)
    add_samples(
        clean_db,
        [
            ("M", "v1", "x", {"env": "prod"}, hours_ago(60), 1.0),
            ("M", "v1", "x", {"env": "prod"}, newest, 2.0),
            ("M", "v1", "x", {"env": "dev"}, hours_ago(40), 3.0),
            ("M", "v2", "x", {"env": "prod"}, hours_ago(1), 4.0),
        ],
    )
    with client() as http:
        empty = http.get("/stats/M/v1", params={"label.env": "prod"}).json()
        nothing = http.get("/stats/M/v1", params={"label.env": "qa"}).json()
        full = http.get("/stats/M/v1", params={"since": "7d"}).json()
        side = http.get("/stats/M", params={"label.env": "prod", "bucket": "1h"}).json()
    assert empty["metrics"] == {}
    assert empty["last_sample"] == iso(newest)
    assert nothing["metrics"] == {} and nothing["last_sample"] is None
    assert "last_sample" not in full
    assert side["versions"]["v1"]["last_sample"] == iso(newest)
    assert side["versions"]["v1"]["series"] == {}
    assert "last_sample" not in side["versions"]["v2"]
