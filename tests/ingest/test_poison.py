"""One bad event costs only itself: what validation refuses, and what the store refuses when
validation let it through (the second line: group commit narrows a failed batch down)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput
from modelstats.core.reports import Report
from modelstats.ingest import ingestor
from modelstats.store import db
from tests.cloudevents_http import binary, structured
from tests.functions import function_process
from tests.stacks import poll, running_stack

SOURCE = "functions/ingest/main.py"

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


# --- hostile events against the ingest process (docs/hostile-inputs.md) ---------------------

POISON = "poison\ud800"
OK = {"model": "m", "version": "v1", "metrics": {"drift": 0.1}}
WIDE = "\U0001f600" * 200  # 800 bytes in UTF-8, 200 characters: within each name's limit

# (what, request, the field the 400 names)
HOSTILE: list[tuple[str, tuple[dict[str, str], bytes], str]] = [
    ("surrogate in a report's model", binary({**OK, "model": POISON}), "data.model"),
    (
        "surrogate in a label value of the third report",
        binary({"reports": [OK, OK, {**OK, "labels": {"env": POISON}}]}),
        "data.reports[2].labels.env",
    ),
    (
        "surrogate in a metric name",
        binary({**OK, "metrics": {POISON: 1.0}}),
        "data.metrics.poison\\ud800",
    ),
    (
        "surrogate in a label name",
        binary({**OK, "labels": {POISON: "x"}}),
        "data.labels.poison\\ud800",
    ),
    ("surrogate in the structured-mode id", structured(OK, id=POISON), "id"),
    ("surrogate in the structured-mode source", structured(OK, source=POISON), "source"),
    ("surrogate in an extension value", structured(OK, tenant=POISON), "tenant"),
    ("surrogate in an extension name", structured(OK, **{"t\udc00": "x"}), "t\\udc00"),
    ("percent-encoded bytes that are not UTF-8", binary(OK, source="/s%ED%A0%80"), "source"),
    ("NUL in the id", binary(OK, id="a%00b"), "id"),
    ("NUL in a label value", binary({**OK, "labels": {"env": "a\x00b"}}), "data.labels.env"),
    ("a 6 KB id", binary(OK, id="i" * 6000), "id"),
    ("a 4.8 KB source", binary(OK, source="/" + "s" * 4800), "source"),
    ("a 1.1 KB extension value", binary(OK, tenant="t" * 1100), "tenant"),
    ("a 1.1 KB type", binary(OK, type="t" * 1100), "type"),
    (
        "a series over 2,000 bytes (names and labels)",
        binary({**OK, "model": WIDE, "version": WIDE, "labels": {"env": WIDE}}),
        "data.labels",
    ),
]


@pytest.mark.slow
def test_each_hostile_event_is_a_400_naming_its_field_and_costs_no_neighbour(clean_db):
    output: list[str] = []
    with (
        function_process("ingest", SOURCE, clean_db, output=output) as url,
        httpx.Client(base_url=url, timeout=30) as client,
        ThreadPoolExecutor(8) as pool,
    ):

        def post(request: tuple[dict[str, str], bytes]) -> httpx.Response:
            headers, body = request
            return client.post("/", headers=headers, content=body)

        before = len(output)
        for n, (what, request, field) in enumerate(HOSTILE):
            valid = [binary(OK, id=f"ok-{n}-{i}", source="/valid") for i in range(20)]
            answers = list(pool.map(post, [*valid[:10], request, *valid[10:]]))
            refused = answers[10]
            assert refused.status_code == 400, (what, refused.text)
            assert refused.json()["field"] == field, what
            assert [a.status_code for a in answers[:10] + answers[11:]] == [200] * 20, what
        said = output[before:]
    assert _stored_ids_from(clean_db, "/valid") == 20 * len(HOSTILE)
    assert not [line for line in said if "Traceback" in line or "Error" in line.split(":")[0]]
    # One line per refused event (the INFO line naming it), nothing for the neighbours.
    assert len([line for line in said if "rejected event" in line]) == len(HOSTILE)
    assert len(said) < 2 * len(HOSTILE), "\n".join(said)


def _stored_ids_from(url: str, source: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM ingest_events WHERE source = %s", (source,))
        return int(row.fetchone()[0])


# --- poison among load, through `modelstats run` ------------------------------------------

LOAD_SECONDS = 10
POISON_PER_SECOND = 4


def _post_for(
    ingress: str, seconds: float, make: Callable[[int], tuple[dict, bytes]], pause: float
):
    """Post events made by `make(n)` for `seconds`; the numbers of those the broker accepted."""
    accepted: list[int] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=30) as client:
        n = 0
        while time.monotonic() < deadline:
            headers, body = make(n)
            if client.post(ingress, headers=headers, content=body).status_code == 202:
                accepted.append(n)
            n += 1
            time.sleep(pause)
    return accepted


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_poison_among_load_through_the_stack_costs_only_itself(clean_db, tmp_path):
    """The issue's load (issue 22): 4 poison events a second among a few hundred valid ones.
    Before, each poison failed its whole batch (500, retried): valid events were dead-lettered
    and ingest's log grew by tracebacks. Now: every valid event stored, only the poison in the
    dead letters, a few log lines per poison event."""
    with running_stack(tmp_path, env={"DATABASE_URL": clean_db}, ping_every="1h") as stack:
        before = len(stack.lines)

        def valid(worker: int) -> Callable[[int], tuple[dict, bytes]]:
            return lambda n: binary(OK, id=f"v{worker}-{n}", source="/load/valid")

        def poison(n: int) -> tuple[dict, bytes]:
            data = {**OK, "labels": {"env": POISON}} if n % 2 else {**OK, "model": POISON}
            make = structured if n % 4 < 2 else binary  # the broker takes both modes
            return make(data, id=f"p-{n}", source="/load/poison")

        with ThreadPoolExecutor(9) as pool:
            valid_runs = [
                pool.submit(_post_for, stack.ingress, LOAD_SECONDS, valid(w), 0.02)
                for w in range(8)
            ]
            poison_run = pool.submit(
                _post_for, stack.ingress, LOAD_SECONDS, poison, 1 / POISON_PER_SECOND
            )
            sent_valid = sum(len(run.result()) for run in valid_runs)
            sent_poison = len(poison_run.result())
        assert sent_poison >= POISON_PER_SECOND * LOAD_SECONDS * 0.8
        rate = sent_valid / LOAD_SECONDS
        assert rate > 100, f"only {rate:.0f} valid events/s accepted"

        def settled() -> bool:
            return _stored_ids_from(clean_db, "/load/valid") == sent_valid and (
                _dead_letter_count(clean_db) == sent_poison
            )

        poll(settled, 60, "every valid event stored and every poison dead-lettered")
        said = stack.lines[before:]
    assert _dead_letter_sources(clean_db) == {"/load/poison"}
    assert not [line for _, line in said if "Traceback" in line]
    per_poison = len(said) / sent_poison
    print(f"{rate:.0f} valid/s accepted, {sent_poison} poison, {per_poison:.1f} lines each")
    assert per_poison < 10, "\n".join(line for _, line in said[-50:])


def _dead_letter_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])


def _dead_letter_sources(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT event_source FROM dead_letters")}
