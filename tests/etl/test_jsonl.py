"""The JSONL source with real files and a real PostgreSQL: figures, windows, exactly-once reading.

Every run gets an explicit `now`, so closing windows by the clock is deterministic.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from modelstats.core import contract, reports
from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput
from modelstats.etl import jobs, runner
from tests.configuration import configure

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ETL_TABLES = "etl_replies, etl_references, etl_pending, etl_files, etl_sources"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record(
    seconds: float,
    model: str = "m",
    version: str = "v1",
    latency: float = 10.0,
    prediction: Any = "cat",
    **extra: Any,
) -> dict[str, Any]:
    moment = at(seconds).isoformat().replace("+00:00", "Z")
    line = {"model": model, "version": version, "time": moment, "prediction": prediction}
    return {**line, "latency_ms": latency, **extra}


def append(path: Path, items: list[dict[str, Any]] | list[str]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        for item in items:
            handle.write((item if isinstance(item, str) else json.dumps(item)) + "\n")


def job(path: Path, **fields: Any) -> jobs.Job:
    return jobs.parse(
        {"source": "jsonl", "path": str(path), "window": "1m", "lateness": "0s", **fields}
    )


def run(the_job: jobs.Job, now_seconds: float, **kwargs: Any) -> runner.RunResult:
    return runner.run(the_job, now=at(now_seconds), **kwargs)


def figures(outcome: runner.RunResult) -> dict[tuple[str, str, str], dict[str, float]]:
    return {(r["model"], r["version"], r["time"]): r["metrics"] for r in outcome.reports}


def requests(outcomes: list[runner.RunResult]) -> dict[tuple[str, str, str], float]:
    """Requests reported per model, version and window over several runs (must not repeat)."""
    total: dict[tuple[str, str, str], float] = {}
    for outcome in outcomes:
        for key, metrics in figures(outcome).items():
            if key[0] == "etl":
                continue
            assert key not in total, f"window reported twice: {key}"
            total[key] = metrics["requests"]
    return total


def etl_report(outcome: runner.RunResult) -> dict[str, Any] | None:
    found = [r for r in outcome.reports if r["model"] == "etl"]
    return found[0] if found else None


def pending(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM etl_pending").fetchone()
    assert row is not None
    return int(row[0])


def offset(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT sum(read_offset) FROM etl_files").fetchone()
    assert row is not None
    return int(row[0])


def valid_event(outcome: runner.RunResult, now: datetime) -> None:
    """The reply must pass ingest's own validation."""
    event = outcome.event()
    assert event is not None
    assert event["type"] == "modelstats.metric.reported"
    parsed = reports.parse_reports(event.data, default_time=now, now=now)
    assert len(parsed) == len(outcome.reports)


