"""One bad event costs only itself: what validation refuses, and what the store refuses when
validation let it through (the second line: group commit narrows a failed batch down)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import psycopg

from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput
from modelstats.core.reports import Report
from modelstats.ingest import ingestor
from modelstats.store import db

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def _report(model: str = "m", labels: dict[str, str] | None = None) -> Report:
    return Report(model, "v1", NOW, {"drift": 0.1}, labels or {})


_RNG = random.Random(7)


def _incompressible(chars: int) -> str:
    rng = _RNG
    return "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(chars))  # 3 bytes each


def _store_together(deliveries: list[tuple[str, Report]]) -> list[object]:
    """Store events in one batch, bypassing validation, as a gap in it would let them in."""

    async def run() -> list[object]:
        writer = ingestor.Ingestor(writers=1)
        try:
            return await asyncio.gather(
                *(
                    writer.store(Event(id=name, source="/poison", type="t"), [report], NOW)
                    for name, report in deliveries
                ),
                return_exceptions=True,
            )
        finally:
            await db.close_async_pool()

    return asyncio.run(run())


def _stored_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM ingest_events ORDER BY id")]


def test_values_the_store_refuses_fail_their_own_event_and_no_other(clean_db):
    wide = {f"k{i}": _incompressible(200) for i in range(5)}  # 3,000 bytes of labels
    deliveries = [(f"ok-{i:02d}", _report(labels={"n": str(i)})) for i in range(30)]
    deliveries.insert(7, ("surrogate", _report(model="poison\ud800")))
    deliveries.insert(20, ("index-row", _report(labels=wide)))
    answers = dict(zip([name for name, _ in deliveries], _store_together(deliveries), strict=True))
    for name in ("surrogate", "index-row"):
        assert isinstance(answers[name], BadInput), answers[name]
        assert answers[name].field == "data"
    assert "index row" in str(answers["index-row"])  # PostgreSQL's own words (program limit)
    assert _stored_ids(clean_db) == [f"ok-{i:02d}" for i in range(30)]
    assert all(not isinstance(answers[f"ok-{i:02d}"], Exception) for i in range(30))
