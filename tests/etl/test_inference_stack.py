"""Logged inference through `modelstats run`: KServe's and Seldon's logger events and the
reporter's records go broker -> ingest, the etl's inference job profiles their window on its
tick, and the figures come back from the stats API equal to numpy's on the same rows."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import numpy as np
import psycopg
import pytest

from modelstats.client import Reporter
from modelstats.core import timestamps
from modelstats.etl.windows import start_of
from tests.loggers import kserve_headers, seldon_headers, seldon_message, v2_request, v2_response
from tests.stacks import poll, running_stack

pytestmark = pytest.mark.slow


def post(stack, headers: dict[str, str], body: bytes) -> None:
    answer = httpx.post(stack.ingress, headers=headers, content=body, timeout=10)
    assert answer.status_code == 202, answer.text


def metric(stack, model: str, version: str, name: str, **labels: str) -> dict | None:
    params = {"metric": name, "since": "2h", "label.source": "inference"}
    params.update({f"label.{k}": v for k, v in labels.items()})
    answer = httpx.get(f"{stack.stats}/stats/{model}/{version}", params=params, timeout=10)
    if answer.status_code != 200:
        return None
    return answer.json()["metrics"].get(name)


def stored_rows(stack) -> int:
    with psycopg.connect(stack.state.database_url) as conn:
        (rows,) = conn.execute("SELECT coalesce(sum(rows), 0) FROM inference_blocks").fetchone()
    return int(rows)


def test_logged_traffic_becomes_window_profiles_in_the_stats(tmp_path) -> None:
    rng = np.random.default_rng(3)
    # Half an hour ago: the window is closed already, so the next tick profiles it.
    window = start_of(timestamps.now() - timedelta(minutes=30), timedelta(minutes=5))
    at = window + timedelta(seconds=30)
    amounts: list[float] = []
    # Every row must be in before the window is profiled: ticks only when the test sends one.
    with running_stack(tmp_path, ping_every="1h") as stack:
        for i in range(12):
            rows = 3 if i % 4 == 0 else 1
            amount = rng.gamma(2.0, 50.0, rows)
            amounts.extend(amount)
            call = f"call-{uuid.uuid4()}"
            inputs = {"amount": amount, "age": rng.integers(18, 90, rows).astype(float)}
            post(stack, kserve_headers("request", call, "fraud", at), v2_request(inputs))
            if i != 7:  # one response lost
                probabilities = rng.random((rows, 2))
                body = v2_response({"p": probabilities}, version="v3")
                post(stack, kserve_headers("response", call, "fraud", at), body)
            if i == 0:  # a redelivered request counts once
                post(stack, kserve_headers("request", call, "fraud", at), v2_request(inputs))
        seldon = seldon_headers("request", "puid-1", "iris", at)
        post(stack, seldon, seldon_message([[5.1, 3.5], [6.2, 2.9]], ["sl", "sw"]))
        with Reporter(stack.ingress, source="/tests/records") as reporter:
            for i in range(4):
                reporter.log_inference(
                    "churn", f"r{i}", {"tenure": i * 10}, "stay", version="v1", time=at
                )
            assert reporter.flush(timeout=20)

        # Requests and responses of fraud (18 + 17 rows), iris (2), churn (4).
        poll(lambda: stored_rows(stack) == 41, 30, "every logged row stored")
        stack.tick_inference_settled()
        rows = poll(lambda: metric(stack, "fraud", "v3", "rows"), 30, "fraud's profile")
        # The call whose response was lost counts under v3 too: the version its endpoint's
        # other responses name.
        assert rows["last_value"] == len(amounts)
        mean = metric(stack, "fraud", "v3", "feature_mean", feature="amount")
        assert mean is not None and abs(mean["last_value"] - float(np.mean(amounts))) < 1e-9
        missing = metric(stack, "fraud", "v3", "responses_missing")
        assert missing is not None and missing["last_value"] == 1
        iris = poll(lambda: metric(stack, "iris", "default", "rows"), 30, "iris' profile")
        assert iris["last_value"] == 2
        churn = poll(lambda: metric(stack, "churn", "v1", "rows"), 30, "churn's profile")
        assert churn["last_value"] == 4
        series = httpx.get(
            f"{stack.stats}/stats/fraud/v3",
            params={"metric": "rows", "since": "2h", "label.source": "inference"},
            timeout=10,
        ).json()
        assert series["metrics"]["rows"]["first"] == timestamps.format(window)
