"""Alert rules through `modelstats run` (broker, ingest, alert and its PingSource, PostgreSQL),
with time passing for real: the example model server's traffic, and series that stop.

The stack runs the shipped rules plus a few of their own: the first version's per-sample rule on
the example's model (to show the flapping the shipped window rule avoids), and rules counted in
seconds on `quiet-*` models, ticked every second (`--ping-every 1s`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from modelstats.core import timestamps
from tests.model_servers import example_server
from tests.receivers import Receiver, Reply
from tests.stacks import Stack, poll, running_stack

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "infra" / "knative" / "rules" / "alert-rules.yaml"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

OWN_RULES = """
  - name: LowPredictionAccuracySample
    metric: prediction_accuracy
    op: "<"
    threshold: 0.3
    match: {model: fraud-detector}
  - name: QuietLow
    metric: prediction_accuracy
    op: "<"
    threshold: 0.3
    match: {model: "quiet-*"}
    stale_after: 4s
    repeat_interval: 1s
  - name: QuietSilent
    absent_for: 3s
    seen_within: 1h
    match: {model: "quiet-*"}
"""


@pytest.fixture(scope="module")
def webhook() -> Iterator[Receiver]:
    with Receiver(default=Reply(200)) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, webhook: Receiver) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("alert-stack")
    rules = directory / "rules.yaml"
    rules.write_text(SHIPPED.read_text() + OWN_RULES)
    env = {"ALERT_RULES_FILE": str(rules), "ALERT_WEBHOOK_URL": webhook.url}
    with running_stack(directory, env=env, ping_every="1s", args=["--no-demo"]) as running:
        yield running


def transitions(stack: Stack, rule: str) -> list[tuple[str, datetime]]:
    with psycopg.connect(stack.state.database_url) as conn:
        found = conn.execute(
            "SELECT kind, at FROM alert_transitions WHERE rule = %s ORDER BY id", (rule,)
        ).fetchall()
    return [(str(kind), at) for kind, at in found]


def sent(webhook: Receiver, rule: str) -> list[dict[str, Any]]:
    """The webhook messages of one rule, in arrival order."""
    messages = [request.json() for request in list(webhook.requests)]
    return [m for m in messages if m["commonLabels"]["alertname"] == rule]


def predictions(count: int, wrong: float, seed: int) -> list[dict[str, Any]]:
    """Requests to the example server whose answers are wrong in `wrong` of the cases: a small
    amount is predicted honest, so labelling it fraud makes the prediction wrong."""
    wrongs = round(count * wrong)
    truths = [True] * wrongs + [False] * (count - wrongs)
    random.Random(seed).shuffle(truths)
    return [{"amount": 100.0, "fraud": fraud} for fraud in truths]


def test_the_example_servers_traffic_does_not_flap_the_shipped_rule(stack: Stack) -> None:
    with example_server(stack.ingress, env="flapping") as url, httpx.Client(timeout=5) as client:
        for body in predictions(100, wrong=0.3, seed=24):
            assert client.post(f"{url}/predict", json=body).is_success

    # Every sample reached the alert function: the per-sample rule judged the last one.
    def judged() -> int:
        with psycopg.connect(stack.state.database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM metric_samples WHERE model = 'fraud-detector'"
                " AND metric = 'prediction_accuracy' AND time <= ("
                "  SELECT max(last_eval_at) FROM alert_states"
                "  WHERE rule = 'LowPredictionAccuracySample')"
            ).fetchone()
        return int(row[0]) if row else 0

    poll(lambda: judged() == 100, timeout=60, what="100 samples judged by the per-sample rule")
    time.sleep(2)  # and whatever the schedule would add
    # The same traffic, judged sample by sample, fires and resolves again and again...
    flapping = transitions(stack, "LowPredictionAccuracySample")
    assert len(flapping) >= 10, flapping
    # ...while the shipped rule judged the window (5 samples and more: it has a state) and said
    # nothing: at most one notification per repeat interval (4h), and here none at all.
    with psycopg.connect(stack.state.database_url) as conn:
        evaluated = conn.execute(
            "SELECT count(*) FROM alert_states WHERE rule = 'LowPredictionAccuracy'"
            " AND last_eval_at IS NOT NULL"
        ).fetchone()
    assert evaluated == (1,)
    shipped = [kind for kind, _ in transitions(stack, "LowPredictionAccuracy")]
    assert len([kind for kind in shipped if kind in ("firing", "repeat", "resolved")]) <= 1


def test_a_series_that_stops_repeats_then_resolves_and_its_silence_fires(
    stack: Stack, webhook: Receiver
) -> None:
    sampled = datetime.now(UTC).replace(microsecond=0)
    stack.post(
        {
            "model": "quiet-a",
            "version": "v1",
            "time": timestamps.format(sampled),
            "metrics": {"prediction_accuracy": 0.1},
        }
    )
    # Fired on arrival, repeated on the ticks while the series is fresh, resolved when stale.
    poll(
        lambda: any(m["status"] == "resolved" for m in sent(webhook, "QuietLow")),
        timeout=30,
        what="QuietLow resolved once its series went stale",
    )
    statuses = [m["status"] for m in sent(webhook, "QuietLow")]
    assert statuses[0] == "firing" and statuses[-1] == "resolved", statuses
    assert statuses.count("firing") >= 2  # the first, then at least one repeat
    (resolved,) = [m["alerts"][0] for m in sent(webhook, "QuietLow") if m["status"] == "resolved"]
    assert resolved["endsAt"] == timestamps.format(sampled + timedelta(seconds=4))
    assert "went stale" in resolved["annotations"]["description"]
    assert [kind for kind, _ in transitions(stack, "QuietLow")][-1] == "resolved"

    # Silent for 3 seconds: QuietSilent fires on a tick, and resolves once a sample comes.
    poll(lambda: sent(webhook, "QuietSilent"), timeout=30, what="QuietSilent firing")
    (silent,) = sent(webhook, "QuietSilent")
    assert silent["status"] == "firing"
    assert silent["commonLabels"] == {
        "alertname": "QuietSilent",
        "model": "quiet-a",
        "severity": "warning",
    }
    assert silent["commonAnnotations"]["summary"] == "quiet-a has sent no sample for 3s"
    stack.post({"model": "quiet-a", "version": "v2", "metrics": {"prediction_accuracy": 0.9}})
    poll(
        lambda: [m["status"] for m in sent(webhook, "QuietSilent")][:2] == ["firing", "resolved"],
        timeout=30,
        what="QuietSilent resolved once quiet-a reported again",
    )
