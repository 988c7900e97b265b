"""The stats function against a real PostgreSQL: each aggregate, filter, bucket and error."""

from __future__ import annotations

import csv
import io
import math
import os
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from modelstats.local.stack.embedded import EmbeddedPostgres
from modelstats.store import db
from tests.configuration import configure
from tests.functions import function_process
from tests.stats.samples import (
    SOURCE,
    add_samples,
    assert_close,
    client,
    expected,
    hours_ago,
    iso,
    percentile_cont,
)

ACCURACY = [0.91, 0.87, 0.95, 0.42, 0.88, 0.90, 0.93]
LATENCY = [12.5, 11.0, 30.25, 14.0, 12.0, 13.5, 90.0]


@pytest.fixture
def data(clean_db: str) -> datetime:
    """Mistral v1: 7 samples of two metrics over the last 7 hours, plus noise elsewhere."""
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for i, (accuracy, latency) in enumerate(zip(ACCURACY, LATENCY, strict=True)):
        moment = now - timedelta(hours=7 - i, minutes=30)
        rows.append(("Mistral", "v1", "accuracy", {"env": "prod"}, moment, accuracy))
        rows.append(("Mistral", "v1", "latency", {"env": "prod"}, moment, latency))
    # Outside the default 24 h window, another version, another model, another label set.
    rows.append(("Mistral", "v1", "accuracy", {"env": "prod"}, now - timedelta(hours=30), 0.1))
    rows.append(("Mistral", "v2", "accuracy", {"env": "prod"}, now - timedelta(hours=2), 0.5))
    rows.append(("Llama", "v1", "accuracy", {}, now - timedelta(hours=2), 0.7))
    rows.append(("Mistral", "v1", "accuracy", {"env": "dev"}, now - timedelta(minutes=5), 0.2))
    add_samples(clean_db, rows)
    return now


def test_each_aggregate_is_exact_on_known_data(data: datetime) -> None:
    with client() as http:
        response = http.get("/stats/Mistral/v1", params={"label.env": "prod"})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "Mistral" and body["version"] == "v1"
    assert body["percentiles"] == "exact"
    assert set(body["metrics"]) == {"accuracy", "latency"}
    accuracy = body["metrics"]["accuracy"]
    assert_close(accuracy, expected(ACCURACY))
    assert accuracy["first"] == iso(data - timedelta(hours=7, minutes=30))
    assert accuracy["last"] == iso(data - timedelta(hours=1, minutes=30))
    assert accuracy["last_value"] == ACCURACY[-1]
    assert_close(body["metrics"]["latency"], expected(LATENCY))
    assert body["metrics"]["latency"]["last_value"] == LATENCY[-1]
    assert "series" not in body


def test_series_of_all_label_sets_are_merged_without_a_label_filter(data: datetime) -> None:
    with client() as http:
        body = http.get("/stats/Mistral/v1").json()
    accuracy = body["metrics"]["accuracy"]
    assert_close(accuracy, expected([*ACCURACY, 0.2]))
    assert accuracy["last"] == iso(data - timedelta(minutes=5))
    assert accuracy["last_value"] == 0.2


def test_label_filters_must_all_hold(data: datetime) -> None:
    with client() as http:
        dev = http.get("/stats/Mistral/v1?label.env=dev").json()
        none = http.get("/stats/Mistral/v1?label.env=dev&label.env=prod").json()
        other = http.get("/stats/Mistral/v1?label.region=eu").json()
    assert dev["metrics"]["accuracy"]["count"] == 1
    assert set(dev["metrics"]) == {"accuracy"}
    assert none["metrics"] == {}
    assert other["metrics"] == {}


def test_metric_filter_repeated_or_comma_separated(data: datetime) -> None:
    with client() as http:
        one = http.get("/stats/Mistral/v1?metric=latency").json()
        both = http.get("/stats/Mistral/v1?metric=latency,accuracy").json()
        repeated = http.get("/stats/Mistral/v1?metric=latency&metric=accuracy").json()
        unknown = http.get("/stats/Mistral/v1?metric=nope").json()
    assert set(one["metrics"]) == {"latency"}
    assert set(both["metrics"]) == set(repeated["metrics"]) == {"latency", "accuracy"}
    assert unknown["metrics"] == {}


def test_time_range_since_inclusive_until_exclusive(data: datetime) -> None:
    first = data - timedelta(hours=7, minutes=30)
    with client() as http:
        # [first sample, third sample): exactly the first two.
        body = http.get(
            "/stats/Mistral/v1",
            params={
                "since": iso(first),
                "until": iso(first + timedelta(hours=2)),
                "label.env": "prod",
            },
        ).json()
        durations = http.get("/stats/Mistral/v1?since=48h&label.env=prod&metric=accuracy").json()
        short = http.get("/stats/Mistral/v1?since=3h&until=1h&label.env=prod").json()
    assert_close(body["metrics"]["accuracy"], expected(ACCURACY[:2]))
    assert body["since"] == iso(first)
    assert durations["metrics"]["accuracy"]["count"] == len(ACCURACY) + 1  # the 30 h old one
    assert short["metrics"]["latency"]["count"] == 2  # 2.5 h and 1.5 h ago


