"""The inference job against a real PostgreSQL: logged traffic ingested in process, windows
profiled, every figure checked against numpy on the same rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from modelstats.core.cloudevents import Event
from modelstats.etl import jobs, runner
from tests.loggers import kserve_headers, v2_request, v2_response

W0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
JOB = jobs.parse({"source": "inference"})


@pytest.fixture
def ingest(logged, monitors_file):
    monitors_file("defaults: {window: 1m, lateness: 30s}\n")
    return logged


class Traffic:
    """Calls logged the way KServe's logger logs them, and the rows each version should hold."""

    def __init__(self, seed: int = 7):
        self.rng = np.random.default_rng(seed)
        self.rows: dict[str, list[dict]] = {}
        self.calls: dict[str, int] = {}
        self.missing: dict[str, int] = {}
        self.latencies: dict[str, list[float]] = {}

    def call(self, post, call_id: str, at: datetime, rows: int, version: str | None) -> None:
        x = self.rng.normal(10, 3, rows)
        y = np.where(self.rng.random(rows) < 0.2, np.nan, self.rng.normal(0, 1, rows))
        country = np.array([["NL", "DE", "FR"][i] for i in self.rng.integers(0, 3, rows)], object)
        post(
            kserve_headers("request", call_id, "fraud", at),
            v2_request({"x": x, "y": y.reshape(rows, 1), "country": country}),
        )
        probability = self.rng.random(rows)
        predicted = (probability > 0.5).astype(float)
        key = version or "default"
        if version is not None:
            latency = float(self.rng.integers(5, 80))
            post(
                kserve_headers("response", call_id, "fraud", at + timedelta(milliseconds=latency)),
                v2_response(
                    {"p": np.stack([1 - probability, probability], axis=1)}, version=version
                ),
            )
            self.latencies.setdefault(key, []).append(latency)
        else:
            self.missing[key] = self.missing.get(key, 0) + 1
        self.calls[key] = self.calls.get(key, 0) + 1
        for i in range(rows):
            self.rows.setdefault(key, []).append(
                {
                    "x": x[i],
                    "y": y[i],
                    "country": country[i],
                    "prediction": predicted[i] if version else np.nan,
                }
            )


def by_series(reports: list[dict]) -> dict[tuple[str, str, str | None], dict[str, float]]:
    """Each report's metrics by version, time and feature (those of a window merged)."""
    found: dict[tuple[str, str, str | None], dict[str, float]] = {}
    for r in reports:
        if "method" not in r["labels"]:
            key = (r["version"], r["time"], r["labels"].get("feature"))
            found.setdefault(key, {}).update(r["metrics"])
    return found


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_a_window_is_profiled_per_version_as_numpy_computes_it(ingest, clean_db) -> None:
    traffic = Traffic()
    for i in range(40):
        version = None if i % 13 == 5 else ("v1" if i % 2 else "v2")
        traffic.call(ingest, f"call-{i}", W0 + timedelta(seconds=i), 1 + (i % 4 == 0) * 4, version)
    # Two responses whose requests never came.
    ingest(
        kserve_headers("response", "ghost-1", "fraud", W0 + timedelta(seconds=50)),
        v2_response({"p": np.array([[0.4, 0.6]])}, version="v1"),
    )
    result = runner.run(JOB, now=W0 + timedelta(minutes=3))
    reports = by_series(result.reports)
    start = "2026-12-01T10:00:00Z"
    assert {version for version, _, _ in reports} == {"v1", "v2", "default"}
    for version, rows in traffic.rows.items():
        window = reports[(version, start, None)]
        assert window["rows"] == len(rows)
        assert window["requests"] == traffic.calls[version]
        assert window["responses_missing"] == traffic.missing.get(version, 0)
        assert window["responses_orphaned"] == (1 if version == "v1" else 0)
        if version in traffic.latencies:
            latencies = np.array(traffic.latencies[version])
            assert abs(window["inference_time"] - latencies.mean()) < 1e-3
            assert abs(window["inference_time_p95"] - np.percentile(latencies, 95)) < 1e-3
        for feature in ("x", "y"):
            values = np.array([row[feature] for row in rows])
            present = values[~np.isnan(values)]
            figures = reports[(version, start, feature)]
            assert close(figures["feature_missing_share"], 1 - len(present) / len(values))
            assert close(figures["feature_mean"], float(np.mean(present)))
            assert close(figures["feature_p50"], float(np.percentile(present, 50)))
            assert close(figures["feature_p95"], float(np.percentile(present, 95)))
        countries = {row["country"] for row in rows}
        assert reports[(version, start, "country")]["feature_distinct"] == len(countries)
        predictions = np.array([row["prediction"] for row in rows])
        figures = reports[(version, start, "prediction")]
        present = predictions[~np.isnan(predictions)]
        assert close(figures["feature_missing_share"], 1 - len(present) / len(predictions))
        if len(present):
            assert close(figures["feature_mean"], float(np.mean(present)))
    for report in result.reports:
        assert report["labels"]["source"] == "inference"


