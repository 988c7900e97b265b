"""Long windows: daily rollups and sketches, their error bound, late samples, retention, locks."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from modelstats.stats import sketch
from tests.stats.samples import add_samples, client, hours_ago, percentile_cont

DAYS = 8


@pytest.fixture
def history(clean_db: str) -> list[float]:
    """Model A v1, metric x: 40 samples a day over the last 8 days and today (lognormal)."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    rows = []
    for i in range(DAYS * 24 * 40 // 24):
        moment = now - timedelta(days=DAYS) + timedelta(hours=i * 24 / 40) + timedelta(seconds=1)
        if moment < now:
            rows.append(("A", "v1", "x", {}, moment, rng.lognormvariate(2.5, 0.4)))
    add_samples(clean_db, rows)
    return [row[5] for row in rows]


def _query(since: str, *extra: str) -> dict:
    with client() as http:
        response = http.get(f"/stats/A/v1?since={since}&" + "&".join(extra))
    assert response.status_code == 200, response.text
    return response.json()


def _count_rows(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return int(row[0])


def test_long_window_uses_rollups_with_exact_moments_and_close_percentiles(
    history: list[float],
) -> None:
    sketched = _query(f"{DAYS + 1}d")
    exact = _query(f"{DAYS + 1}d", "exact=true")
    assert sketched["percentiles"] == "sketch"
    assert exact["percentiles"] == "exact"
    fast, slow = sketched["metrics"]["x"], exact["metrics"]["x"]
    assert fast["count"] == slow["count"] == len(history)
    for name in ("mean", "stddev"):
        assert math.isclose(fast[name], slow[name], rel_tol=1e-9)
    for name in ("min", "max", "first", "last", "last_value"):
        assert fast[name] == slow[name]
    assert math.isclose(slow["p50"], percentile_cont(history, 0.5), rel_tol=1e-12)
    for name in ("p50", "p90", "p95", "p99"):
        assert abs(fast[name] - slow[name]) <= sketch.ALPHA * abs(slow[name]), name


def test_short_windows_stay_exact(history: list[float]) -> None:
    assert _query("2d")["percentiles"] == "exact"


def test_rolled_up_days_are_sealed_and_open_days_are_not(history: list[float], clean_db: str):
    _query(f"{DAYS + 1}d")
    today = "samples_" + datetime.now(UTC).strftime("%Y%m%d")
    sealed = _count_rows(
        clean_db,
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE t.tgname = 'stats_daily_forget'",
    )
    on_today = _count_rows(
        clean_db,
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        f" WHERE t.tgname = 'stats_daily_forget' AND c.relname = '{today}'",
    )
    rollups = _count_rows(clean_db, "SELECT count(DISTINCT day) FROM stats_daily")
    assert sealed == rollups >= DAYS - 2
    assert on_today == 0


def test_a_late_sample_for_a_sealed_day_is_counted(history: list[float], clean_db: str) -> None:
    before = _query(f"{DAYS + 1}d")["metrics"]["x"]
    late_day = (datetime.now(UTC) - timedelta(days=3)).replace(hour=12)
    add_samples(clean_db, [("A", "v1", "x", {}, late_day, 1000.0)])
    after = _query(f"{DAYS + 1}d")
    assert after["percentiles"] == "sketch"
    assert after["metrics"]["x"]["count"] == before["count"] + 1
    assert after["metrics"]["x"]["max"] == 1000.0
    exact = _query(f"{DAYS + 1}d", "exact=true")["metrics"]["x"]
    assert math.isclose(after["metrics"]["x"]["mean"], exact["mean"], rel_tol=1e-9)


def test_days_dropped_by_retention_leave_the_answer(history: list[float], clean_db: str) -> None:
    _query(f"{DAYS + 1}d")
    cutoff = (datetime.now(UTC) - timedelta(days=4)).date()
    with psycopg.connect(clean_db) as conn:
        conn.execute("SELECT drop_sample_partitions_before(%s)", (cutoff,))
    after = _query(f"{DAYS + 1}d")["metrics"]["x"]
    exact = _query(f"{DAYS + 1}d", "exact=true")["metrics"]["x"]
    assert after["count"] == exact["count"] < len(history)
    assert after["first"] == exact["first"]
    # The next day to roll up also forgets the rollups of the dropped days.
    add_samples(clean_db, [("A", "v1", "x", {}, datetime.now(UTC) - timedelta(days=2), 1.0)])
    assert _query(f"{DAYS + 1}d")["metrics"]["x"]["count"] == exact["count"] + 1
    orphans = _count_rows(clean_db, f"SELECT count(*) FROM stats_daily WHERE day < '{cutoff}'")
    assert orphans == 0


def test_a_day_locked_by_a_late_writer_is_read_raw(history: list[float], clean_db: str) -> None:
    moment = (datetime.now(UTC) - timedelta(days=5)).replace(hour=6)
    with psycopg.connect(clean_db) as writer:
        # An uncommitted late batch holds the day's partition: the query must not wait for it.
        writer.execute(
            "INSERT INTO samples (series_id, time, value)"
            " SELECT id, %s, 5000 FROM series WHERE model = 'A'",
            (moment,),
        )
        started = time.monotonic()
        body = _query(f"{DAYS + 1}d")
        waited = time.monotonic() - started
        writer.rollback()
    assert body["percentiles"] == "exact"
    assert body["metrics"]["x"]["count"] == len(history)
    assert waited < 5  # bounded by the lock timeout, not by the writer
    assert _query(f"{DAYS + 1}d")["percentiles"] == "sketch"


def test_models_counts_every_sample_with_rollups(history: list[float], clean_db: str) -> None:
    with client() as http:
        first = http.get("/models").json()
        again = http.get("/models").json()
    (model,) = first["models"]
    assert model["versions"][0]["samples"] == len(history)
    assert again["models"] == first["models"]
    assert _count_rows(clean_db, "SELECT count(*) FROM stats_daily") >= DAYS - 2


def test_a_window_without_samples_in_whole_days(clean_db: str) -> None:
    add_samples(clean_db, [("A", "v1", "x", {}, hours_ago(1), 2.0)])
    body = _query("20d")
    assert body["percentiles"] == "sketch"
    assert body["metrics"]["x"]["count"] == 1
    assert body["metrics"]["x"]["p99"] == 2.0
