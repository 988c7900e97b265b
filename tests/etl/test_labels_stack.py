"""Labels through `modelstats run`: labels before and after their rows, twice, for rows that
never were; each tick replaces the window's accuracy, which /stats counts once and the alert
rules judge again (LowAccuracy fires once the late labels bring the accuracy down)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from modelstats.client import Reporter
from modelstats.core import timestamps
from modelstats.etl.windows import start_of
from tests.stacks import poll, running_stack

pytestmark = pytest.mark.slow


def accuracy(stack) -> dict | None:
    params = {
        "metric": "prediction_accuracy,label_coverage",
        "since": "2h",
        "label.source": "inference",
    }
    answer = httpx.get(f"{stack.stats}/stats/fraud/v1", params=params, timeout=10)
    return answer.json()["metrics"] if answer.status_code == 200 else None


def firing(stack) -> list[str]:
    answer = httpx.get(f"{stack.stats}/alerts", params={"state": "firing", "model": "fraud"})
    return [alert["rule"] for alert in answer.json()["alerts"]]


def test_late_labels_replace_a_window_s_accuracy_and_fire_its_alert(tmp_path) -> None:
    window = start_of(timestamps.now() - timedelta(minutes=30), timedelta(minutes=5))
    at = window + timedelta(seconds=20)
    ids = [f"row-{i}" for i in range(40)]
    with running_stack(tmp_path, ping_every="1h") as stack:
        with Reporter(stack.ingress, source="/tests/labels") as reporter:
            # Half the labels come before their rows, all right; and one for a row never logged.
            for row_id in ids[:20]:
                reporter.label("fraud", row_id, 1, time=at + timedelta(minutes=1))
            reporter.label("fraud", "never-logged", 0)
            assert reporter.flush(timeout=20)
            for row_id in ids:
                reporter.log_inference("fraud", row_id, {"amount": 10.0}, 1, version="v1", time=at)
            assert reporter.flush(timeout=20)
        poll(
            lambda: stack.broker_counter(
                "modelstats_broker_deliveries_total",
                trigger="ingest-inference-logged",
                outcome="delivered",
            ),
            20,
            "the records delivered",
        )
        stack.tick_inference_settled()
        first = poll(
            lambda: (m := accuracy(stack)) and "prediction_accuracy" in m and m,
            30,
            "the window's accuracy",
        )
        assert first["prediction_accuracy"]["last_value"] == 1.0
        assert first["label_coverage"]["last_value"] == 0.5
        assert "LowAccuracy" not in firing(stack)

        # The rest come after, all wrong: the window's accuracy falls to 0.5, and is replaced.
        with Reporter(stack.ingress, source="/tests/labels-late") as reporter:
            for row_id in ids[20:]:
                reporter.label("fraud", row_id, 0, time=at + timedelta(minutes=2))
            assert reporter.flush(timeout=20)
        poll(
            lambda: (
                stack.broker_counter(
                    "modelstats_broker_deliveries_total",
                    trigger="ingest-label-reported",
                    outcome="delivered",
                )
                >= 2
            ),
            20,
            "the late labels delivered",
        )
        stack.tick_inference()
        replaced = poll(
            lambda: (m := accuracy(stack)) and m["prediction_accuracy"]["last_value"] == 0.5 and m,
            30,
            "the replaced accuracy",
        )
        assert replaced["prediction_accuracy"]["count"] == 1  # replaced, not added
        assert replaced["label_coverage"]["last_value"] == 1.0
        poll(lambda: "LowAccuracy" in firing(stack), 30, "LowAccuracy firing")

        # A label learnt later for a row wins over the one before it: 21 of 40 right now.
        with Reporter(stack.ingress, source="/tests/labels-fix") as reporter:
            reporter.label("fraud", ids[30], 1, time=at + timedelta(minutes=3))
            assert reporter.flush(timeout=20)
        stack.tick_inference()
        fixed = poll(
            lambda: (
                (m := accuracy(stack)) and m["prediction_accuracy"]["last_value"] == 21 / 40 and m
            ),
            30,
            "the accuracy after the later label",
        )
        assert fixed["prediction_accuracy"]["count"] == 1
