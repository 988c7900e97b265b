"""Labels stored: the truth about logged rows, kept once per event and latest per row.

`modelstats.label.reported` events (core/labels.py) are kept through group commit like logged
traffic (arrivals.py); a label replaces an earlier one of the same model and row id when it was
learnt at the same time or later. Nothing is replied (204): the etl's inference job joins the
labels to their rows' predictions and figures the windows again.
"""

from __future__ import annotations

import math
from typing import Any

import psycopg

from modelstats.core import metrics, timestamps
from modelstats.core.cloudevents import Event
from modelstats.core.holder import Holder
from modelstats.core.labels import Labels, parse_labels
from modelstats.core.settings import get_settings
from modelstats.ingest.arrivals import Arrival, ArrivalStore
from modelstats.store import queries


class LabelStore(ArrivalStore[Labels]):
    async def prepare(
        self, conn: psycopg.AsyncConnection[Any], arrivals: list[Arrival[Labels]]
    ) -> None:
        """The labels' models are registered as logged rows' are: the job cleans up per model."""
        await self.register_models(conn, {arrival.content.model for arrival in arrivals})

    async def keep(self, conn: psycopg.AsyncConnection[Any], new: list[Arrival[Labels]]) -> None:
        latest: dict[tuple[str, str], tuple[str, float | None, Any]] = {}
        for arrival in new:
            labels = arrival.content
            for row_id, text, value, moment in zip(
                labels.ids, labels.texts, labels.values, labels.times, strict=True
            ):
                key = (labels.model, row_id)
                known = latest.get(key)
                if known is None or moment >= known[2]:
                    latest[key] = (text, None if math.isnan(value) else value, moment)
        if not latest:
            return
        keys = sorted(latest)
        await conn.execute(
            queries.get("inference", "upsert_labels"),
            (
                [model for model, _ in keys],
                [row_id for _, row_id in keys],
                [latest[key][0] for key in keys],
                [latest[key][1] for key in keys],
                [latest[key][2] for key in keys],
            ),
        )
        metrics.INGEST_LABELS.inc(sum(arrival.size for arrival in new))


_stores: Holder[LabelStore] = Holder(LabelStore, per_loop=True)


async def store(event: Event) -> bool:
    """Read and store one label event; False for a redelivery (nothing stored again)."""
    received_at = timestamps.now()
    labels = parse_labels(event.data, event.time or received_at, received_at, get_settings())
    return await _stores.get().store(event, labels, received_at, len(labels.ids))