def test_each_row_counts_once_and_late_rows_are_counted(ingest, clean_db) -> None:
    traffic = Traffic()
    traffic.call(ingest, "a", W0 + timedelta(seconds=10), 2, "v1")
    first = runner.run(JOB, now=W0 + timedelta(minutes=2))
    assert by_series(first.reports)[("v1", "2026-12-01T10:00:00Z", None)]["rows"] == 2
    assert runner.run(JOB, now=W0 + timedelta(minutes=2)).event() is None  # nothing new
    # A row for the profiled window comes late; a later window gets traffic.
    traffic.call(ingest, "late", W0 + timedelta(seconds=20), 1, "v1")
    traffic.call(ingest, "b", W0 + timedelta(minutes=3, seconds=5), 3, "v1")
    second = by_series(runner.run(JOB, now=W0 + timedelta(minutes=5)).reports)
    window = second[("v1", "2026-12-01T10:03:00Z", None)]
    assert window["rows"] == 3 and window["rows_late"] == 1
    assert ("v1", "2026-12-01T10:00:00Z", None) not in second


def test_a_redelivered_ping_gets_the_same_reply_and_a_dry_run_keeps_nothing(
    ingest, clean_db
) -> None:
    Traffic().call(ingest, "a", W0 + timedelta(seconds=1), 1, "v1")
    dry = runner.run(JOB, now=W0 + timedelta(minutes=2), commit=False)
    assert dry.reports
    ping = Event(
        id="tick-1",
        source="/apis/v1/namespaces/modelstats/pingsources/etl-schedule",
        type="dev.knative.sources.ping",
        data={"source": "inference"},
    )
    first = runner.run(JOB, ping=ping, now=W0 + timedelta(minutes=2))
    assert first.reply.event_id == dry.reply.event_id  # the same windows, the same id
    again = runner.run(JOB, ping=ping, now=W0 + timedelta(minutes=9))
    assert again.reply == first.reply
    with psycopg.connect(clean_db) as conn:
        (closed,) = conn.execute("SELECT closed_until FROM inference_models").fetchone()
    assert closed == W0 + timedelta(minutes=1)


def test_sketches_are_kept_and_merge_across_windows(ingest, clean_db) -> None:
    import datasketches

    traffic = Traffic()
    for minute in range(3):
        for i in range(5):
            traffic.call(
                ingest, f"m{minute}-{i}", W0 + timedelta(minutes=minute, seconds=i), 20, "v1"
            )
    runner.run(JOB, now=W0 + timedelta(minutes=5))
    with psycopg.connect(clean_db) as conn:
        sketches = conn.execute(
            "SELECT sketch FROM inference_profiles WHERE feature = 'x' ORDER BY window_start"
        ).fetchall()
    assert len(sketches) == 3
    merged = datasketches.kll_doubles_sketch(200)
    for (blob,) in sketches:
        merged.merge(datasketches.kll_doubles_sketch.deserialize(bytes(blob)))
    values = np.array([row["x"] for row in traffic.rows["v1"]])
    assert merged.n == len(values) == 300
    rank = np.mean(values <= merged.get_quantile(0.5))
    assert abs(rank - 0.5) <= merged.normalized_rank_error(False) * 2


