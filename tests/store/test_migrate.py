"""Migrations: versioned, idempotent, safe when several processes run them at once."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from modelstats.store import migrate

BIN = Path(sys.executable).parent


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """A new, empty database on the same server, dropped afterwards."""
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(database_url)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_versions_are_unique_and_ordered():
    versions = [m.version for m in migrate.available()]
    assert versions == sorted(set(versions))
    assert versions[:2] == [1, 2]


def test_concurrent_runs_apply_each_migration_once(empty_database: str):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: migrate.migrate(empty_database), range(4)))
    applied = sorted(m.version for result in results for m in result)
    assert applied == [m.version for m in migrate.available()]
    with psycopg.connect(empty_database) as conn:
        recorded = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        view = conn.execute("SELECT count(*) FROM metric_samples").fetchone()
    assert [r[0] for r in recorded] == applied
    assert view == (0,)


@pytest.mark.slow
def test_cli_migrate_is_idempotent(empty_database: str):
    command = [str(BIN / "modelstats"), "migrate"]
    env = {"DATABASE_URL": empty_database, "PATH": "/usr/bin:/bin"}
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "applied 0001_store" in first.stdout
    assert second.stdout.strip() == "schema is up to date"


@pytest.mark.slow
def test_cli_migrate_without_database_url_fails_clearly():
    result = subprocess.run(
        [str(BIN / "modelstats"), "migrate"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "DATABASE_URL" in result.stderr


@pytest.mark.slow
def test_cli_migrate_reports_unreachable_database():
    result = subprocess.run(
        [
            str(BIN / "modelstats"),
            "migrate",
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
        ],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "database unavailable" in result.stderr


def migrate_before(url: str, version: int) -> None:
    """Apply the migrations older than `version`: a database as the releases before it left."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in migrate.available():
            if migration.version < version:
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )


def test_letters_that_replays_multiplied_are_folded_into_one(empty_database: str):
    """0006: before it, each replay of a letter that failed again added a row."""
    migrate_before(empty_database, 6)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        for event_id, hours_ago, replayed in [
            ("multiplied", 3, True),
            ("multiplied", 2, True),
            ("multiplied", 1, False),
            ("single", 1, True),
        ]:
            conn.execute(
                "INSERT INTO dead_letters (event_source, event_id, event_type, error_dest,"
                " error_code, attributes, received_at, replayed_at)"
                " VALUES ('/s', %(id)s, 't', 'http://ingest', 400, '{}',"
                " now() - %(h)s * interval '1 hour', CASE WHEN %(r)s THEN now() END)",
                {"id": event_id, "h": hours_ago, "r": replayed},
            )
    assert 6 in {m.version for m in migrate.migrate(empty_database)}
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute(
            "SELECT event_id, failures, replayed_at IS NULL AS pending,"
            " round(extract(epoch FROM now() - received_at) / 3600) AS first_hours_ago"
            " FROM dead_letters ORDER BY event_id"
        ).fetchall()
    assert rows == [("multiplied", 3, True, 3), ("single", 1, False, 1)]


def keep_predictions(conn: psycopg.Connection[Any], models: list[str], rows: int) -> None:
    """Predictions `row-1` .. `row-<rows>` of each model, in one window of 2026-12-01, written
    as a release before the change under test kept them."""
    conn.execute(
        "SELECT ensure_daily_partitions('inference_predictions', %s::date[])", (["2026-12-01"],)
    )
    conn.execute(
        "INSERT INTO inference_predictions (model, id, version, window_start, time, prediction)"
        " SELECT m, 'row-' || i, 'v1', '2026-12-01T10:00Z', '2026-12-01T10:01Z', '1'"
        " FROM generate_series(1, %s) AS i, unnest(%s::text[]) AS m",
        (rows, models),
    )


def test_0010_rebuilds_the_prediction_indexes_over_kept_rows(empty_database: str):
    migrate_before(empty_database, 10)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        keep_predictions(conn, ["fraud"], 500)
    assert 10 in {m.version for m in migrate.migrate(empty_database)}
    with psycopg.connect(empty_database) as conn:
        methods = conn.execute(
            "SELECT am.amname FROM pg_index i"
            " JOIN pg_class ix ON ix.oid = i.indexrelid JOIN pg_am am ON am.oid = ix.relam"
            " WHERE i.indrelid = 'inference_predictions_20261201'::regclass ORDER BY 1"
        ).fetchall()
        assert [m for (m,) in methods] == ["brin", "hash"]
        conn.execute("SET enable_seqscan = off")  # the lookups the labels make, by the indexes
        found = conn.execute(
            "SELECT count(*) FROM inference_predictions WHERE id = 'row-7' AND model = 'fraud'"
        ).fetchone()
        in_window = conn.execute(
            "SELECT count(*) FROM inference_predictions WHERE window_start = '2026-12-01T10:00Z'"
        ).fetchone()
    assert found == (1,) and in_window == (500,)


def test_0011_gives_kept_blocks_an_arrival_and_new_ones_their_own(empty_database: str):
    migrate_before(empty_database, 11)
    insert = (
        "INSERT INTO inference_blocks (model, kind, time_min, time_max, rows, meta)"
        " VALUES ('fraud', 'request', '2026-12-01T10:00Z', '2026-12-01T10:00Z', 1, '')"
    )
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute(
            "SELECT ensure_daily_partitions('inference_blocks', %s::date[])", (["2026-12-01"],)
        )
        conn.execute(insert)
    assert 11 in {m.version for m in migrate.migrate(empty_database)}
    with psycopg.connect(empty_database) as conn:
        conn.execute(insert)
        arrivals = conn.execute(
            "SELECT received_at, now() FROM inference_blocks ORDER BY seq"
        ).fetchall()
    (kept, _), (new, now) = arrivals
    assert kept < new == now


def test_0012_keeps_every_kept_prediction_indexed_and_marks_the_labelled_models(
    empty_database: str,
):
    migrate_before(empty_database, 12)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("INSERT INTO inference_models (model) VALUES ('fraud'), ('quiet')")
        conn.execute(
            "INSERT INTO inference_labels (model, id, label, time)"
            " VALUES ('fraud', 'row-3', '1', now())"
        )
        keep_predictions(conn, ["fraud", "quiet"], 300)
    assert 12 in {m.version for m in migrate.migrate(empty_database)}
    with psycopg.connect(empty_database) as conn:
        marked = conn.execute("SELECT model, labelled FROM inference_models ORDER BY 1").fetchall()
        assert marked == [("fraud", True), ("quiet", False)]
        assert conn.execute(
            "SELECT count(*) FILTER (WHERE indexed) FROM inference_predictions"
        ).fetchone() == (600,)
        (predicate,) = conn.execute(
            "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i"
            " WHERE i.indexrelid = 'inference_predictions_id'::regclass"
        ).fetchone()
        assert predicate == "indexed"
        conn.execute("SET enable_seqscan = off")  # a label finds its row through the index
        found = conn.execute(
            "SELECT count(*) FROM inference_predictions WHERE id = 'row-7' AND indexed"
        ).fetchone()
    assert found == (2,)
