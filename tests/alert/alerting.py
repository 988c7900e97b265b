"""Helpers for the alert tests: rules files, stored events, and the alert function's setup."""

from __future__ import annotations

import asyncio
import json
import textwrap
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from modelstats.alert import evaluation, outbox, rulebook, schedule
from modelstats.alert.claims import Verdict
from modelstats.core import cloudevents, contract, timestamps
from modelstats.store import db
from tests import configuration
from tests.clients import function_client

STORED = contract.METRIC_STORED
ALERT_SOURCE = "functions/alert/main.py"
INGEST_SOURCE = "functions/ingest/main.py"
SCHEDULE = contract.ping_source("modelstats", "alert-schedule")
# Sample times: an hour ago, so that `for` and windows have room on both sides.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

LOW_ACCURACY = """
rules:
  - name: LowPredictionAccuracy
    metric: prediction_accuracy
    op: "<"
    threshold: 0.3
"""


def evaluate(headers: dict[str, str], body: bytes, now: datetime | None = None) -> Verdict:
    """Evaluate one stored event in this process (its own event loop and async pool)."""
    return _in_a_loop(evaluation.evaluate(cloudevents.parse(headers, body), now=now))


def tick(now: datetime, id: str | None = None) -> Verdict:
    """Evaluate one tick of the alert function's schedule at `now`, in this process."""
    headers, body = ping(id)
    return _in_a_loop(schedule.tick(cloudevents.parse(headers, body), now=now))


def _in_a_loop(evaluating: Coroutine[Any, Any, Verdict]) -> Verdict:
    async def run() -> Verdict:
        try:
            return await evaluating
        finally:
            await db.close_async_pool()

    return asyncio.run(run())


def ping(id: str | None = None) -> tuple[dict[str, str], bytes]:
    """A tick of the `alert-schedule` PingSource, as Knative's adapter sends it."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": id or uuid.uuid4().hex,
        "ce-source": SCHEDULE,
        "ce-type": contract.PING,
        "content-type": "application/json",
    }
    return headers, b"{}"


def at(seconds: float) -> str:
    """The RFC 3339 time `seconds` after T0."""
    return timestamps.format(T0 + timedelta(seconds=seconds))


def report(
    value: float | None = None,
    seconds: float = 0,
    model: str = "Mistral",
    version: str = "v1",
    metrics: dict[str, float] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A report as ingest replies it (time and labels always present)."""
    if metrics is None:
        metrics = {"prediction_accuracy": 0.19 if value is None else value, "drift": 0.11}
    return {
        "model": model,
        "version": version,
        "time": at(seconds),
        "metrics": metrics,
        "labels": labels or {},
    }


def stored(
    *reports: dict[str, Any], id: str | None = None, source: str = "/modelstats/ingest"
) -> tuple[dict[str, str], bytes]:
    """A binary-mode `modelstats.metric.stored` event as ingest replies it."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": id or uuid.uuid4().hex,
        "ce-source": source,
        "ce-type": STORED,
        "content-type": "application/json",
    }
    return headers, json.dumps({"reports": list(reports)}).encode()


def write_rules(directory: Path, text: str) -> Path:
    path = directory / f"rules-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def configure(monkeypatch: pytest.MonkeyPatch, **env: str | None) -> None:
    """Settings as if these variables were set (None: unset), and the rules read again."""
    configuration.configure(**env)
    rulebook.reset()


@contextmanager
def alert_function(
    monkeypatch: pytest.MonkeyPatch,
    rules_path: Path,
    webhook: str | None = None,
    slack: str | None = None,
    **env: str,
) -> Iterator[Any]:
    """The alert function's test client; its outbox senders are stopped afterwards."""
    configure(
        monkeypatch,
        ALERT_RULES_FILE=str(rules_path),
        ALERT_WEBHOOK_URL=webhook,
        SLACK_WEBHOOK_URL=slack,
        ALERT_RETRY_INITIAL_MS=env.pop("ALERT_RETRY_INITIAL_MS", "50"),
        ALERT_POLL_INTERVAL_MS=env.pop("ALERT_POLL_INTERVAL_MS", "200"),
        **env,
    )
    try:
        with function_client("alert", ALERT_SOURCE) as client:
            yield client
    finally:
        outbox.shutdown()
        rulebook.reset()


def rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def undelivered(url: str) -> int:
    return int(
        rows(url, "SELECT count(*) FROM alert_notifications WHERE delivered_at IS NULL")[0][0]
    )
