"""The reporter against a real local HTTP receiver standing in for the broker (the outbound
edge): what goes on the wire, batching, retries, the bounded buffer, flush, close, exit."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from modelstats.client import Reporter, ReporterClosed
from modelstats.core import cloudevents, reports, timestamps
from modelstats.core.errors import BadInput, ConfigError
from tests.brokers import free_port
from tests.receivers import Receiver, Reply, Request

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
FAST = {"retry_initial": 0.01, "retry_max": 0.05, "flush_interval": 0.05}


def sent_reports(requests: list[Request], accepted_only: bool = False) -> list[dict[str, Any]]:
    """Every report in the events received, parsed as ingest parses them."""
    found = []
    for request in requests:
        event = cloudevents.parse(request.headers, request.body)
        parsed = reports.parse_reports(event.data, timestamps.now())
        found += [report.to_json() for report in parsed]
    return found


def values(requests: list[Request]) -> list[float]:
    return values_of(requests, "n")


def values_of(requests: list[Request], metric: str) -> list[float]:
    return [report["metrics"][metric] for report in sent_reports(requests)]


@pytest.fixture
def receiver() -> Any:
    with Receiver(default=Reply(202)) as running:
        yield running


def test_reports_travel_as_binary_cloudevents_that_ingest_accepts(receiver: Receiver) -> None:
    moment = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    with Reporter(f"{receiver.url}/modelstats/default", source="/tests/reporter") as reporter:
        reporter.report("fraud-detector", "v3", {"prediction_accuracy": 0.93})
        reporter.report("fraud-detector", "v3", {"drift": 0.1}, labels={"env": "prod"}, time=moment)
        assert reporter.flush(timeout=10)
    (request,) = receiver.requests
    assert request.path == "/modelstats/default"
    assert request.ce("specversion") == "1.0"
    assert request.ce("type") == "modelstats.metric.reported"
    assert request.ce("source") == "/tests/reporter"
    assert request.ce("id") and request.ce("time")
    assert request.headers["content-type"] == "application/json"
    assert list(request.json()) == ["reports"]
    first, second = sent_reports([request])
    assert first["metrics"] == {"prediction_accuracy": 0.93} and first["labels"] == {}
    # A report without a time is stamped when it is made, not when it is sent.
    assert timestamps.parse(first["time"], "time") <= timestamps.parse(request.ce("time"), "t")
    assert second == {
        "model": "fraud-detector",
        "version": "v3",
        "time": "2026-11-01T12:00:00Z",
        "metrics": {"drift": 0.1},
        "labels": {"env": "prod"},
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"metrics": {"drift": "high"}}, "report.metrics.drift"),
        ({"metrics": {"drift": float("nan")}}, "report.metrics.drift"),
        ({"metrics": {}}, "report.metrics"),
        ({"model": ""}, "report.model"),
        ({"labels": {"env": 1}}, "report.labels.env"),
        ({"time": datetime(2026, 11, 1)}, "report.time"),
        ({"time": "yesterday"}, "report.time"),
        # A lone surrogate has no UTF-8 form: named, never a UnicodeEncodeError.
        ({"model": "poison\ud800"}, "report.model"),
        ({"labels": {"env": "poison\udfff"}}, "report.labels.env"),
        ({"labels": {"poison\ud800": "prod"}}, "report.labels.poison\\ud800"),
        ({"metrics": {"drift\udc00": 0.1}}, "report.metrics.drift\\udc00"),
        ({"labels": {"env": "a\x00b"}}, "report.labels.env"),
    ],
)
def test_a_bad_report_is_refused_at_the_call_site(
    receiver: Receiver, kwargs: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = {"model": "m", "version": "v1", "metrics": {"x": 1.0}, **kwargs}
    reporter = Reporter(receiver.url, source="/tests/reporter")
    with pytest.raises(BadInput) as caught:
        reporter.report(**arguments)
    assert caught.value.field == field
    assert reporter.counters.reported == 0
    assert reporter.close()
    assert receiver.requests == []


def test_the_async_reporter_names_a_surrogate_too(receiver: Receiver) -> None:
    import asyncio

    from modelstats.client import AsyncReporter

    async def main() -> BadInput:
        async with AsyncReporter(receiver.url, source="/s", **FAST) as reporter:
            with pytest.raises(BadInput) as caught:
                reporter.report("m", "v1", {"x": 1.0}, labels={"env": "poison\ud800"})
            reporter.report("m", "v1", {"x": 2.0})
            assert await reporter.flush(timeout=10)
        return caught.value

    error = asyncio.run(main())
    assert error.field == "report.labels.env"
    assert values_of(receiver.requests, "x") == [2.0]


def test_a_source_with_no_utf8_form_or_too_long_is_refused_up_front() -> None:
    with pytest.raises(ConfigError, match="surrogate"):
        Reporter("http://127.0.0.1:9", source="/s\ud800")
    with pytest.raises(ConfigError, match="MAX_ATTRIBUTE_BYTES"):
        Reporter("http://127.0.0.1:9", source="/" + "s" * 1024)


def test_numbers_that_are_not_floats_are_sent_as_floats(receiver: Receiver) -> None:
    from fractions import Fraction

    with Reporter(receiver.url, source="/tests/reporter") as reporter:
        reporter.report("m", "v1", {"n": Fraction(1, 4), "i": 3})
        assert reporter.flush(timeout=10)
    assert sent_reports(receiver.requests)[0]["metrics"] == {"n": 0.25, "i": 3.0}


def test_events_are_bounded_by_reports_and_bytes(receiver: Receiver) -> None:
    with Reporter(receiver.url, source="/s", max_reports_per_event=10, **FAST) as reporter:
        for n in range(25):
            reporter.report("m", "v1", {"n": n})
        assert reporter.flush(timeout=10)
    assert [len(r.json()["reports"]) for r in receiver.requests] == [10, 10, 5]
    assert len({r.ce("id") for r in receiver.requests}) == 3
    assert values(receiver.requests) == list(range(25))

    with Receiver(default=Reply(202)) as small:
        reporter = Reporter(small.url, source="/s", max_event_bytes=600, **FAST)
        for n in range(25):
            reporter.report("m", "v1", {"n": n})
        assert reporter.close(timeout=10)
    assert all(len(r.body) <= 600 for r in small.requests)
    assert len(small.requests) > 3
    assert values(small.requests) == list(range(25))


def test_a_400_loses_the_event_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusal = Reply.json(400, {"error": "bad_input", "field": "reports[0]", "message": "no"})
    with Receiver(script=[refusal, refusal], default=Reply(202)) as receiver:
        reporter = Reporter(receiver.url, source="/s", **FAST)
        with caplog.at_level(logging.DEBUG, logger="modelstats.client"):
            reporter.report("m", "v1", {"n": 1})
            assert reporter.flush(timeout=10)
            reporter.report("m", "v1", {"n": 2})
            assert reporter.flush(timeout=10)
            reporter.report("m", "v1", {"n": 3})
            assert reporter.close(timeout=10)
        # Never retried: one request per event.
        assert len(receiver.requests) == 3
    counters = reporter.counters
    assert (counters.sent, counters.failed, counters.retries) == (1, 2, 0)
    assert counters.last_error == "HTTP 400, refused: reports[0]: no"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "modelstats reporter: 1 report(s) lost: HTTP 400, refused: reports[0]: no"
    ]


def test_5xx_429_and_network_errors_are_retried_as_the_same_event() -> None:
    script = [Reply(503), Reply(500), Reply(429), Reply(502)]
    with Receiver(script=script, default=Reply(202)) as receiver:
        reporter = Reporter(receiver.url, source="/s", **FAST)
        reporter.report("m", "v1", {"n": 1})
        assert reporter.close(timeout=10)
    assert len(receiver.requests) == 5
    assert len({r.ce("id") for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    counters = reporter.counters
    assert (counters.sent, counters.events, counters.retries, counters.failed) == (1, 1, 4, 0)

    port = free_port()  # nothing listens there yet: connection refused, retried
    reporter = Reporter(f"http://127.0.0.1:{port}", source="/s", **FAST)
    reporter.report("m", "v1", {"n": 2})
    assert not reporter.flush(timeout=0.5)
    assert reporter.counters.retries >= 1 and reporter.counters.pending == 1
    with Receiver(default=Reply(202), port=port) as late:
        assert reporter.flush(timeout=10)
        assert values(late.requests) == [2]
    assert reporter.close()


def test_retry_after_is_honoured() -> None:
    script = [Reply(503, {"retry-after": "1"})]
    with Receiver(script=script, default=Reply(202)) as receiver:
        reporter = Reporter(receiver.url, source="/s", **FAST)
        reporter.report("m", "v1", {"n": 1})
        assert reporter.flush(timeout=10)
        first, second = receiver.requests
    # The jittered backoff alone would be at most 0.01 s here.
    assert second.monotonic - first.monotonic >= 0.95
    assert reporter.close()


def test_a_413_splits_the_event_until_the_parts_fit() -> None:
    def at_most_two(request: Request) -> Reply:
        return Reply(202) if len(request.json()["reports"]) <= 2 else Reply(413)

    with Receiver(handler=at_most_two) as receiver:
        reporter = Reporter(receiver.url, source="/s", **FAST)
        for n in range(7):
            reporter.report("m", "v1", {"n": n})
        assert reporter.close(timeout=10)
        accepted = [r for r in receiver.requests if len(r.json()["reports"]) <= 2]
    assert sorted(values(accepted)) == list(range(7))
    assert len({r.ce("id") for r in receiver.requests}) == len(receiver.requests)
    assert reporter.counters.sent == 7 and reporter.counters.failed == 0


def test_a_full_buffer_drops_the_oldest_and_report_never_waits() -> None:
    arrived, release = threading.Event(), threading.Event()

    def held(request: Request) -> Reply:
        arrived.set()
        release.wait(30)
        return Reply(202)

    with Receiver(handler=held) as receiver:
        reporter = Reporter(receiver.url, source="/s", max_buffered=10, timeout=60, **FAST)
        reporter.report("m", "v1", {"n": 0})
        assert arrived.wait(10)  # that report is in flight, its answer held
        # The broker answers nothing while these are reported: report() does not wait for it.
        for n in range(1, 51):
            reporter.report("m", "v1", {"n": n})
        counters = reporter.counters
        assert (counters.reported, counters.dropped, counters.pending) == (51, 40, 11)
        release.set()
        assert reporter.close(timeout=10)
        assert values(receiver.requests) == [0, *range(41, 51)]
    counters = reporter.counters
    assert (counters.sent, counters.dropped, counters.failed, counters.pending) == (11, 40, 0, 0)


def test_flush_gives_up_after_its_timeout_and_close_counts_what_is_lost() -> None:
    reporter = Reporter(f"http://127.0.0.1:{free_port()}", source="/s", **FAST)
    for n in range(3):
        reporter.report("m", "v1", {"n": n})
    assert not reporter.flush(timeout=0.3)
    assert not reporter.close(timeout=0.3)
    counters = reporter.counters
    assert (counters.failed, counters.pending, counters.sent) == (3, 0, 0)
    assert counters.last_error == "not sent before close() timed out"
    with pytest.raises(ReporterClosed):
        reporter.report("m", "v1", {"n": 4})


def test_many_threads_report_at_once_and_every_report_arrives_once(receiver: Receiver) -> None:
    reporter = Reporter(receiver.url, source="/s", max_reports_per_event=100, **FAST)

    def work(thread: int) -> None:
        for i in range(500):
            reporter.report("m", "v1", {"n": thread * 1000 + i})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert reporter.close(timeout=30)
    got = values(receiver.requests)
    assert sorted(got) == sorted(t * 1000 + i for t in range(8) for i in range(500))
    counters = reporter.counters
    assert (counters.reported, counters.sent, counters.pending) == (4000, 4000, 0)


def test_the_interval_sends_without_a_flush(receiver: Receiver) -> None:
    reporter = Reporter(receiver.url, source="/s", flush_interval=0.1)
    reporter.report("m", "v1", {"n": 1})
    assert values(receiver.wait_for(1, timeout=10)) == [1]
    assert reporter.close()


SCRIPT_SYNC = """
from modelstats.client import Reporter
reporter = Reporter({url!r}, source="/tests/exit", flush_interval=60)
for n in range(3):
    reporter.report("m", "v1", {{"n": n}})
