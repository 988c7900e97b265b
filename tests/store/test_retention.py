"""Retention drops whole daily partitions and forgets old dedup records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from modelstats.store import retention
from tests.clients import function_client
from tests.cloudevents_http import binary


def post_days(days: list[str]) -> None:
    with function_client("ingest", "functions/ingest/main.py") as client:
        for day in days:
            report = {"model": "m", "version": "v", "time": f"{day}T12:00:00Z", "metrics": {"x": 1}}
            headers, body = binary(report, id=day)
            assert client.post("/", headers=headers, content=body).status_code == 200


def test_drops_only_partitions_wholly_before_the_cutoff(clean_db: str):
    post_days(["2026-11-01", "2026-11-02", "2026-11-03"])
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest_events SET received_at = %s::date + time '12:00'", ("2026-11-01",)
        )
        conn.execute("UPDATE ingest_events SET received_at = now() WHERE id = '2026-11-03'")
    now = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)
    result = retention.apply(timedelta(days=1), now=now)  # cutoff 2026-11-03
    assert result.dropped_partitions == ["samples_20261101", "samples_20261102"]
    assert result.forgotten["dedup records"] == 2
    with psycopg.connect(clean_db) as conn:
        left = conn.execute("SELECT time::date FROM metric_samples").fetchall()
        kept = conn.execute("SELECT id FROM ingest_events").fetchall()
    assert [str(d[0]) for d in left] == ["2026-11-03"]
    assert kept == [("2026-11-03",)]


def test_ingest_recreates_a_day_dropped_under_it(clean_db: str):
    report = {"model": "m", "version": "v", "time": "2026-10-01T12:00:00Z", "metrics": {"x": 1}}
    with function_client("ingest", "functions/ingest/main.py") as client:
        assert (
            client.post(
                "/", headers=binary(report, id="a")[0], content=binary(report)[1]
            ).status_code
            == 200
        )
        dropped = retention.apply(timedelta(days=0), now=datetime(2026, 10, 5, tzinfo=UTC))
        assert dropped.dropped_partitions == ["samples_20261001"]
        # The same process, which believed the day existed, gets a late sample for it.
        assert (
            client.post(
                "/", headers=binary(report, id="b")[0], content=binary(report)[1]
            ).status_code
            == 200
        )
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM samples").fetchone() == (1,)


def test_forgets_bookkeeping_but_keeps_pending_work(clean_db: str):
    old, new = "2026-09-01 12:00+00", "2026-11-27 12:00+00"
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO alert_events (source, id, received_at) VALUES"
            " ('/s', 'old', %s), ('/s', 'new', %s)",
            (old, new),
        )
        attributes = '{"specversion": "1.0"}'
        conn.execute(
            "INSERT INTO dead_letters (event_source, event_id, event_type, attributes,"
            " received_at, replayed_at) VALUES"
            " ('/s', 'replayed', 't', %s, %s, %s), ('/s', 'pending', 't', %s, %s, NULL)",
            (attributes, old, old, attributes, old),
        )
    result = retention.apply(timedelta(days=30), now=datetime(2026, 11, 28, tzinfo=UTC))
    assert result.forgotten["evaluated alert events"] == 1
    assert result.forgotten["replayed dead letters"] == 1
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT id FROM alert_events").fetchall() == [("new",)]
        # A dead letter never replayed is work still to do: kept whatever its age.
        assert conn.execute("SELECT event_id FROM dead_letters").fetchall() == [("pending",)]


@pytest.mark.slow
def test_cli_prints_what_it_dropped(clean_db: str):
    import subprocess
    import sys
    from pathlib import Path

    post_days(["2020-01-01"])
    result = subprocess.run(
        [str(Path(sys.executable).parent / "modelstats"), "retention", "--older-than", "30d"],
        env={"DATABASE_URL": clean_db, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "dropped samples_20200101" in result.stdout
    # The event arrived just now: its dedup record is younger than the cutoff and stays.
    assert "forgot 0 dedup records" in result.stdout
    bad = subprocess.run(
        [str(Path(sys.executable).parent / "modelstats"), "retention", "--older-than", "soon"],
        env={"DATABASE_URL": clean_db, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "--older-than" in bad.stderr