def test_figures_of_a_closed_window(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    window = []
    for i in range(20):
        extra: dict[str, Any] = {}
        if i < 12:
            extra["label"] = "cat"  # correct
        elif i < 15:
            extra["label"] = "dog"  # wrong
        window.append(record(i, latency=float(i + 1), **extra))  # 15 labelled, 12 correct
    window += [record(30 + i, "n", "v2", latency=v) for i, v in enumerate([5.0, 100.0, 7.0])]
    append(log, window)
    append(log, [record(65), record(70, "n", "v2")])  # the next window, still open at 10:01:30
    outcome = run(job(log), 90)
    assert figures(outcome) == {
        ("m", "v1", "2026-11-27T10:00:00Z"): {
            "requests": 20.0,
            "prediction_accuracy": 0.8,  # 12 / 15
            "inference_time": 10.5,  # mean of 1..20
            "inference_time_p95": 19.0,  # ceil(0.95 * 20) = 19th smallest
        },
        ("n", "v2", "2026-11-27T10:00:00Z"): {
            "requests": 3.0,
            "inference_time": pytest.approx(112.0 / 3),
            "inference_time_p95": 100.0,  # ceil(0.95 * 3) = 3rd smallest
        },
    }
    assert all(r["labels"] == {} for r in outcome.reports)
    valid_event(outcome, at(90))
    assert pending(clean_db) == 2


def test_drift_against_a_reference_file(clean_db, tmp_path):
    reference = tmp_path / "reference.jsonl"
    # Only model, version and score matter in a reference file.
    append(reference, [{"model": "m", "version": "v1", "score": v} for v in range(1, 11)])
    append(reference, ["not json", '{"model": "m", "version": "v1"}'])
    log = tmp_path / "inference.jsonl"
    concentrated = [record(i, score=1.0 if i < 5 else 2.0) for i in range(10)]
    shifted_other_version = [record(20 + i, version="v9", score=float(i + 2)) for i in range(10)]
    no_reference = [record(40, model="x", score=0.5)]
    append(log, concentrated + shifted_other_version + no_reference)
    outcome = run(job(log, reference=str(reference)), 61)
    found = figures(outcome)
    # Hand-computed in tests/etl/test_psi.py: reference 1..10 against five 1s and five 2s ...
    assert found[("m", "v1", "2026-11-27T10:00:00Z")]["drift"] == pytest.approx(6.808228348909804)
    # ... and against 2..11, here through the model-wide reference (the file has no v9).
    assert found[("m", "v9", "2026-11-27T10:00:00Z")]["drift"] == pytest.approx(0.75939947042631)
    assert "drift" not in found[("x", "v1", "2026-11-27T10:00:00Z")]


def test_drift_against_the_first_window_with_enough_scores(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    too_few = [record(i, score=float(i)) for i in range(5)]  # 10:00, fewer than 10 scores
    reference = [record(60 + i, score=float(i + 1)) for i in range(10)]  # 10:01: 1..10
    shifted = [record(120 + i, score=float(i + 2)) for i in range(10)]  # 10:02: 2..11
    append(log, too_few + reference + shifted)
    outcome = run(job(log), 180)
    found = figures(outcome)
    assert "drift" not in found[("m", "v1", "2026-11-27T10:00:00Z")]
    assert found[("m", "v1", "2026-11-27T10:01:00Z")]["drift"] == 0.0
    assert found[("m", "v1", "2026-11-27T10:02:00Z")]["drift"] == pytest.approx(0.75939947042631)
    # The reference is kept in PostgreSQL: a later window still compares with 10:01.
    append(log, [record(180 + i, score=1.0 if i < 5 else 2.0) for i in range(10)])
    later = figures(run(job(log), 240))
    assert later[("m", "v1", "2026-11-27T10:03:00Z")]["drift"] == pytest.approx(6.808228348909804)


def test_each_record_counts_once_across_runs_and_appends(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    the_job = job(log)
    outcomes = []
    append(log, [record(i) for i in range(10)])
    outcomes.append(run(the_job, 30))
    assert outcomes[-1].event() is None  # the window is open: nothing to say yet
    assert pending(clean_db) == 10
    append(log, [record(40 + i) for i in range(5)])
    partial = json.dumps(record(50))
    with log.open("a") as handle:
        handle.write(partial[:25])  # a line still being written
    outcomes.append(run(the_job, 55))
    assert outcomes[-1].event() is None
    assert pending(clean_db) == 15  # the partial line was not consumed
    with log.open("a") as handle:
        handle.write(partial[25:] + "\n")
    append(log, [record(70 + i) for i in range(3)])
    outcomes.append(run(the_job, 80))
    assert figures(outcomes[-1]) == {
        ("m", "v1", "2026-11-27T10:00:00Z"): {
            "requests": 16.0,
            "inference_time": 10.0,
            "inference_time_p95": 10.0,
        }
    }
    append(log, [record(90), record(100)])
    outcomes.append(run(the_job, 125))
    outcomes.append(run(the_job, 130))
    assert outcomes[-1].event() is None
    assert requests(outcomes) == {
        ("m", "v1", "2026-11-27T10:00:00Z"): 16.0,
        ("m", "v1", "2026-11-27T10:01:00Z"): 5.0,
    }
    assert pending(clean_db) == 0


def test_window_closes_when_its_end_passes_now_minus_lateness(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    append(log, [record(10)])
    the_job = job(log, lateness="30s")
    assert run(the_job, 89).event() is None  # horizon 10:00:59: window 10:00 still open
    outcome = run(the_job, 90)  # horizon 10:01:00 = the window's end: closed
    assert list(figures(outcome)) == [("m", "v1", "2026-11-27T10:00:00Z")]


def test_the_newest_record_closes_windows_when_the_clock_is_behind(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    append(log, [record(10), record(300)])
    outcome = run(job(log), -3600)  # the clock reads 09:00, the log says 10:05
    assert list(figures(outcome)) == [("m", "v1", "2026-11-27T10:00:00Z")]
    assert pending(clean_db) == 1  # 10:05 is open


def test_records_after_their_window_was_reported_are_counted_as_late(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    the_job = job(log)
    append(log, [record(10)])
    first = run(the_job, 60)
    assert requests([first]) == {("m", "v1", "2026-11-27T10:00:00Z"): 1.0}
    append(log, [record(59), record(65)])
    second = run(the_job, 70)
    assert etl_report(second) == {
        "model": "etl",
        "version": "jsonl",
        "time": "2026-11-27T10:01:10Z",
        "metrics": {"etl_bad_records": 0, "etl_late_records": 1},
        "labels": {"source": str(log)},
    }
    assert requests([second]) == {}
    third = run(the_job, 120)
    assert requests([first, second, third]) == {
        ("m", "v1", "2026-11-27T10:00:00Z"): 1.0,
        ("m", "v1", "2026-11-27T10:01:00Z"): 1.0,
    }


def test_bad_lines_are_skipped_counted_and_reported(clean_db, tmp_path, caplog):
    log = tmp_path / "inference.jsonl"
    good = record(5)
    bad_lines = [
        "not json",
        "[1, 2]",
        '{"model": "m"}',
        json.dumps(record(6, latency="fast")),  # type: ignore[arg-type]
        json.dumps(record(7)).replace('"latency_ms": 10.0', '"latency_ms": NaN'),
        json.dumps(record(8, latency=-1.0)),
        json.dumps({**record(9), "time": "yesterday"}),
        json.dumps(record(3 * 86400)),  # three days ahead of the run
        json.dumps(record(10, model="")),
        "x" * (1024 * 1024 + 10),  # longer than a line may be
    ]
    append(log, [good, *bad_lines[:5], "   ", *bad_lines[5:], record(11), record(12)])
    outcome = run(job(log, name="web"), 61)
    assert etl_report(outcome) == {
        "model": "etl",
        "version": "jsonl",
        "time": "2026-11-27T10:01:01Z",
        "metrics": {"etl_bad_records": len(bad_lines), "etl_late_records": 0},
        "labels": {"source": "web"},
    }
    assert requests([outcome]) == {("m", "v1", "2026-11-27T10:00:00Z"): 3.0}
    assert outcome.source == "/modelstats/etl/web"
    assert any("skipped" in message for message in caplog.messages)
    valid_event(outcome, at(61))
    # The bad lines were consumed: the next run does not count them again.
    assert run(job(log, name="web"), 62).event() is None


def test_directory_files_renames_and_rotation(clean_db, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "notes.txt").write_text("not a log\n")
    append(logs / "a.jsonl", [record(i) for i in range(3)])
    append(logs / "b.jsonl", [record(10 + i) for i in range(2)])
    the_job = job(logs)
    first = run(the_job, 30)
    assert first.event() is None
    assert first.source == "/modelstats/etl/jsonl" + str(logs)
    # Renamed inside the directory: same inode, the offset is kept.
    os.rename(logs / "a.jsonl", logs / "archive.jsonl")
    append(logs / "archive.jsonl", [record(20)])
    # A new file under the old name is read from its start.
    append(logs / "a.jsonl", [record(30 + i) for i in range(4)])
    second = run(the_job, 61)
    assert requests([second]) == {("m", "v1", "2026-11-27T10:00:00Z"): 10.0}
    assert etl_report(second) is None  # notes.txt is not read


def test_a_truncated_and_rewritten_file_is_read_from_its_start(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    append(log, [record(i) for i in range(3)])
    the_job = job(log)
    first = run(the_job, 61)
    inode = log.stat().st_ino
    # copytruncate: same inode, new content longer than the old offset.
    with log.open("w") as handle:
        for i in range(5):
            handle.write(json.dumps(record(70 + i, latency=20.0)) + "\n")
    assert log.stat().st_ino == inode
    second = run(the_job, 121)
    assert requests([first, second]) == {
        ("m", "v1", "2026-11-27T10:00:00Z"): 3.0,
        ("m", "v1", "2026-11-27T10:01:00Z"): 5.0,
    }
    assert etl_report(second) is None


def test_a_byte_budget_spreads_a_backlog_over_runs_without_closing_windows_early(
    clean_db, tmp_path
):
    log = tmp_path / "inference.jsonl"
    append(log, [record(i) for i in range(300)])  # five windows of 60 records
    the_job = job(log, max_bytes=4096)
    outcomes = []
    for _ in range(100):
        outcomes.append(run(the_job, 3600))
        if offset(clean_db) == log.stat().st_size and outcomes[-1].event() is None:
            break
    assert len(outcomes) >= log.stat().st_size // 4096  # read 4 KB at a time
    assert len(figures(outcomes[0])) < 5  # the first run could not close every window
    assert all(etl_report(o) is None for o in outcomes)  # nothing late, nothing bad
    assert requests(outcomes) == {
        ("m", "v1", f"2026-11-27T10:0{minute}:00Z"): 60.0 for minute in range(5)
    }


def test_reports_beyond_the_event_limit_wait_for_the_next_run(clean_db, tmp_path):
    configure(MAX_REPORTS_PER_EVENT="3")  # two model reports + the etl report
    log = tmp_path / "inference.jsonl"
    append(log, [record(60 * w + 1, model=m) for w in range(3) for m in ("a", "b")])
    the_job = job(log)
    outcomes = [run(the_job, 600) for _ in range(4)]
    assert [len(o.reports) for o in outcomes] == [2, 2, 2, 0]
    assert [sorted({r["time"] for r in o.reports}) for o in outcomes[:3]] == [
        ["2026-11-27T10:00:00Z"],
        ["2026-11-27T10:01:00Z"],
        ["2026-11-27T10:02:00Z"],
    ]
    for outcome in outcomes[:3]:
        valid_event(outcome, at(600))


def test_a_window_larger_than_the_event_limit_is_cut_rather_than_stuck(clean_db, tmp_path):
    configure(MAX_REPORTS_PER_EVENT="3")
    log = tmp_path / "inference.jsonl"
    append(log, [record(1, model=m) for m in ("a", "b", "c")] + [record(61, model="d")])
    the_job = job(log)
    first, second = run(the_job, 600), run(the_job, 600)
    assert [r["model"] for r in first.reports] == ["a", "b"]
    assert [r["model"] for r in second.reports] == ["d"]


def test_two_runs_at_once_do_not_double_count(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    log.touch()
    the_job = job(log)
    assert run(the_job, 0).event() is None  # the source's row exists: only its lock serialises
    append(log, [record(i * 0.05) for i in range(2000)])  # 10:00:00 .. 10:01:40
    barrier = threading.Barrier(2)
    outcomes: list[runner.RunResult] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(run(the_job, 600))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(outcomes) == 2
    assert requests(outcomes) == {
        ("m", "v1", "2026-11-27T10:00:00Z"): 1200.0,
        ("m", "v1", "2026-11-27T10:01:00Z"): 800.0,
    }
    assert sorted(o.event() is None for o in outcomes) == [False, True]


def ping(id: str) -> Event:
    return Event(
        id=id,
        source="/apis/v1/namespaces/modelstats/pingsources/etl-schedule",
        type=contract.PING,
        time=at(0),
    )


def test_a_redelivered_ping_gets_the_same_reply(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    append(log, [record(1), record(2)])
    the_job = job(log)
    first = runner.run(the_job, ping=ping("p-1"), now=at(61))
    append(log, [record(3)])  # arrives before the redelivery
    again = runner.run(the_job, ping=ping("p-1"), now=at(70))
    assert again.reply == first.reply
    assert requests([first]) == {("m", "v1", "2026-11-27T10:00:00Z"): 2.0}
    # A new tick reads the new line: late, since window 10:00 was reported.
    late = runner.run(the_job, ping=ping("p-2"), now=at(75))
    assert late.reply.event_id != first.reply.event_id
    report = etl_report(late)
    assert report is not None and report["metrics"]["etl_late_records"] == 1


def test_a_dry_run_changes_nothing(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    append(log, [record(1), record(70)])
    the_job = job(log)
    dry = run(the_job, 65, commit=False)
    assert pending(clean_db) == 0
    assert run(the_job, 65, commit=False).reply == dry.reply
    real = run(the_job, 65)
    assert real.reply == dry.reply
    assert pending(clean_db) == 1
    assert run(the_job, 65).event() is None


def test_the_event_id_derives_from_what_the_run_covers(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    append(log, [record(1), record(61)])
    the_job = job(log)
    first = run(the_job, 61)
    second = run(the_job, 121)
    assert first.reply.event_id and second.reply.event_id
    assert first.reply.event_id != second.reply.event_id
    # Forget the watermark and run again from scratch: the same windows, the same id, so
    # ingest's (source, id) dedup drops the repeated batch.
    with psycopg.connect(clean_db) as conn:
        conn.execute(f"TRUNCATE {ETL_TABLES}")
    repeated = run(the_job, 61)
    assert repeated.reply.event_id == first.reply.event_id
    assert repeated.reports == first.reports


def test_a_missing_path_or_reference_is_bad_input(clean_db, tmp_path):
    with pytest.raises(BadInput) as caught:
        run(job(tmp_path / "nowhere.jsonl"), 61)
    assert caught.value.field == "data.path"
    log = tmp_path / "inference.jsonl"
    append(log, [record(1, score=0.5)])
    with pytest.raises(BadInput) as caught:
        run(job(log, reference=str(tmp_path / "missing.jsonl")), 61)
    assert caught.value.field == "data.reference"
    assert pending(clean_db) == 0  # the failed run saved nothing
