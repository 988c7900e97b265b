"""Job validation and window arithmetic: every malformed job is a BadInput naming its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelstats.core import contract
from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput
from modelstats.etl import jobs, records, windows
from tests.configuration import configure

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def field_of(data: object) -> str:
    with pytest.raises(BadInput) as caught:
        jobs.parse(data)
    return caught.value.field


def test_defaults_of_a_jsonl_job(tmp_path):
    job = jobs.parse({"source": "jsonl", "path": str(tmp_path)})
    assert isinstance(job, jobs.JsonlJob)
    assert job.window == timedelta(minutes=1)
    assert job.lateness == timedelta(minutes=1)
    assert job.reference == "first"
    assert job.path == str(tmp_path)


def test_relative_paths_are_taken_from_etl_root(etl_root):
    job = jobs.parse({"source": "jsonl", "path": "logs/x.jsonl", "reference": "ref.jsonl"})
    assert isinstance(job, jobs.JsonlJob)
    assert job.path == str(etl_root / "logs" / "x.jsonl")
    assert job.reference == str(etl_root / "ref.jsonl")
    assert field_of({"source": "jsonl", "path": "../x.jsonl"}) == "data.path"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"source": "kafka"}, "data.source"),
        ({"models": ["a"]}, "data.source"),
        ({"source": "jsonl"}, "data.path"),
        ({"source": "jsonl", "path": "x", "window": "soon"}, "data.window"),
        ({"source": "jsonl", "path": "x", "window": "500ms"}, "data.window"),
        ({"source": "jsonl", "path": "x", "window": "1.5s"}, "data.window"),
        ({"source": "jsonl", "path": "x", "window": "2d"}, "data.window"),
        ({"source": "jsonl", "path": "x", "window": 60}, "data.window"),
        ({"source": "jsonl", "path": "x", "lateness": "8d"}, "data.lateness"),
        ({"source": "jsonl", "path": "x", "max_bytes": 10}, "data.max_bytes"),
        ({"source": "jsonl", "path": ""}, "data.path"),
        ({"source": "jsonl", "path": "x", "follow": True}, "data.follow"),
        ({"source": "synthetic", "models": []}, "data.models"),
        ({"source": "synthetic", "models": ["a", "a"]}, "data.models"),
        ({"source": "synthetic", "models": ["ok", ""]}, "data.models[1]"),
        ({"source": "synthetic", "versions": "v1"}, "data.versions"),
        ({"source": "synthetic", "seed": "7"}, "data.seed"),
        ({"source": "synthetic", "seed": True}, "data.seed"),
        ({"source": "synthetic", "labels": {"env": 1}}, "data.labels.env"),
        ({"source": "synthetic", "name": "has space"}, "data.name"),
        ({"source": "synthetic", "extra": 1}, "data.extra"),
        ([{"source": "synthetic"}], "data"),
        ("not json", "data"),
    ],
)
def test_malformed_jobs_name_the_field(data, field):
    assert field_of(data) == field


def test_etl_root_confines_paths_and_references(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    configure(ETL_ROOT=str(logs))
    inside = jobs.parse({"source": "jsonl", "path": str(logs / "a.jsonl")})
    assert isinstance(inside, jobs.JsonlJob)
    assert field_of({"source": "jsonl", "path": "/etc/passwd"}) == "data.path"
    assert field_of({"source": "jsonl", "path": str(logs / ".." / "x")}) == "data.path"
    assert field_of({"source": "jsonl", "path": str(tmp_path)}) == "data.path"
    assert field_of({"source": "jsonl", "path": str(logs) + "-sibling/a.jsonl"}) == "data.path"
    assert field_of({"source": "jsonl", "path": str(logs / "a\x00.jsonl")}) == "data.path"
    outside_reference = {"source": "jsonl", "path": str(logs), "reference": "/tmp/r.jsonl"}
    assert field_of(outside_reference) == "data.reference"


def test_outside_the_root_one_answer_whether_the_path_exists_or_not(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "secret.jsonl").write_text('{"model": "m"}\n')
    configure(ETL_ROOT=str(tmp_path / "logs"))
    messages = set()
    for name in ("secret.jsonl", "absent.jsonl"):
        with pytest.raises(BadInput) as caught:
            jobs.parse({"source": "jsonl", "path": str(tmp_path / name)})
        messages.add(caught.value.message)
    assert len(messages) == 1, messages


def test_without_etl_root_jsonl_jobs_are_refused_and_say_why(tmp_path):
    configure(ETL_ROOT=None)
    with pytest.raises(BadInput) as caught:
        jobs.parse({"source": "jsonl", "path": str(tmp_path)})
    assert caught.value.field == "data.path"
    assert "ETL_ROOT is not set" in caught.value.message
    assert isinstance(jobs.parse({"source": "synthetic"}), jobs.SyntheticJob)


def test_too_many_synthetic_reports_for_one_event():
    data = {
        "source": "synthetic",
        "models": [f"m{i}" for i in range(200)],
        "versions": [f"v{i}" for i in range(51)],
    }
    assert field_of(data) == "data.versions"


def test_unknown_source_message_lists_the_known_ones():
    with pytest.raises(BadInput) as caught:
        jobs.parse({"source": "kafka"})
    assert "synthetic" in caught.value.message and "jsonl" in caught.value.message


def ping(type: str = contract.PING, data: object = None) -> Event:
    return Event(id="1", source="/ping", type=type, data=data)


def test_from_ping_checks_the_type_and_presence_of_a_job():
    with pytest.raises(BadInput) as caught:
        jobs.from_ping(ping(type="modelstats.metric.reported", data={"source": "synthetic"}))
    assert caught.value.field == "type"
    with pytest.raises(BadInput) as caught:
        jobs.from_ping(ping(data=None))
    assert caught.value.field == "data"
    assert isinstance(jobs.from_ping(ping(data={"source": "synthetic"})), jobs.SyntheticJob)
    # A ping whose content type is not JSON hands over bytes.
    assert isinstance(jobs.from_ping(ping(data=b'{"source": "synthetic"}')), jobs.SyntheticJob)


def test_windows_align_to_the_epoch():
    width = timedelta(minutes=5)
    assert windows.start_of(datetime(2026, 1, 1, 10, 7, 59, tzinfo=UTC), width) == datetime(
        2026, 1, 1, 10, 5, tzinfo=UTC
    )
    assert windows.start_of(datetime(2026, 1, 1, 10, 5, tzinfo=UTC), width) == datetime(
        2026, 1, 1, 10, 5, tzinfo=UTC
    )


def test_nearest_rank_p95():
    assert windows.nearest_rank([float(v) for v in range(1, 21)], 95) == 19.0
    assert windows.nearest_rank([float(v) for v in range(100, 0, -1)], 95) == 95.0
    assert windows.nearest_rank([float(v) for v in range(1, 11)], 95) == 10.0
    assert windows.nearest_rank([3.0], 95) == 3.0


def test_record_parsing_rules():
    line = (
        '{"model": "m", "version": "v1", "time": "2026-11-27T10:00:00Z", "prediction": 1,'
        ' "label": 1.0, "latency_ms": 3, "score": 0.5, "request_id": "x"}'
    )
    record = records.parse(line, NOW)
    assert record.correct is True and record.latency_ms == 3.0 and record.score == 0.5
    assert records.parse(line.replace('"label": 1.0', '"label": true'), NOW).correct is False
    assert records.parse(line.replace('"label": 1.0', '"label": null'), NOW).correct is None
    for bad in (
        line.replace('"latency_ms": 3', '"latency_ms": NaN'),
        line.replace('"latency_ms": 3', '"latency_ms": -1'),
        line.replace('"latency_ms": 3', '"latency_ms": true'),
        line.replace('"latency_ms": 3', '"latency_ms": 1' + "0" * 400),
        line.replace('"prediction": 1,', ""),
        line.replace('"score": 0.5', '"score": "high"'),
        line.replace("2026-11-27T10:00:00Z", "2026-11-29T12:00:01Z"),  # > 1 day ahead
        line.replace("2026-11-27T10:00:00Z", "2026-11-27 10:00"),
        line.replace('"model": "m"', '"model": ""'),
        "[1, 2]",
        "{",
    ):
        with pytest.raises(records.BadRecord):
            records.parse(bad, NOW)
