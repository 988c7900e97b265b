"""modelstats.inference.logged data: records checked and columned, errors naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelstats.core.errors import BadInput
from modelstats.core.inference import parse_records
from modelstats.core.settings import from_environment

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTINGS = from_environment({})


def test_records_become_columns() -> None:
    data = {
        "model": "fraud",
        "version": "v3",
        "records": [
            {
                "id": "a",
                "time": "2026-12-01T10:00:00Z",
                "features": {"x": 1, "c": "NL"},
                "prediction": 1,
                "score": 0.9,
                "latency_ms": 12.5,
            },
            {"id": "b", "features": {"x": 2}, "prediction": 0},
        ],
    }
    records = parse_records(data, NOW, NOW, SETTINGS)
    assert records.model == "fraud" and records.version == "v3"
    assert records.ids == ["a", "b"]
    assert records.times == [datetime(2026, 12, 1, 10, 0, tzinfo=UTC), NOW]
    assert list(records.features.numeric["x"]) == [1.0, 2.0]
    assert records.features.text["c"] == ["NL", None]
    assert list(records.outputs.numeric["prediction"]) == [1.0, 0.0]
    assert records.scores.numeric["prediction"][0] == 0.9
    assert records.latencies[0] == 12.5


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"model": "m", "records": []}, "data.records"),
        (
            {"model": "m", "records": [{"id": "a", "features": {}, "prediction": 1}]},
            "data.records[0].features",
        ),
        (
            {"model": "m", "records": [{"id": "a", "features": {"x": 1}}]},
            "data.records[0].prediction",
        ),
        (
            {
                "model": "m",
                "records": [
                    {"id": "a", "features": {"x": 1}, "prediction": 1},
                    {"id": "a", "features": {"x": 1}, "prediction": 1},
                ],
            },
            "data.records[1].id",
        ),
        (
            {
                "model": "m",
                "records": [{"id": "a", "features": {"x": 1}, "prediction": 1, "latency_ms": -1}],
            },
            "data.records[0].latency_ms",
        ),
        (
            {
                "model": "m",
                "records": [{"id": "a", "features": {"x": 1}, "prediction": 1, "extra": 1}],
            },
            "data.records[0].extra",
        ),
        ({"model": "poison\ud800", "records": []}, "data.model"),
        (
            {"model": "m", "records": [{"id": "", "features": {"x": 1}, "prediction": 1}]},
            "data.records[0].id",
        ),
        (
            {
                "model": "m",
                "records": [
                    {"id": "a", "time": "yesterday", "features": {"x": 1}, "prediction": 1}
                ],
            },
            "data.records[0].time",
        ),
    ],
)
def test_bad_records_name_the_field(data: object, field: str) -> None:
    with pytest.raises(BadInput) as error:
        parse_records(data, NOW, NOW, SETTINGS)
    assert error.value.field == field