def test_buckets_are_exact_and_ordered(data: datetime) -> None:
    with client() as http:
        body = http.get("/stats/Mistral/v1?bucket=2h&label.env=prod&metric=latency").json()
    points = body["series"]["latency"]
    times = [datetime.fromisoformat(p["time"]) for p in points]
    assert times == sorted(times)
    assert all(t.hour % 2 == 0 and t.minute == 0 for t in times)
    sample_times = [data - timedelta(hours=7 - i, minutes=30) for i in range(7)]
    for point, start in zip(points, times, strict=True):
        inside = [
            v
            for v, t in zip(LATENCY, sample_times, strict=True)
            if start <= t < start + timedelta(hours=2)
        ]
        assert point["count"] == len(inside)
        assert math.isclose(point["mean"], sum(inside) / len(inside))
        assert point["min"] == min(inside) and point["max"] == max(inside)
        assert math.isclose(point["p95"], percentile_cont(inside, 0.95))
    assert sum(p["count"] for p in points) == 7


def test_csv_series(data: datetime) -> None:
    with client() as http:
        response = http.get("/stats/Mistral/v1?bucket=1d&format=csv&metric=latency&label.env=prod")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sum(int(r["count"]) for r in rows) == 7
    assert {r["metric"] for r in rows} == {"latency"}
    assert {r["model"] for r in rows} == {"Mistral"}
    assert max(float(r["max"]) for r in rows) == 90.0


def test_versions_side_by_side_with_baseline(data: datetime) -> None:
    with client() as http:
        body = http.get("/stats/Mistral?metric=accuracy&label.env=prod&baseline=v1").json()
    assert body["baseline"] == "v1"
    assert set(body["versions"]) == {"v1", "v2"}
    v1 = body["versions"]["v1"]["metrics"]["accuracy"]
    v2 = body["versions"]["v2"]["metrics"]["accuracy"]
    assert v2["count"] == 1 and v2["mean"] == 0.5
    change = v2["vs_baseline"]["mean"]
    assert math.isclose(change["difference"], 0.5 - v1["mean"])
    assert math.isclose(change["relative_change"], (0.5 - v1["mean"]) / v1["mean"])
    assert v2["vs_baseline"]["stddev"] == {"difference": None, "relative_change": None}
    assert v1["vs_baseline"]["max"] == {"difference": 0.0, "relative_change": 0.0}


def test_versions_without_baseline_and_unknown_baseline(data: datetime) -> None:
    with client() as http:
        plain = http.get("/stats/Mistral").json()
        bad = http.get("/stats/Mistral?baseline=v9")
    assert "baseline" not in plain
    assert "vs_baseline" not in plain["versions"]["v2"]["metrics"]["accuracy"]
    assert bad.status_code == 400 and bad.json()["field"] == "baseline"


def test_models_listing(data: datetime) -> None:
    with client() as http:
        body = http.get("/models").json()
    models = {m["model"]: m for m in body["models"]}
    assert set(models) == {"Mistral", "Llama"}
    versions = {v["version"]: v for v in models["Mistral"]["versions"]}
    assert versions["v1"]["metrics"] == ["accuracy", "latency"]
    assert versions["v1"]["samples"] == 7 * 2 + 1 + 1
    assert versions["v1"]["first_seen"] == iso(data - timedelta(hours=30))
    assert versions["v1"]["last_seen"] == iso(data - timedelta(minutes=5))
    assert versions["v2"]["samples"] == 1
    with client() as http:
        recent = http.get("/models?since=1h").json()
    assert [m["model"] for m in recent["models"]] == ["Mistral"]


def test_one_sample_has_no_stddev(clean_db: str) -> None:
    add_samples(clean_db, [("M", "v", "x", {}, hours_ago(1), 3.5)])
    with client() as http:
        metric = http.get("/stats/M/v").json()["metrics"]["x"]
    assert metric["stddev"] is None
    assert metric["p50"] == metric["p99"] == metric["min"] == metric["max"] == 3.5


def test_names_with_slashes_and_unicode(clean_db: str) -> None:
    add_samples(clean_db, [("org/modèle", "v 1", "x", {}, hours_ago(1), 1.0)])
    with client() as http:
        response = http.get("/stats/org%2Fmod%C3%A8le/v%201")
    assert response.status_code == 200
    assert response.json()["model"] == "org/modèle"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=2026-01-01", "since"),
        ("since=1h&until=2h", "since"),
        ("since=1000d", "since"),
        ("bucket=5parsecs", "bucket"),
        ("bucket=30s", "bucket"),
        ("bucket=2d", "bucket"),
        ("since=30d&bucket=1m", "bucket"),
        ("format=csv", "format"),
        ("format=xml&bucket=1h", "format"),
        ("exact=maybe", "exact"),
        ("metric=", "metric"),
        ("metric=a,,b", "metric"),
        ("label.=x", "label."),
        ("sinse=1h", "sinse"),
        ("since=1h&since=2h", "since"),
        ("baseline=v1", "baseline"),
        ("metric=a%00b", "metric"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    data: datetime, query: str, field: str
) -> None:
    with client() as http:
        response = http.get(f"/stats/Mistral/v1?{query}")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "bad_input"
    assert body["field"] == field


