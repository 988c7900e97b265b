"""Logged inference events read into blocks of rows: who the model is, which rows, when.

- KServe's logger, `org.kubeflow.serving.inference.request` / `.response`, and Seldon Core's,
  `io.seldon.serving.inference.request` / `.response`: the model is the extension
  `inferenceservicename`, the rows are the body's (protocols.py);
- `modelstats.inference.logged`: the data's `model` and `records` (core/inference.py).

A row's id, which a label names later: for a logger's event, the pairing key (KServe: the
event id, which both halves share; Seldon: the `requestid` extension, else the event id) when
the event holds one row, `<key>:<i>` for row i of a batch; for a record, its own `id`. A
request and its response are joined on these ids when their window closes (etl), so a
response without its request, or the other way round, is kept and counted, never an error.

A row's version: a V2 response's `model_version`, else the event's non-empty `endpoint`
extension (a request carries only that), else none (`default` once the window is profiled);
for records, the data's `version`. Loggers copy the model's request content type (curl sends
`application/x-www-form-urlencoded`), so the body is read as JSON whatever it says.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelstats.core import cloudevents, contract, inference, reports
from modelstats.core.cloudevents import Event
from modelstats.core.columns import Columns
from modelstats.core.errors import BadInput
from modelstats.core.inference import CALL, ID, LATENCY, RECORD, REQUEST, RESPONSE, TIME, VERSION
from modelstats.core.settings import Settings
from modelstats.ingest import protocols


@dataclass
class Block:
    """Rows of one kind and one model, as they are stored (one event's, or several merged)."""

    model: str
    kind: str
    meta: Columns
    features: Columns | None = None
    outputs: Columns | None = None
    scores: Columns | None = None

    @property
    def rows(self) -> int:
        return self.meta.rows

    def time_range(self) -> tuple[float, float]:
        times = self.meta.numeric[TIME]
        return min(times), max(times)

    def take(self, rows: list[int]) -> Block:
        """Only the rows at these positions."""

        def part(columns: Columns | None) -> Columns | None:
            return None if columns is None else columns.take(rows)

        return Block(
            self.model,
            self.kind,
            self.meta.take(rows),
            part(self.features),
            part(self.outputs),
            part(self.scores),
        )

    @classmethod
    def merge(cls, blocks: list[Block]) -> Block:
        """One block of the rows of `blocks` (all of one model and kind), in order."""
        first = blocks[0]
        if len(blocks) == 1:
            return first

        def joined(parts: list[Columns | None]) -> Columns | None:
            present = [part for part in parts if part is not None]
            return Columns.concat(present) if present else None

        return cls(
            first.model,
            first.kind,
            Columns.concat([block.meta for block in blocks]),
            joined([block.features for block in blocks]),
            joined([block.outputs for block in blocks]),
            joined([block.scores for block in blocks]),
        )


def _data(event: Event) -> Any:
    """The body as JSON whatever its content type (a logger copies the model's)."""
    data = event.data
    if isinstance(data, bytes | bytearray):
        return cloudevents.json_data(bytes(data))
    if data is None:
        raise BadInput("data", "the event carries no body")
    return data


def _extension(event: Event, name: str, settings: Settings, required: bool) -> str | None:
    value = event.extensions.get(name)
    if not value:
        if required:
            raise BadInput(name, "the logger's extension attribute is missing or empty")
        return None
    return reports.check_name(value, name, settings.max_name_length)


def _row_ids(key: str, rows: int) -> list[str]:
    return [key] if rows == 1 else [f"{key}:{i}" for i in range(rows)]


def meta_columns(
    ids: list[str], times: list[float], versions: list[str | None], each_a_call: bool = False
) -> Columns:
    meta = Columns(len(ids))
    meta.text[ID] = list[str | None](ids)
    meta.numeric[TIME] = array("d", times)
    meta.text[VERSION] = versions
    calls = array("d", [1.0]) * len(ids) if each_a_call else array("d", [0.0]) * len(ids)
    if ids:
        calls[0] = 1.0
    meta.numeric[CALL] = calls
    return meta


def _moment(event: Event, now: datetime) -> datetime:
    """The event's time (the logger stamps each half when it sends it), else now."""
    moment = event.time or now
    if moment > now + reports.MAX_FUTURE:
        raise BadInput("time", f"more than {reports.MAX_FUTURE.days} day in the future")
    if moment < reports.EARLIEST:
        raise BadInput("time", "before 1970-01-01")
    return moment


def read(event: Event, now: datetime, settings: Settings) -> Block:
    """The block of rows `event` logs; BadInput names what is wrong with it."""
    if event.type == contract.INFERENCE_LOGGED:
        return _records(event, now, settings)
    seldon = event.type in (contract.SELDON_REQUEST, contract.SELDON_RESPONSE)
    model = _extension(event, "inferenceservicename", settings, required=True)
    assert model is not None
    endpoint = _extension(event, "endpoint", settings, required=False)
    key = (seldon and event.extensions.get("requestid")) or event.id
    inference.row_id(key, "requestid" if seldon else "id")
    moment = _moment(event, now).timestamp()
    body = _data(event)
    if event.type in contract.INFERENCE_REQUESTS:
        features = protocols.request_columns(body, settings)
        ids = _row_ids(key, features.rows)
        meta = meta_columns(ids, [moment] * len(ids), [endpoint] * len(ids))
        return Block(model, REQUEST, meta, features=features)
    outputs = protocols.response_outputs(body, settings)
    version = outputs.model_version or endpoint
    ids = _row_ids(key, outputs.values.rows)
    meta = meta_columns(ids, [moment] * len(ids), [version] * len(ids))
    return Block(model, RESPONSE, meta, outputs=outputs.values, scores=outputs.scores)


def _records(event: Event, now: datetime, settings: Settings) -> Block:
    default = event.time or now
    records = inference.parse_records(_data(event), default, now, settings)
    times = [moment.timestamp() for moment in records.times]
    meta = meta_columns(records.ids, times, [records.version] * len(records.ids), each_a_call=True)
    meta.numeric[LATENCY] = records.latencies
    return Block(
        records.model,
        RECORD,
        meta,
        features=records.features,
        outputs=records.outputs,
        scores=records.scores,
    )
