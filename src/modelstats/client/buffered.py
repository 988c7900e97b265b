"""What both reporters share on the model server's side (see `BufferedReports`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modelstats.client.core import (
    REPORTS,
    Batcher,
    Counters,
    Envelope,
    encode_label,
    encode_record,
    encode_report,
)


class BufferedReports:
    """The model server's side, the same for both reporters: report() validates, encodes and
    buffers, never touching the network. The sending side is each reporter's own: it starts
    its sender on first use (`_ensure_started`) and wakes it when a batch is full (`_poke`)."""

    _batcher: Batcher

    def report(
        self,
        model: str,
        version: str,
        metrics: Mapping[str, float],
        labels: Mapping[str, str] | None = None,
        time: datetime | str | None = None,
    ) -> None:
        """Buffer one report (BadInput, naming the field, if ingest would refuse it)."""
        self._buffer(REPORTS, encode_report(model, version, metrics, labels, time))

    def log_inference(
        self,
        model: str,
        id: str,
        features: Mapping[str, Any],
        prediction: Any,
        *,
        version: str | None = None,
        score: float | None = None,
        latency_ms: float | None = None,
        time: datetime | str | None = None,
    ) -> None:
        """Buffer one inference record (a `modelstats.inference.logged` row): its `id` is how a
        label finds it later. BadInput, naming the field, if ingest would refuse it."""
        self._buffer(
            *encode_record(model, id, features, prediction, version, score, latency_ms, time)
        )

    def label(self, model: str, id: str, label: Any, *, time: datetime | str | None = None) -> None:
        """Buffer one label: the truth about the logged row `id` of `model` (its event id for
        a one-row request, `<event id>:<i>` for row i of a batch, a record's id), learnt at
        `time` (default now). Labels of one model travel together, up to
        `max_reports_per_event` in an event. BadInput, naming the field, if ingest would refuse
        it."""
        self._buffer(*encode_label(model, id, label, time))

    def _buffer(self, envelope: Envelope, item: bytes) -> None:
        full = self._batcher.add(item, envelope)
        self._ensure_started()
        if full:
            self._poke()

    @property
    def counters(self) -> Counters:
        return self._batcher.counters()

    def _ensure_started(self) -> None:
        raise NotImplementedError

    def _poke(self) -> None:
        raise NotImplementedError
