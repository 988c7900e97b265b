"""What the local broker tells an operator: its /metrics (parsed with prometheus_client's own
parser) and its log lines, against real receivers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.brokers import BrokerProcess, binary_event, broker_yaml, run_broker, trigger_yaml
from tests.receivers import Receiver, Reply
from tests.scrapes import Samples, key, samples

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def scrape(broker: BrokerProcess) -> Samples:
    response = httpx.get(f"{broker.url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


def value(broker: BrokerProcess, name: str, **labels: str) -> float:
    return scrape(broker).get(key(name, **labels), 0.0)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


def wait_line(broker: BrokerProcess, pattern: str, timeout: float = 15) -> str:
    regex = re.compile(pattern)
    found: list[str] = []

    def seen() -> bool:
        found[:] = [line for line in broker.lines if regex.search(line)]
        return bool(found)

    wait_until(seen, f"a broker line matching {pattern!r}", timeout)
    return found[0]


def test_counters_move_with_deliveries_retries_and_dead_letters(tmp_path: Path) -> None:
    refusal = Reply.json(
        400, {"error": "bad_input", "field": "reports[0].metrics.drift", "message": "not a number"}
    )
    with (
        Receiver(default=refusal) as strict,
        Receiver(script=[Reply(503)], default=Reply(204)) as flaky,
        Receiver() as dls,
    ):
        delivery = f"  delivery:\n    retry: 2\n    deadLetterSink:\n      uri: {dls.url}\n"
        manifests = (
            broker_yaml(delivery)
            + trigger_yaml("strict", strict.url)
            + trigger_yaml("flaky", flaky.url)
        )
        with run_broker(tmp_path, manifests) as broker:
            assert broker.post(*binary_event(id="obs-1")).status_code == 202
            dls.wait_for(1)
            flaky.wait_for(2)
            deliveries = "modelstats_broker_deliveries_total"
            delivered = key(deliveries, trigger="flaky", outcome="delivered")
            wait_until(
                lambda: scrape(broker).get(delivered) == 1, "the flaky trigger's delivery counted"
            )
            scraped = scrape(broker)

            def at(name: str, **labels: str) -> float:
                return scraped.get(key(name, **labels), 0.0)

            assert at("modelstats_broker_events_accepted_total", broker="default") == 1
            assert (
                at("modelstats_broker_deliveries_total", trigger="strict", outcome="dead_lettered")
                == 1
            )
            assert at("modelstats_broker_delivery_retries_total", trigger="strict") == 0
            assert at("modelstats_broker_delivery_retries_total", trigger="flaky") == 1
            assert at("modelstats_broker_deliveries_in_flight", trigger="strict") == 0
            assert at("modelstats_broker_events_in_flight") == 0

            # A 400 is final: the line says so, with the subscriber's own reason, and no
            # "attempt 1/3" line suggests retries that never happen.
            line = wait_line(broker, r"obs-1 -> trigger strict: not retried")
            assert line.endswith(
                "not retried: 400 is permanent: reports[0].metrics.drift: not a number"
            )
            assert not [line for line in broker.lines if "trigger strict: attempt" in line]
            # The retried one does say it will retry.
            wait_line(broker, r"obs-1 -> trigger flaky: attempt 1/3 failed: HTTP 503; retry in")
            # No INFO line per event: the summary says it all, once per period.
            summary = wait_line(broker, r"INFO .*last 5s: accepted 1", timeout=15)
            assert "delivered 1, retried 1, dead-lettered 1" in summary
            assert "in flight 0" in summary
            assert not [line for line in broker.lines if " DEBUG " in line]


def test_the_in_flight_gauge_of_a_trigger_follows_a_slow_delivery(tmp_path: Path) -> None:
    with Receiver(default=Reply(204, delay=3.0)) as slow:
        manifests = broker_yaml() + trigger_yaml("slow", slow.url)
        with run_broker(tmp_path, manifests) as broker:
            before = value(broker, "modelstats_broker_deliveries_in_flight", trigger="slow")
            assert before == 0
            assert broker.post(*binary_event()).status_code == 202
            wait_until(
                lambda: (
                    value(broker, "modelstats_broker_deliveries_in_flight", trigger="slow") == 1
                ),
                "one delivery in flight to the slow trigger",
                timeout=3,
            )
            assert value(broker, "modelstats_broker_events_in_flight") == 1
            wait_until(
                lambda: (
                    value(broker, "modelstats_broker_deliveries_in_flight", trigger="slow") == 0
                ),
                "the slow delivery finished",
            )
            assert (
                value(
                    broker,
                    "modelstats_broker_deliveries_total",
                    trigger="slow",
                    outcome="delivered",
                )
                == 1
            )


def test_metrics_in_openmetrics_when_asked(tmp_path: Path) -> None:
    with run_broker(tmp_path, broker_yaml()) as broker:
        response = httpx.get(
            f"{broker.url}/metrics",
            headers={"accept": "application/openmetrics-text; version=1.0.0"},
            timeout=5,
        )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_json_logs_are_one_object_per_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")  # the broker process inherits the environment
    refusal = Reply.json(400, {"error": "bad_input", "field": "data", "message": "no"})
    with Receiver(default=refusal) as strict:
        manifests = broker_yaml() + trigger_yaml("strict", strict.url)
        with run_broker(tmp_path, manifests) as broker:
            assert broker.post(*binary_event(id="json-1")).status_code == 202
            wait_line(broker, r"json-1 -> trigger strict: not retried")
            wait_line(broker, r"last 5s: accepted 1")
            lines = list(broker.lines)
    entries = [json.loads(line) for line in lines]  # every line, the start included
    assert {entry["function"] for entry in entries} == {"broker"}
    assert entries[0]["message"].startswith("broker modelstats/default: http://127.0.0.1:")
    (refused,) = [e for e in entries if "not retried" in e["message"]]
    assert refused["level"] == "WARNING"
    assert refused["message"].endswith("not retried: 400 is permanent: data: no")