def test_a_model_that_logs_only_requests_is_profiled(ingest, clean_db) -> None:
    from tests.loggers import seldon_headers, seldon_message

    ingest(
        seldon_headers("request", "p-1", "iris", W0 + timedelta(seconds=3)),
        seldon_message([[5.1, 3.5], [6.0, 2.2]], ["sl", "sw"]),
    )
    reports = by_series(runner.run(JOB, now=W0 + timedelta(minutes=2)).reports)
    window = reports[("default", "2026-12-01T10:00:00Z", None)]
    assert window["rows"] == 2 and window["responses_missing"] == 1
    assert reports[("default", "2026-12-01T10:00:00Z", "sw")]["feature_mean"] == (3.5 + 2.2) / 2


def arrived(url: str, at: datetime, call_ids: list[str] | None = None) -> None:
    """Say when the blocks kept so far (or those holding some calls' rows) arrived."""
    with psycopg.connect(url) as conn:
        if call_ids is None:
            conn.execute("UPDATE inference_blocks SET received_at = %s", (at,))
            return
        blocks = conn.execute("SELECT seq, meta FROM inference_blocks").fetchall()
        chosen = [seq for seq, meta in blocks if any(c.encode() in meta for c in call_ids)]
        conn.execute(
            "UPDATE inference_blocks SET received_at = %s WHERE seq = ANY(%s)", (at, chosen)
        )


def test_a_window_waits_while_its_rows_still_arrive(ingest, clean_db) -> None:
    """Past traffic replayed now: its windows are closed by time when it comes, and the
    responses come through their own Trigger after the requests. The first tick must not
    profile the first requests alone (their version unknown, the rest of them then late)."""
    now = W0 + timedelta(hours=1)
    traffic = Traffic()
    traffic.call(ingest, "early", W0 + timedelta(seconds=5), 2, "v1")
    for i in range(3):
        traffic.call(ingest, f"r-{i}", W0 + timedelta(minutes=1, seconds=i), 2, "v1")
    arrived(clean_db, now - timedelta(minutes=5))
    arrived(clean_db, now - timedelta(seconds=2), ["r-2"])  # the last response, just in
    first = by_series(runner.run(JOB, now=now).reports)
    # The first window's rows all came long ago; the second is still arriving.
    assert first[("v1", "2026-12-01T10:00:00Z", None)]["rows"] == 2
    assert not any(start == "2026-12-01T10:01:00Z" for _, start, _ in first)
    traffic.call(ingest, "r-3", W0 + timedelta(minutes=1, seconds=30), 2, "v1")
    arrived(clean_db, now - timedelta(seconds=1), ["r-3"])
    assert runner.run(JOB, now=now).event() is None
    # Nothing came for SETTLE: the window is profiled whole, with its version.
    later = by_series(runner.run(JOB, now=now + timedelta(seconds=10)).reports)
    window = later[("v1", "2026-12-01T10:01:00Z", None)]
    assert window["rows"] == 8 and window["responses_missing"] == 0
    assert "rows_late" not in window or window["rows_late"] == 0


def test_a_sender_stuck_on_an_old_time_holds_its_window_only_so_long(ingest, clean_db) -> None:
    now = W0 + timedelta(hours=1)
    traffic = Traffic()
    traffic.call(ingest, "first", W0 + timedelta(seconds=5), 1, "v1")
    traffic.call(ingest, "again", W0 + timedelta(seconds=5), 1, "v1")
    arrived(clean_db, now - timedelta(minutes=11), ["first"])
    arrived(clean_db, now - timedelta(seconds=1), ["again"])
    reports = by_series(runner.run(JOB, now=now).reports)
    assert reports[("v1", "2026-12-01T10:00:00Z", None)]["rows"] == 2