def test_unknown_model_or_version_is_404(data: datetime) -> None:
    with client() as http:
        model = http.get("/stats/Nope/v1")
        version = http.get("/stats/Mistral/v9")
        whole = http.get("/stats/Nope")
        path = http.get("/nothing/here")
    for response in (model, version, whole, path):
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_only_get(data: datetime) -> None:
    with client() as http:
        response = http.post("/stats/Mistral/v1")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


@pytest.mark.slow
def test_runs_as_the_container_does_and_answers_503_while_the_database_is_down(
    data: datetime, postgres: EmbeddedPostgres | None
) -> None:
    if postgres is None:
        pytest.skip("needs the embedded server to stop it (TEST_DATABASE_URL is set)")
    url = os.environ["DATABASE_URL"]
    with function_process("stats", SOURCE, url, {"DB_POOL_TIMEOUT_S": "1"}) as base:
        assert httpx.get(f"{base}/stats/Mistral/v1", timeout=30).status_code == 200
        postgres.stop()
        try:
            down = [httpx.get(f"{base}{path}", timeout=30) for path in DOWN_PATHS]
        finally:
            postgres.start()
    for response in down:
        assert response.status_code == 503
        assert response.json()["error"] == "database_unavailable"
    db.close_pools()


DOWN_PATHS = ("/stats/Mistral/v1", "/stats/Mistral/v1?since=20d", "/models", "/healthz")


def test_token_required_when_set(data: datetime) -> None:
    configure(STATS_API_TOKEN="s3cret")
    with client() as http:
        missing = http.get("/stats/Mistral/v1")
        wrong = http.get("/models", headers={"Authorization": "Bearer nope"})
        scheme = http.get("/models", headers={"Authorization": "Basic s3cret"})
        unicode = http.get("/models", headers={"Authorization": "Bearer s3crét".encode()})
        right = http.get("/stats/Mistral/v1", headers={"Authorization": "Bearer s3cret"})
        spec = http.get("/openapi.json")
        health = http.get("/healthz")
    for response in (missing, wrong, scheme, unicode, spec):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "unauthorized"
    assert right.status_code == 200
    assert health.status_code == 200


def test_open_without_token(data: datetime) -> None:
    configure(STATS_API_TOKEN=None)
    with client() as http:
        assert http.get("/models").status_code == 200


def test_dead_letters_listing(clean_db: str) -> None:
    import psycopg

    with psycopg.connect(clean_db, autocommit=True) as conn:
        for i in range(3):
            conn.execute(
                "INSERT INTO dead_letters (event_source, event_id, event_type, error_code,"
                " attributes, data, received_at, failed_at, replayed_at)"
                " VALUES ('/s', %(id)s, 't', 500, '{}', '{\"a\": 1}',"
                " now() - %(hours)s * interval '1 hour', now() - %(hours)s * interval '1 hour',"
                " CASE WHEN %(hours)s = 0 THEN now() END)",
                {"id": f"e{i}", "hours": i},
            )
    with client() as http:
        everything = http.get("/dead-letters").json()["dead_letters"]
        limited = http.get("/dead-letters?limit=1").json()["dead_letters"]
        pending = http.get("/dead-letters?pending=true").json()["dead_letters"]
        recent = http.get("/dead-letters?since=90m").json()["dead_letters"]
        bad = http.get("/dead-letters?limit=0")
        huge = http.get("/dead-letters?limit=1001")
    assert [d["event"]["id"] for d in everything] == ["e0", "e1", "e2"]  # latest failure first
    assert len(limited) == 1
    assert {d["event"]["id"] for d in pending} == {"e1", "e2"}
    assert {d["event"]["id"] for d in recent} == {"e0", "e1"}
    assert everything[0]["data"] == '{"a": 1}'  # the kept bytes as text, not parsed
    for response in (bad, huge):
        assert response.status_code == 400 and response.json()["field"] == "limit"


def test_a_query_past_the_statement_timeout_is_503(clean_db: str) -> None:
    add_samples(clean_db, [("Big", "v1", "x", {}, hours_ago(0.1), 1.0)])
    with psycopg.connect(clean_db) as conn:
        conn.execute("SELECT ensure_sample_partitions(ARRAY[current_date - 1, current_date])")
        conn.execute(
            "INSERT INTO samples (series_id, time, value)"
            " SELECT s.id, now() - i * interval '10 ms', i FROM series s,"
            " generate_series(1, 300000) AS i"
        )
    db.close_pools()
    configure(DB_STATEMENT_TIMEOUT_MS="1")
    with client() as http:
        response = http.get("/stats/Big/v1?exact=true")
    assert response.status_code == 503
    assert "statement timeout" in response.json()["message"]
