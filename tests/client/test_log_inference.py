"""Reporter.log_inference against a real local receiver: records travel as
modelstats.inference.logged events, batched per model and version, checked before sending."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from modelstats.client import AsyncReporter, Reporter
from modelstats.core import cloudevents, contract
from modelstats.core.errors import BadInput
from modelstats.core.inference import parse_records
from modelstats.core.settings import get_settings
from tests.receivers import Receiver, Reply

FAST = {"retry_initial": 0.01, "retry_max": 0.05, "flush_interval": 0.05}
MOMENT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def receiver() -> Any:
    with Receiver(default=Reply(202)) as running:
        yield running


def test_records_are_sent_as_logged_inference_events_ingest_accepts(receiver: Receiver) -> None:
    with Reporter(f"{receiver.url}/modelstats/default", source="/tests/logger", **FAST) as r:
        r.log_inference(
            "fraud",
            "a",
            {"amount": np.float32(4.5), "country": "NL"},
            np.int64(1),
            version="v3",
            score=0.9,
            latency_ms=12.0,
            time=MOMENT,
        )
        r.log_inference("fraud", "b", {"amount": float("nan")}, 0, version="v3", time=MOMENT)
        r.log_inference("churn", "c", {"tenure": 3}, "stay", time=MOMENT)
        assert r.flush(timeout=10)
        assert r.counters.sent == 3
    first, second = receiver.requests
    assert first.ce("type") == contract.INFERENCE_LOGGED
    event = cloudevents.parse(first.headers, first.body)
    records = parse_records(event.data, MOMENT, MOMENT, get_settings())
    assert (records.model, records.version, records.ids) == ("fraud", "v3", ["a", "b"])
    assert records.features.numeric["amount"][0] == 4.5
    assert records.scores.numeric["prediction"][0] == 0.9
    data = cloudevents.parse(second.headers, second.body).data
    assert data["model"] == "churn" and "version" not in data


def test_the_async_reporter_logs_inference_too(receiver: Receiver) -> None:
    async def main() -> None:
        async with AsyncReporter(f"{receiver.url}/modelstats/default", **FAST) as r:
            r.log_inference("fraud", "a", {"x": 1}, 1, time=MOMENT)
            assert await r.flush(timeout=10)

    asyncio.run(main())
    (request,) = receiver.requests
    assert request.ce("type") == contract.INFERENCE_LOGGED


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"features": {}}, "record.features"),
        ({"features": {"x": [1, 2]}}, "record.records"),
        ({"id": ""}, "record.id"),
        ({"prediction": None}, "record.prediction"),
        ({"latency_ms": -1}, "record.latency_ms"),
        ({"model": "m\n"}, "record.model"),
        ({"features": {"x": "poison\ud800"}}, "record.records"),
    ],
)
def test_a_bad_record_is_refused_where_it_is_made(
    receiver: Receiver, kwargs: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = {"model": "m", "id": "a", "features": {"x": 1}, "prediction": 1}
    arguments.update(kwargs)
    with Reporter(f"{receiver.url}/modelstats/default", **FAST) as r:
        with pytest.raises(BadInput) as error:
            r.log_inference(**arguments)
        assert error.value.field.startswith(field)
        assert r.counters.reported == 0
    assert receiver.requests == []


def test_labels_travel_as_label_events_per_model(receiver: Receiver) -> None:
    from modelstats.core.labels import parse_labels

    with Reporter(f"{receiver.url}/modelstats/default", **FAST) as r:
        r.label("fraud", "c-1:0", 1, time=MOMENT)
        r.label("fraud", "c-1:1", np.bool_(False), time=MOMENT)
        r.label("churn", "r7", "stay", time=MOMENT)
        with pytest.raises(BadInput) as error:
            r.label("fraud", "c-2", None)
        assert error.value.field == "label.label"
        assert r.flush(timeout=10)
    first, second = receiver.requests
    assert first.ce("type") == contract.LABEL_REPORTED
    labels = parse_labels(
        cloudevents.parse(first.headers, first.body).data, MOMENT, MOMENT, get_settings()
    )
    assert (labels.model, labels.ids, labels.texts) == ("fraud", ["c-1:0", "c-1:1"], ["1", "0"])
    assert cloudevents.parse(second.headers, second.body).data["model"] == "churn"
