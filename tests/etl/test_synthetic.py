"""The synthetic source: report shape, ranges, determinism when seeded, fresh ids when not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelstats.core import contract, reports
from modelstats.core.cloudevents import Event
from modelstats.etl import jobs, runner

TICK = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def ping(data: object, id: str = "p-1", time: datetime | None = TICK) -> Event:
    return Event(
        id=id,
        source="/apis/v1/namespaces/modelstats/pingsources/etl-schedule",
        type=contract.PING,
        time=time,
        datacontenttype="application/json",
        data=data,
    )


def run(data: dict, **kwargs) -> runner.RunResult:
    event = ping(data, **kwargs)
    return runner.run(jobs.from_ping(event), ping=event, now=TICK + timedelta(seconds=1))


def test_default_job_reports_three_models_version_v1_at_the_tick():
    outcome = run({"source": "synthetic"})
    assert outcome.source == "/modelstats/etl/synthetic"
    assert [(r["model"], r["version"]) for r in outcome.reports] == [
        ("GPT", "v1"),
        ("Llama", "v1"),
        ("Mistral", "v1"),
    ]
    for report in outcome.reports:
        assert report["time"] == "2026-11-27T10:00:00Z"
        assert set(report["metrics"]) == {"prediction_accuracy", "drift", "inference_time"}
        assert 0 <= report["metrics"]["prediction_accuracy"] <= 1
        assert 0 <= report["metrics"]["drift"] <= 1
        assert 10 <= report["metrics"]["inference_time"] <= 500


def test_reports_pass_ingest_validation():
    outcome = run({"source": "synthetic", "models": ["a", "b"], "versions": ["v1", "v2"]})
    event = outcome.event()
    assert event is not None
    assert event["type"] == "modelstats.metric.reported"
    parsed = reports.parse_reports(event.data, default_time=TICK, now=TICK)
    assert len(parsed) == 4
    assert {(r.model, r.version) for r in parsed} == {
        ("a", "v1"),
        ("a", "v2"),
        ("b", "v1"),
        ("b", "v2"),
    }


def test_labels_of_the_job_go_on_every_report():
    outcome = run({"source": "synthetic", "models": ["a"], "labels": {"env": "demo"}})
    assert outcome.reports[0]["labels"] == {"env": "demo"}


def test_seeded_runs_repeat_for_the_same_tick_and_differ_across_ticks():
    job = {"source": "synthetic", "seed": 42}
    first = run(job, id="p-1")
    again = run(job, id="p-2")  # a different ping of the same tick
    assert first.reports == again.reports
    assert first.reply.event_id == again.reply.event_id
    later = run(job, id="p-3", time=TICK + timedelta(minutes=1))
    assert later.reports != first.reports
    assert later.reply.event_id != first.reply.event_id
    other_seed = run({"source": "synthetic", "seed": 43})
    assert other_seed.reports != first.reports


def test_unseeded_runs_get_a_fresh_id_per_ping_and_the_same_id_for_a_redelivery():
    job = {"source": "synthetic"}
    first = run(job, id="p-1")
    second = run(job, id="p-2")
    redelivered = run(job, id="p-1")
    assert first.reply.event_id != second.reply.event_id
    assert redelivered.reply.event_id == first.reply.event_id


def test_a_ping_without_time_uses_the_run_time():
    outcome = run({"source": "synthetic", "models": ["a"]}, time=None)
    assert outcome.reports[0]["time"] == "2026-11-27T10:00:01Z"


def test_named_job_sets_the_event_source():
    outcome = run({"source": "synthetic", "name": "demo-load"})
    assert outcome.source == "/modelstats/etl/demo-load"
