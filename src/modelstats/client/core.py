"""What the sync and the async reporter share: the buffer, the events and the retry decisions.

Nothing here does I/O. A `Batcher` holds the validated reports (encoded once, as JSON bytes)
in a bounded FIFO and keeps the counters; `take()` hands the sender a `BatchDelivery`: the reports
of one or more events and what to do after each answer. The senders (`sync.py`, `aio.py`)
only post, sleep and wait.

Every report gets a sequence number when it is accepted. Reports leave the buffer in that
order (sent in a batch, or dropped as the oldest when the buffer is full), so "everything
reported before this flush() is settled" is: the buffer's head and every batch in flight are
past the flush's mark.
"""

from __future__ import annotations

import json
import logging
import numbers
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloudevents.http import CloudEvent

from modelstats.core import (
    cloudevents,
    contract,
    inference,
    labels,
    reports,
    surrogates,
    timestamps,
)
from modelstats.core.contract import INFERENCE_LOGGED, LABEL_REPORTED, METRIC_REPORTED
from modelstats.core.errors import BadInput, ConfigError, ModelstatsError
from modelstats.core.settings import get_settings

log = logging.getLogger("modelstats.client")

# What Knative's own senders retry (knative/SEMANTICS.md), besides network errors: every
# other status is the event's fault and sending it again would get the same answer.
NOT_SENT_AT_CLOSE = "not sent before close() timed out"


class ReporterClosed(ModelstatsError):
    """report() after close(): the report is not taken."""