"""

SCRIPT_ASYNC = """
import asyncio
from modelstats.client import AsyncReporter
reporter = AsyncReporter({url!r}, source="/tests/exit", flush_interval=60)
async def main():
    for n in range(3):
        reporter.report("m", "v1", {{"n": n}})
    await asyncio.sleep(0)
asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("script", [SCRIPT_SYNC, SCRIPT_ASYNC], ids=["sync", "async"])
def test_what_is_buffered_is_sent_at_interpreter_exit(receiver: Receiver, script: str) -> None:
    code = textwrap.dedent(script.format(url=receiver.url))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert values(receiver.requests) == [0, 1, 2]


def test_the_async_reporter_batches_and_retries_the_same_way() -> None:
    import asyncio

    from modelstats.client import AsyncReporter

    script = [Reply(503), Reply(503, {"retry-after": "0"})]
    with Receiver(script=script, default=Reply(202)) as receiver:

        async def main() -> AsyncReporter:
            async with AsyncReporter(
                receiver.url, source="/s", max_reports_per_event=10, **FAST
            ) as reporter:
                for n in range(25):
                    reporter.report("m", "v1", {"n": n})
                assert await reporter.flush(timeout=10)
                # report() from another thread, as a sync FastAPI handler would.
                await asyncio.to_thread(reporter.report, "m", "v1", {"n": 25})
            return reporter

        reporter = asyncio.run(main())
        requests = list(receiver.requests)
    ids = [r.ce("id") for r in requests]
    assert ids[0] == ids[1] == ids[2]  # the two 503s, then the same event accepted
    assert sorted(set(values(requests[2:]))) == list(range(26))
    counters = reporter.counters
    assert (counters.sent, counters.retries, counters.pending, counters.failed) == (26, 2, 0, 0)
    assert json.loads(requests[2].body)["reports"][0]["metrics"] == {"n": 0}
