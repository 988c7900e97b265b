"""How the broker judges a subscriber's answer (a reply, done, a failure) and how it retries:
what it says about a failure: no broker process, a real HTTP receiver in this one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from modelstats.core.cloudevents import Envelope
from modelstats.local.broker.sender import DeliveryResult, Sender, judge
from modelstats.local.knative import delivery
from modelstats.local.stack.ports import free_port
from tests.cloudevents_http import binary_headers, structured
from tests.receivers import Receiver, Reply, Request

EVENT = Envelope(
    {"specversion": "1.0", "type": "t", "source": "/s", "id": "e-1"}, b'{"a": 1}', True
)


# -- judge: what an answer means -------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 413, 500, 503])
def test_a_non_2xx_is_a_failure_with_its_status_and_body(status: int) -> None:
    result = judge(status, {}, b"why")
    assert (result.ok, result.status, result.body, result.reply) == (False, status, b"why", None)


@pytest.mark.parametrize("status", [200, 202, 204])
def test_an_empty_2xx_is_done(status: int) -> None:
    result = judge(status, {}, b"")
    assert result.ok and result.reply is None and result.status == status


def test_a_2xx_binary_cloudevent_is_a_reply() -> None:
    headers = {**binary_headers("r.type", "/r", "r-1"), "content-type": "application/json"}
    result = judge(200, headers, b'{"x": 1}')
    assert result.ok and result.reply is not None
    assert (result.reply.type, result.reply.id, result.reply.data) == ("r.type", "r-1", b'{"x": 1}')


def test_a_2xx_structured_cloudevent_is_a_reply() -> None:
    headers, body = structured({"x": 1}, id="r-2", type="r.type")
    result = judge(202, {k.lower(): v for k, v in headers.items()}, body)
    assert result.ok and result.reply is not None and result.reply.id == "r-2"


def test_a_2xx_that_is_not_a_valid_cloudevent_is_a_502() -> None:
    headers = {"ce-specversion": "1.0", "ce-type": "r.type"}  # no id, no source
    result = judge(200, headers, b"")
    assert not result.ok and result.status == 502
    assert result.error.startswith("invalid CloudEvent reply")


def test_a_2xx_with_a_body_that_is_not_a_cloudevent_is_a_502() -> None:
    result = judge(200, {"content-type": "text/plain"}, b"thanks")
    assert not result.ok and result.status == 502
    assert "not a CloudEvent" in result.error


def test_a_failure_is_told_in_the_subscriber_s_own_words() -> None:
    spoken = json.dumps({"error": "bad_input", "field": "metrics.x", "message": "not a number"})
    assert DeliveryResult(400, spoken.encode()).reason() == "metrics.x: not a number"
    assert DeliveryResult(400, b"  plain\n  words ").reason() == "plain words"
    assert DeliveryResult(None, error="connection refused").reason() == "connection refused"
    assert len(DeliveryResult(500, b"x" * 500).reason(limit=50)) == 50


# -- send: Knative's retries around the attempts ---------------------------------------------


@dataclass
class Failures:
    seen: list[tuple[int | None, int, float | None]] = field(default_factory=list)

    def __call__(self, result: DeliveryResult, attempt: int, retry_in: float | None) -> None:
        self.seen.append((result.status, attempt, retry_in))


def send(url: str, policy: delivery.RetryPolicy, on_failure: Failures) -> DeliveryResult:
    async def run() -> DeliveryResult:
        sender = Sender()
        await sender.open()
        try:
            return await sender.send(url, EVENT, policy, {"prefer": "reply"}, on_failure)
        finally:
            await sender.close()

    return asyncio.run(run())


@dataclass
class Subscriber:
    """One receiver for the module (each closes in half a second), answering from a script
    that each test sets."""

    receiver: Receiver
    script: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)

    def answer(self, request: Request) -> Reply:
        return self.script.pop(0) if self.script else self.default

    def expect(self, *script: Reply, default: Reply) -> int:
        """Answer with `script`, then `default`; how many requests came before."""
        self.script, self.default = list(script), default
        return len(self.receiver.requests)


@pytest.fixture(scope="module")
def subscriber() -> Iterator[Subscriber]:
    holder: list[Subscriber] = []
    with Receiver(handler=lambda request: holder[0].answer(request)) as receiver:
        holder.append(Subscriber(receiver))
        yield holder[0]


def test_retried_statuses_are_tried_again_with_the_policy_s_waits(subscriber: Subscriber) -> None:
    before = subscriber.expect(Reply(503), Reply(429), Reply(404), default=Reply(204))
    failed = Failures()
    result = send(subscriber.receiver.url, delivery.RetryPolicy(3, delivery.LINEAR, 0.05), failed)
    requests = subscriber.receiver.requests[before:]
    assert result.ok
    assert failed.seen == [(503, 1, 0.0), (429, 2, 0.05), (404, 3, 0.1)]
    assert len(requests) == 4
    assert all(r.body == b'{"a": 1}' and r.headers["prefer"] == "reply" for r in requests)


def test_a_permanent_status_is_not_retried(subscriber: Subscriber) -> None:
    before = subscriber.expect(default=Reply(400, body=b"no"))
    failed = Failures()
    result = send(subscriber.receiver.url, delivery.RetryPolicy(5), failed)
    assert len(subscriber.receiver.requests) - before == 1
    assert (result.ok, result.status, result.body) == (False, 400, b"no")
    assert failed.seen == [(400, 1, None)]


def test_out_of_attempts_the_last_failure_is_the_result(subscriber: Subscriber) -> None:
    before = subscriber.expect(default=Reply(500))
    failed = Failures()
    result = send(subscriber.receiver.url, delivery.RetryPolicy(2), failed)
    assert len(subscriber.receiver.requests) - before == 3
    assert result.status == 500
    assert failed.seen == [(500, 1, 0.0), (500, 2, 0.0), (500, 3, None)]


def test_no_answer_at_all_is_a_retried_network_error() -> None:
    failed = Failures()
    result = send(f"http://127.0.0.1:{free_port()}", delivery.RetryPolicy(1), failed)
    assert result.status is None and result.error
    assert [(status, attempt) for status, attempt, _ in failed.seen] == [(None, 1), (None, 2)]