@dataclass(frozen=True)
class ReporterOptions:
    source: str
    # Reports held while the broker is slow or down; beyond it the oldest are dropped.
    max_buffered: int = 100_000
    # Per event: well under ingest's MAX_REPORTS_PER_EVENT (10,000) and MAX_BODY_BYTES (8 MiB).
    max_reports_per_event: int = 1_000
    max_event_bytes: int = 1024 * 1024
    flush_interval: float = 1.0
    retry_initial: float = 0.2
    retry_max: float = 30.0
    # A broker asking for more than this (Retry-After) is waited for this long.
    retry_after_max: float = 60.0
    timeout: float = 10.0
    close_timeout: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.source:
            raise ConfigError("source must be a non-empty URI reference, e.g. /my/model-server")
        if surrogates.has(self.source):
            raise ConfigError(f"source {surrogates.MESSAGE}")
        limit = get_settings().max_attribute_bytes
        if len(self.source.encode()) > limit:
            raise ConfigError(f"source must be at most {limit} bytes (MAX_ATTRIBUTE_BYTES)")
        for name in ("max_buffered", "max_reports_per_event", "max_event_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("flush_interval", "retry_initial", "retry_max", "timeout", "close_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be a positive number of seconds")


@dataclass(frozen=True)
class Counters:
    """A snapshot. Always `reported == sent + dropped + failed + pending`."""

    reported: int  # taken by report()
    sent: int  # in events the broker accepted (2xx)
    dropped: int  # pushed out of a full buffer, oldest first
    failed: int  # refused by the broker (a 4xx it does not retry), or unsent when close() gave up
    pending: int  # buffered or in flight
    events: int  # events the broker accepted
    retries: int  # attempts that failed and were tried again
    last_error: str | None = None


_PLAIN = (float, int)


def _plain_number(value: Any) -> Any:
    """numpy's scalars and the like as floats; anything else as is, for the parser to name."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _stamp(time: datetime | str | None, now: datetime, what: str) -> str:
    """A time as RFC 3339: the one given (a datetime with its timezone), else now."""
    if time is None:
        return timestamps.format(now)
    if isinstance(time, datetime):
        if time.tzinfo is None:
            raise BadInput(f"{what}.time", "a datetime needs a timezone, e.g. datetime.now(UTC)")
        return timestamps.format(time)
    return time


def encode_report(
    model: str,
    version: str,
    metrics: Mapping[str, Any],
    labels: Mapping[str, str] | None,
    time: datetime | str | None,
) -> bytes:
    """One report validated with ingest's own rules (BadInput naming `report.<field>`) and
    encoded as compact JSON. Without a time it is stamped now: a report sent after a broker
    outage keeps the moment it was made. Numbers that are not floats (numpy's) become floats."""
    now = timestamps.now()
    if not isinstance(metrics, Mapping):
        raise BadInput("report.metrics", "must be a mapping of metric names to numbers")
    raw: dict[str, Any] = {
        "model": model,
        "version": version,
        "time": _stamp(time, now, "report"),
        "metrics": {
            name: value if type(value) in _PLAIN else _plain_number(value)
            for name, value in metrics.items()
        },
    }
    if labels:
        raw["labels"] = dict(labels)
    surrogates.check(raw, "report")
    report = reports.parse_report(raw, "report", now, now, get_settings())
    return json.dumps(report.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


def _json_value(value: Any) -> Any:
    """A feature or prediction as JSON has it: numpy scalars as Python's, NaN as null."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy and the like
    if isinstance(value, float) and value != value:
        return None
    return value


def encode_record(
    model: str,
    row_id: str,
    features: Mapping[str, Any],
    prediction: Any,
    version: str | None = None,
    score: float | None = None,
    latency_ms: float | None = None,
    time: datetime | str | None = None,
) -> tuple[Envelope, bytes]:
    """One inference record validated with ingest's own rules (BadInput naming
    `record.<field>`), encoded, with the envelope of its model and version."""
    now = timestamps.now()
    if not isinstance(features, Mapping):
        raise BadInput("record.features", "must be a mapping of feature names to values")
    record: dict[str, Any] = {
        "id": row_id,
        "time": _stamp(time, now, "record"),
        "features": {name: _json_value(value) for name, value in features.items()},
        "prediction": _json_value(prediction),
    }
    if score is not None:
        record["score"] = _json_value(score)
    if latency_ms is not None:
        record["latency_ms"] = _json_value(latency_ms)
    data = {"model": model, "records": [record]}
    if version is not None:
        data["version"] = version
    try:
        inference.parse_records(data, now, now, get_settings(), field="record")
    except BadInput as error:
        field = error.field.replace("record.records[0]", "record", 1)
        raise BadInput(field, error.message) from None
    encoded = json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return records_envelope(model, version), encoded.encode()


def encode_label(
    model: str, row_id: str, value: Any, time: datetime | str | None = None
) -> tuple[Envelope, bytes]:
    """One label validated with ingest's own rules (BadInput naming `label.<field>`), encoded,
    with the envelope of its model."""
    now = timestamps.now()
    item = {
        "id": row_id,
        "label": _json_value(value),
        "time": _stamp(time, now, "label"),
    }
    try:
        labels.parse_labels({"model": model, "labels": [item]}, now, now, get_settings())
    except BadInput as error:
        raise BadInput(
            error.field.replace("data.labels[0]", "label", 1).replace("data.", "label.", 1),
            error.message,
        ) from None
    encoded = json.dumps(item, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return labels_envelope(model), encoded.encode()


@dataclass(frozen=True)
class Envelope:
    """What items travel in: the event type, and the JSON around the list of items. Items of
    one envelope are sent together (reports; the records of one model version; ...)."""

    type: str
    head: bytes
    tail: bytes = b"]}"

    def overhead(self) -> int:
        return len(self.head) + len(self.tail)


REPORTS = Envelope(METRIC_REPORTED, b'{"reports":[')


def records_envelope(model: str, version: str | None) -> Envelope:
    """`{"model", "version", "records": [...]}` of modelstats.inference.logged."""
    fields: dict[str, str] = {"model": model}
    if version is not None:
        fields["version"] = version
    head = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)[:-1] + ',"records":['
    return Envelope(INFERENCE_LOGGED, head.encode())


def labels_envelope(model: str) -> Envelope:
    """`{"model", "labels": [...]}` of modelstats.label.reported."""
    head = json.dumps({"model": model}, separators=(",", ":"), ensure_ascii=False)[:-1]
    return Envelope(LABEL_REPORTED, (head + ',"labels":[').encode())


@dataclass
class EncodedEvent:
    """One binary-mode CloudEvent, built once: a retry is the same event (same id), which
    ingest recognises as a redelivery."""

    id: str
    headers: dict[str, str]
    body: bytes
    envelope: Envelope
    items: list[bytes]
    attempts: int = 0


def build_event(source: str, envelope: Envelope, items: list[bytes]) -> EncodedEvent:
    body = envelope.head + b",".join(items) + envelope.tail
    attributes = {"type": envelope.type, "source": source, "datacontenttype": "application/json"}
    # The SDK gives the event a fresh id (a UUID) and the current time.
    event = CloudEvent(attributes, body)
    headers, payload = cloudevents.binary_response(event)
    return EncodedEvent(str(event["id"]), headers, payload, envelope, items)


def _reason(body: str) -> str:
    """What the broker said, short: ingest's `{"field", "message"}` or the first of the text."""
    try:
        document = json.loads(body)
    except ValueError:
        return body.strip()[:300] or "no reason given"
    if isinstance(document, dict) and "message" in document:
        where = document.get("field")
        return f"{where}: {document['message']}" if where else str(document["message"])
    return body.strip()[:300]


class Batcher:
    """The bounded buffer and the counters, shared by the sending side and report()."""

    def __init__(self, options: ReporterOptions):
        self.options = options
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[tuple[Envelope, bytes]] = deque()
        self._head = 0  # sequence number of _queue[0]
        self._next = 0  # sequence number of the next report
        self._in_flight: dict[int, int] = {}  # first sequence number -> reports
        self._closed = False
        self._sent = self._dropped = self._failed = self._events = self._retries = 0
        self._last_error: str | None = None
        self._warned: set[str] = set()
        self.lost_at_close = 0

    def add(self, item: bytes, envelope: Envelope = REPORTS) -> bool:
        """Buffer one encoded item; True when a full event is waiting (wake the sender)."""
        with self._lock:
            if self._closed:
                raise ReporterClosed("the reporter is closed: report() takes nothing more")
            self._queue.append((envelope, item))
            self._next += 1
            if len(self._queue) > self.options.max_buffered:
                self._queue.popleft()
                self._head += 1
                self._dropped += 1
                self._warn_once(
                    "full",
                    f"buffer full ({self.options.max_buffered} reports): dropping the oldest;"
                    " is the broker reachable? (raise max_buffered to hold more)",
                )
                self._changed.notify_all()
            return len(self._queue) >= self.options.max_reports_per_event

    def take(self) -> BatchDelivery | None:
        """The next batch from the front of the buffer (bounded by count and bytes), or None."""
        limit, budget = self.options.max_reports_per_event, self.options.max_event_bytes
        with self._lock:
            if not self._queue:
                return None
            # The run of items at the front that share an envelope: sequence numbers stay
            # contiguous per batch, which is what flush() counts on.
            envelope = self._queue[0][0]
            items: list[bytes] = []
            size = envelope.overhead()
            while self._queue and len(items) < limit and self._queue[0][0] == envelope:
                item = self._queue[0][1]
                if items and size + len(item) + 1 > budget:
                    break
                self._queue.popleft()
                items.append(item)
                size += len(item) + 1
            first = self._head
            self._head += len(items)
            self._in_flight[first] = len(items)
        return BatchDelivery(self, first, [build_event(self.options.source, envelope, items)])

    def mark(self) -> int:
        """A flush's mark: everything reported so far."""
        with self._lock:
            return self._next

    def settled(self, mark: int) -> bool:
        with self._lock:
            return self._settled(mark)

    def _settled(self, mark: int) -> bool:
        return self._head >= mark and all(first >= mark for first in self._in_flight)

    def wait_settled(self, mark: int, timeout: float | None) -> bool:
        """Block until every report before `mark` is sent, dropped or failed (bounded)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not self._settled(mark):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def abandon(self) -> None:
        """At the end of close(): what is still buffered counts as failed."""
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
            self._head = self._next
            self._changed.notify_all()
        if left:
            self._fail(left, NOT_SENT_AT_CLOSE, at_close=True)

    def counters(self) -> Counters:
        with self._lock:
            pending = len(self._queue) + sum(self._in_flight.values())
            return Counters(
                reported=self._next,
                sent=self._sent,
                dropped=self._dropped,
                failed=self._failed,
                pending=pending,
                events=self._events,
                retries=self._retries,
                last_error=self._last_error,
            )

    # -- called by deliveries ---------------------------------------------------------------

    def _delivered(self, count: int, after_retries: bool) -> None:
        with self._lock:
            self._sent += count
            self._events += 1
        if after_retries:
            log.info("modelstats reporter: the broker accepts events again")

    def _retried(self, reason: str) -> None:
        with self._lock:
            self._retries += 1
            self._last_error = reason
        self._warn_once("retry:" + reason.split(":", 1)[0], f"retrying: {reason}")

    def _fail(self, count: int, reason: str, at_close: bool = False) -> None:
        with self._lock:
            self._failed += count
            self._last_error = reason
            self.lost_at_close += count if at_close else 0
        self._warn_once("fail:" + reason.split(":", 1)[0], f"{count} report(s) lost: {reason}")

    def _finished(self, first: int) -> None:
        with self._changed:
            self._in_flight.pop(first, None)
            self._changed.notify_all()

    def _warn_once(self, key: str, message: str) -> None:
        """The first of each kind at WARNING, the rest at DEBUG: a model server's log must not
        fill with one line per event while the broker is down."""
        first = key not in self._warned
        self._warned.add(key)
        log.log(logging.WARNING if first else logging.DEBUG, "modelstats reporter: %s", message)


@dataclass(frozen=True)
class SendAttempt:
    event: EncodedEvent
    wait: float  # seconds to sleep first
    timeout: float  # for the request


class BatchDelivery:
    """The attempts to deliver one batch: usually one event, several if the broker finds it
    too large (413: split in two, each half a new event). The sender asks `next_attempt()`,
    posts, and reports the answer with `answered()` or `unreachable()`."""

    def __init__(self, batcher: Batcher, first: int, events: list[EncodedEvent]):
        self.batcher = batcher
        self.options = batcher.options
        self.first = first
        self.events = events  # a stack: the last is sent next
        self.wait = 0.0

    def next_attempt(self, deadline: float | None) -> SendAttempt | None:
        """None when done; at the close deadline, what is left counts as failed."""
        if not self.events:
            return None
        timeout = self.options.timeout
        wait = self.wait
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                self.give_up()
                return None
            # One last attempt at the deadline, whose timeout may run a second past it.
            wait = min(wait, left)
            timeout = max(1.0, min(timeout, left - wait))
        return SendAttempt(self.events[-1], wait, timeout)

    def answered(self, status: int, retry_after: str | None, body: str) -> None:
        event = self.events[-1]
        if 200 <= status < 300:
            self.events.pop()
            self.wait = 0.0
            self.batcher._delivered(len(event.items), event.attempts > 0)
        elif contract.is_retried(status):
            self._retry(event, f"HTTP {status} from the broker: {_reason(body)}", retry_after)
        elif status == 413 and len(event.items) > 1:
            self.events.pop()
            half = len(event.items) // 2
            source = self.options.source
            self.events += [
                build_event(source, event.envelope, event.items[half:]),
                build_event(source, event.envelope, event.items[:half]),
            ]
        else:
            self.events.pop()
            self.batcher._fail(len(event.items), f"HTTP {status}, refused: {_reason(body)}")
        self._finish_if_done()

    def unreachable(self, error: Exception) -> None:
        self._retry(self.events[-1], f"broker unreachable: {type(error).__name__}: {error}", None)

    def give_up(self) -> None:
        """The close deadline has passed: what is left of the batch is lost."""
        for event in self.events:
            self.batcher._fail(len(event.items), NOT_SENT_AT_CLOSE, at_close=True)
        self.events.clear()
        self._finish_if_done()

    def _retry(self, event: EncodedEvent, reason: str, retry_after: str | None) -> None:
        # Exponential backoff with full jitter: senders that failed together spread out.
        ceiling = min(self.options.retry_max, self.options.retry_initial * 2**event.attempts)
        self.wait = random.uniform(0, ceiling)
        asked = timestamps.retry_after_seconds(retry_after)
        if asked is not None:
            self.wait = max(self.wait, min(asked, self.options.retry_after_max))
        event.attempts += 1
        self.batcher._retried(reason)

    def _finish_if_done(self) -> None:
        if not self.events:
            self.batcher._finished(self.first)
