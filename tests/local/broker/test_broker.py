"""The local broker as a real process, against real local HTTP receivers."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import signal
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

from modelstats.local.stack.ports import free_port
from tests.brokers import (
    BrokerProcess,
    binary_event,
    broker_yaml,
    run_broker,
    start_broker_process,
    trigger_yaml,
)
from tests.receivers import Receiver, Reply, Request

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NO_RETRY = "  delivery:\n    retry: 0\n"


def dls_delivery(dls: str, retry: int = 0, extra: str = "") -> str:
    return f"  delivery:\n    retry: {retry}\n{extra}    deadLetterSink:\n      uri: {dls}\n"


def decoded_error_data(request: Request) -> bytes:
    return base64.b64decode(request.ce("knativeerrordata") or "")


# -- ingress ---------------------------------------------------------------------------------


def test_ingress_status_codes(tmp_path: Path) -> None:
    with (
        Receiver() as sink,
        run_broker(tmp_path, broker_yaml() + trigger_yaml("all", sink.url)) as b,
    ):
        headers, body = binary_event(data={"x": 1})
        assert b.post(headers, body).status_code == 202
        structured = {
            "specversion": "1.0",
            "id": "s1",
            "source": "/t",
            "type": "t",
            "data": {"a": 1},
        }
        response = b.post(
            {"content-type": "application/cloudevents+json"}, json.dumps(structured).encode()
        )
        assert response.status_code == 202
        assert httpx.options(b.ingress).status_code == 200
        assert httpx.get(b.ingress).status_code == 405
        assert httpx.put(b.ingress, content=body, headers=headers).status_code == 405
        assert httpx.post(b.url + "/", headers=headers, content=body).status_code == 404
        assert (
            httpx.post(b.url + "/modelstats/other", headers=headers, content=body).status_code
            == 404
        )
        assert httpx.post(b.url + "/nope/default", headers=headers, content=body).status_code == 404
        # Not CloudEvents, or invalid ones.
        assert b.post({"content-type": "application/json"}, b'{"x": 1}').status_code == 400
        missing_id = {k: v for k, v in headers.items() if k != "ce-id"}
        assert b.post(missing_id, body).status_code == 400
        assert b.post({**headers, "ce-specversion": "0.1"}, body).status_code == 400
        assert b.post({**headers, "ce-time": "yesterday"}, body).status_code == 400
        bad_json = b.post({"content-type": "application/cloudevents+json"}, b"{not json")
        assert bad_json.status_code == 400
        batch = b.post({"content-type": "application/cloudevents-batch+json"}, b"[]")
        assert batch.status_code == 400
        # The two accepted events, and only them, reached the trigger.
        assert len(sink.wait_for(2)) == 2
        assert len(sink.quiet_for(0.5)) == 2


def test_delivery_headers_stamps_and_exact_data(tmp_path: Path) -> None:
    with (
        Receiver() as sink,
        run_broker(tmp_path, broker_yaml() + trigger_yaml("all", sink.url)) as b,
    ):
        raw = b'{"model": "M",   "version": "v1"}'  # odd spacing must survive
        headers, _ = binary_event(id="e1", source="/src", type="t.x", myext="v")
        headers["content-type"] = "application/json"
        assert b.post(headers, raw).status_code == 202
        (request,) = sink.wait_for(1)
        assert request.body == raw
        assert request.headers["prefer"] == "reply"
        assert request.headers["kn-namespace"] == "modelstats"
        assert request.ce("id") == "e1" and request.ce("source") == "/src"
        assert request.ce("type") == "t.x" and request.ce("myext") == "v"
        assert request.headers["content-type"] == "application/json"
        assert request.ce("knativearrivaltime")
        # The TTL is the broker's business: subscribers do not see it (as in Knative).
        assert request.ce("knativebrokerttl") is None


def test_an_event_without_content_type_is_delivered_without_one(tmp_path: Path) -> None:
    """The HTTP client adds no content type of its own: it would become the event's
    datacontenttype at the subscriber."""
    with (
        Receiver() as sink,
        run_broker(tmp_path, broker_yaml() + trigger_yaml("all", sink.url)) as b,
    ):
        headers, _ = binary_event(id="plain")
        headers.pop("content-type", None)
        assert b.post(headers, b"raw bytes").status_code == 202
        (request,) = sink.wait_for(1)
        assert request.body == b"raw bytes"
        assert "content-type" not in request.headers
        assert "user-agent" not in request.headers


def test_ttl_guard_at_ingress(tmp_path: Path) -> None:
    with (
        Receiver() as sink,
        run_broker(tmp_path, broker_yaml() + trigger_yaml("all", sink.url)) as b,
    ):
        headers, body = binary_event(knativebrokerttl="1")
        assert b.post(headers, body).status_code == 400
        headers, body = binary_event(knativebrokerttl="0")
        assert b.post(headers, body).status_code == 400
        headers, body = binary_event(knativebrokerttl="many")
        assert b.post(headers, body).status_code == 400
        headers, body = binary_event(knativebrokerttl="2")
        assert b.post(headers, body).status_code == 202
        assert len(sink.wait_for(1)) == 1


def test_backpressure_answers_503_when_full(tmp_path: Path) -> None:
    slow = Receiver(default=Reply(204, delay=2.0))
    with (
        slow,
        run_broker(
            tmp_path,
            broker_yaml() + trigger_yaml("all", slow.url),
            extra_args=["--max-in-flight", "2", "--admission-wait", "0"],
        ) as b,
    ):
        statuses = [b.post(*binary_event()).status_code for _ in range(3)]
        assert statuses[:2] == [202, 202]
        assert statuses[2] == 503
        response = b.post(*binary_event())
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert len(slow.wait_for(2)) == 2
        # Once the slots are free again, the ingress accepts.
        deadline = time.monotonic() + 10
        while b.post(*binary_event()).status_code != 202:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def _raw_exchange(url: str, request: bytes, pause: float = 0.0, tail: bytes = b"") -> bytes:
    """Send raw HTTP on one socket (optionally pausing, then sending `tail`); the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        if pause:
            time.sleep(pause)
        if tail:
            with contextlib.suppress(OSError):  # the broker may have answered and closed
                sock.sendall(tail)
        return sock.recv(65536)


def test_a_body_over_the_limit_is_refused_without_being_read(tmp_path: Path) -> None:
    with (
        Receiver() as sink,
        run_broker(
            tmp_path,
            broker_yaml() + trigger_yaml("all", sink.url),
            extra_args=["--max-body-bytes", "1000", "--read-timeout", "1"],
        ) as b,
    ):
        headers, _ = binary_event()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        # Declared too large: answered from the headers alone (the body never comes).
        declared = f"POST /modelstats/default HTTP/1.1\r\nhost: x\r\n{head}"
        answer = _raw_exchange(b.url, (declared + "content-length: 50000000\r\n\r\n").encode())
        assert answer.startswith(b"HTTP/1.1 413"), answer
        # Chunked: refused as soon as the chunks pass the limit, the rest never read.
        chunked = f"{declared}transfer-encoding: chunked\r\n\r\n".encode()
        chunk = b"%x\r\n%s\r\n" % (600, b"x" * 600)
        answer = _raw_exchange(b.url, chunked + chunk + chunk, tail=chunk * 100)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        # A body that stops arriving: 408 once the read timeout passes.
        slow = f"{declared}content-length: 100\r\n\r\n".encode() + b"{"
        answer = _raw_exchange(b.url, slow)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        # Within the limit, all is as usual; nothing refused reached the subscriber.
        assert b.post(*binary_event(id="fits", data={"x": 1})).status_code == 202
        (request,) = sink.wait_for(1)
        assert request.ce("id") == "fits"
        metrics = httpx.get(f"{b.url}/metrics", timeout=5).text
        assert (
            'modelstats_broker_events_refused_total{broker="default",reason="too_large"} 2.0'
            in (metrics)
        )
        assert 'reason="timeout"} 1.0' in metrics


def test_a_full_broker_holds_the_sender_until_a_slot_frees(tmp_path: Path) -> None:
    """Backpressure slows the sender down first: the third event waits for the first two
    deliveries to end, then is accepted; nothing is refused."""
    slow = Receiver(default=Reply(204, delay=1.0))
    with (
        slow,
        run_broker(
            tmp_path,
            broker_yaml() + trigger_yaml("all", slow.url),
            extra_args=["--max-in-flight", "2", "--admission-wait", "10"],
        ) as b,
    ):
        assert [b.post(*binary_event()).status_code for _ in range(2)] == [202, 202]
        started = time.monotonic()
        assert b.post(*binary_event()).status_code == 202
        waited = time.monotonic() - started
        first_two = slow.wait_for(2)
        # Accepted only once a delivery had been answered (the receiver answers after 1 s).
        assert waited >= 0.5, waited
        assert len(slow.wait_for(3)) == 3 and len(first_two) == 2


# -- filters ---------------------------------------------------------------------------------

FILTERS = {
    "legacy_type": "  filter:\n    attributes:\n      type: order.created\n",
    "legacy_present": '  filter:\n    attributes:\n      region: ""\n',
    "legacy_two": "  filter:\n    attributes:\n      type: order.created\n      region: eu\n",
    "exact": "  filters:\n    - exact:\n        type: order.created\n",
    "prefix": "  filters:\n    - prefix:\n        type: order.\n",
    "suffix": "  filters:\n    - suffix:\n        source: /shop\n",
    "all": (
        "  filters:\n    - all:\n        - prefix:\n            type: order.\n"
        "        - exact:\n            region: eu\n"
    ),
    "any": (
        "  filters:\n    - any:\n        - exact:\n            type: order.created\n"
        "        - exact:\n            type: invoice.sent\n"
    ),
    "not": "  filters:\n    - not:\n        prefix:\n          type: order.\n",
    "list_and": (
        "  filters:\n    - prefix:\n        type: order.\n    - suffix:\n        type: .created\n"
    ),
    "none": "",
}

EVENTS = {
    # id: (type, source, extensions)
    "a": ("order.created", "/eu/shop", {"region": "eu"}),
    "b": ("order.cancelled", "/us/shop", {"region": "us"}),
    "c": ("invoice.sent", "/eu/billing", {}),
    "d": ("order.created", "/us/shop", {"region": ""}),
    "e": ("Order.created", "/shop", {}),
}

EXPECTED = {
    "legacy_type": {"a", "d"},
    "legacy_present": {"a", "b"},  # present AND non-empty
    "legacy_two": {"a"},
    "exact": {"a", "d"},
    "prefix": {"a", "b", "d"},
    "suffix": {"a", "b", "d", "e"},
    "all": {"a"},
    "any": {"a", "c", "d"},
    "not": {"c", "e"},  # case-sensitive: Order.created is not order.*
    "list_and": {"a", "d"},
    "none": {"a", "b", "c", "d", "e"},
}


def test_trigger_filters(tmp_path: Path) -> None:
    with Receiver() as sink:
        manifests = broker_yaml() + "".join(
            trigger_yaml(name.replace("_", "-"), f"{sink.url}/{name}", block)
            for name, block in FILTERS.items()
        )
        with run_broker(tmp_path, manifests) as b:
            for event_id, (type_, source, extensions) in EVENTS.items():
                headers, body = binary_event(type=type_, source=source, id=event_id, **extensions)
                assert b.post(headers, body).status_code == 202
            total = sum(len(v) for v in EXPECTED.values())
            sink.wait_for(total)
            requests = sink.quiet_for(0.5)
    got: dict[str, set[str]] = {name: set() for name in FILTERS}
    for request in requests:
        got[request.path.strip("/")].add(request.ce("id") or "")
    assert got == EXPECTED
    assert len(requests) == total  # nothing delivered twice


# -- retries and backoff ---------------------------------------------------------------------


def gaps(requests: list[Request]) -> list[float]:
    return [b.monotonic - a.monotonic for a, b in itertools.pairwise(requests)]


def test_exponential_backoff_then_success(tmp_path: Path) -> None:
    delivery = (
        "  delivery:\n    retry: 3\n    backoffPolicy: exponential\n    backoffDelay: PT0.2S\n"
    )
    with Receiver(script=[Reply(503)] * 3, default=Reply(204)) as sink, Receiver() as dls:
        manifests = broker_yaml(dls_delivery(dls.url, 10)) + trigger_yaml(
            "t", sink.url, delivery=delivery + f"    deadLetterSink:\n      uri: {dls.url}\n"
        )
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event())
            requests = sink.wait_for(4)
            assert len(sink.quiet_for(1.0)) == 4  # success on the 4th: no 5th attempt
    for measured, expected in zip(gaps(requests), [0.2, 0.4, 0.8], strict=True):
        assert expected * 0.9 <= measured <= expected + 0.5, (gaps(requests), expected)
    assert dls.requests == []


def test_linear_backoff_then_dead_letter_with_extensions(tmp_path: Path) -> None:
    failing = Reply(500, {"content-type": "text/plain"}, b"database on fire")
    delivery = dls_delivery("{dls}", 3, "    backoffPolicy: linear\n    backoffDelay: PT0.3S\n")
    with Receiver(default=failing) as sink, Receiver() as dls:
        manifests = broker_yaml() + trigger_yaml(
            "t", sink.url, delivery=delivery.format(dls=dls.url)
        )
        with run_broker(tmp_path, manifests) as b:
            headers, body = binary_event(id="lin-1", data={"k": "v"})
            b.post(headers, body)
            requests = sink.wait_for(4)
            (letter,) = dls.wait_for(1)
            assert len(sink.quiet_for(0.5)) == 4
    # linear: delay * k, so the first retry is immediate.
    for measured, expected in zip(gaps(requests), [0.0, 0.3, 0.6], strict=True):
        assert expected * 0.9 <= measured <= expected + 0.5, (gaps(requests), expected)
    assert letter.ce("id") == "lin-1"
    assert letter.body == body
    assert letter.ce("knativeerrordest") == sink.url
    assert letter.ce("knativeerrorcode") == "500"
    assert decoded_error_data(letter) == b"database on fire"
    assert letter.ce("knativebrokerttl") is None


RETRIED = [404, 408, 409, 429, 500, 502, 503, 504]
NOT_RETRIED = [400, 401, 403, 410, 413, 422]


def test_retried_and_not_retried_statuses(tmp_path: Path) -> None:
    """Every status on its own trigger, one event: retried ones get 3 attempts, others 1."""

    def by_path(request: Request) -> Reply:
        return Reply(int(request.path.strip("/")), body=b"nope")

    statuses = RETRIED + NOT_RETRIED
    with Receiver(handler=by_path) as sink, Receiver() as dls:
        manifests = broker_yaml(dls_delivery(dls.url, retry=2)) + "".join(
            trigger_yaml(f"s{status}", f"{sink.url}/{status}") for status in statuses
        )
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event())
            expected = 3 * len(RETRIED) + len(NOT_RETRIED)
            sink.wait_for(expected)
            letters = dls.wait_for(len(statuses))
            requests = sink.quiet_for(0.5)
    counts = {status: 0 for status in statuses}
    for request in requests:
        counts[int(request.path.strip("/"))] += 1
    assert counts == {s: 3 for s in RETRIED} | {s: 1 for s in NOT_RETRIED}
    assert sorted(int(letter.ce("knativeerrorcode") or 0) for letter in letters) == sorted(statuses)


def test_trigger_delivery_replaces_broker_delivery(tmp_path: Path) -> None:
    """The Trigger's delivery has no dead-letter sink: the Broker's is NOT used (no merge)."""
    with Receiver(default=Reply(503)) as sink, Receiver() as broker_dls:
        manifests = broker_yaml(dls_delivery(broker_dls.url, retry=5)) + trigger_yaml(
            "t", sink.url, delivery="  delivery:\n    retry: 1\n"
        )
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event(id="no-merge"))
            sink.wait_for(2)
            (entry,) = b.wait_spooled(1)
            assert len(sink.quiet_for(0.3)) == 2  # retry 1 from the Trigger, not 5
    assert broker_dls.requests == []
    assert entry["event"]["id"] == "no-merge"
    assert "no deadLetterSink" in entry["reason"]


def test_cluster_default_delivery_when_broker_has_none(tmp_path: Path) -> None:
    """No delivery anywhere: retry 10, exponential, PT0.2S (we check the first three gaps)."""
    with Receiver(script=[Reply(503)] * 3, default=Reply(204)) as sink:
        manifests = broker_yaml(delivery="  {}") + trigger_yaml("t", sink.url)
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event())
            requests = sink.wait_for(4)
    for measured, expected in zip(gaps(requests), [0.2, 0.4, 0.8], strict=True):
        assert expected * 0.9 <= measured <= expected + 0.5


def test_attempt_timeout_is_a_retried_failure(tmp_path: Path) -> None:
    delivery = "  delivery:\n    retry: 1\n    timeout: PT0.3S\n    deadLetterSink:\n"
    with Receiver(default=Reply(204, delay=1.5)) as sink, Receiver() as dls:
        manifests = broker_yaml() + trigger_yaml(
            "t", sink.url, delivery=delivery + f"      uri: {dls.url}\n"
        )
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event())
            assert len(sink.wait_for(2)) == 2
            (letter,) = dls.wait_for(1, timeout=10)
    assert letter.ce("knativeerrorcode") == "0"  # no response at all
    assert b"timed out" in decoded_error_data(letter)


# -- replies ---------------------------------------------------------------------------------


def test_cloudevent_reply_is_reingested(tmp_path: Path) -> None:
    reply = Reply.event("order.stored", source="/store", id="r-1", data={"stored": 1})
    with Receiver(default=reply) as first, Receiver() as second:
        manifests = (
            broker_yaml()
            + trigger_yaml("first", first.url, "  filters:\n    - exact:\n        type: order\n")
            + trigger_yaml(
                "second", second.url, "  filters:\n    - exact:\n        type: order.stored\n"
            )
        )
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event(type="order"))
            (got,) = second.wait_for(1)
            assert len(first.quiet_for(0.5)) == 1
    assert got.ce("id") == "r-1" and got.ce("source") == "/store"
    assert got.json() == {"stored": 1}
    assert got.ce("knativebrokerttl") is None


def test_structured_reply_with_202_is_reingested(tmp_path: Path) -> None:
    document = {"specversion": "1.0", "id": "r-2", "source": "/s", "type": "next", "data": [1, 2]}
    reply = Reply(
        202, {"content-type": "application/cloudevents+json"}, json.dumps(document).encode()
    )
    with Receiver(default=reply) as first, Receiver() as second:
        manifests = (
            broker_yaml()
            + trigger_yaml("first", first.url, "  filters:\n    - exact:\n        type: start\n")
            + trigger_yaml("second", second.url, "  filters:\n    - exact:\n        type: next\n")
        )
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event(type="start"))
            (got,) = second.wait_for(1)
    assert got.ce("id") == "r-2" and got.json() == [1, 2]


def test_reply_loop_stops_at_the_ttl_and_dead_letters_the_cause(tmp_path: Path) -> None:
    """A subscriber that answers with the type it consumes loops until the TTL runs out."""

    def echo(request: Request) -> Reply:
        return Reply.event("loop", id=str(uuid.uuid4()), data={"n": 1})

    with Receiver(handler=echo) as sink, Receiver() as dls:
        manifests = broker_yaml(dls_delivery(dls.url)) + trigger_yaml(
            "loop", sink.url, "  filters:\n    - exact:\n        type: loop\n"
        )
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event(type="loop", knativebrokerttl="5"))
            (letter,) = dls.wait_for(1)
            requests = sink.quiet_for(0.5)
    # Arrives with 5 -> 4 at ingress; each re-ingest takes one: 4, 3, 2, 1 delivered, then 400.
    assert len(requests) == 4
    assert letter.ce("knativeerrorcode") == "400"
    assert (letter.ce("knativeerrordest") or "").endswith("/modelstats/default")
    assert b"TTL" in decoded_error_data(letter)


def test_empty_2xx_is_delivered(tmp_path: Path) -> None:
    with Receiver(default=Reply(200)) as sink, Receiver() as dls:
        manifests = broker_yaml(dls_delivery(dls.url, retry=2)) + trigger_yaml("t", sink.url)
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event())
            sink.wait_for(1)
            assert len(sink.quiet_for(0.5)) == 1
    assert dls.requests == []


def test_2xx_with_a_non_cloudevent_body_is_a_failure(tmp_path: Path) -> None:
    text = Reply(200, {"content-type": "text/plain"}, b"OK")
    with Receiver(default=text) as sink, Receiver() as dls:
        manifests = broker_yaml(dls_delivery(dls.url, retry=1)) + trigger_yaml("t", sink.url)
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event(id="text-1"))
            (letter,) = dls.wait_for(1)
            assert len(sink.quiet_for(0.3)) == 2  # 502 is retried
    assert letter.ce("id") == "text-1"
    assert letter.ce("knativeerrorcode") == "502"
    assert decoded_error_data(letter) == b"OK"


def test_error_data_is_at_most_1024_characters(tmp_path: Path) -> None:
    big = bytes(range(256)) * 20
    with Receiver(default=Reply(422, body=big)) as sink, Receiver() as dls:
        manifests = broker_yaml(dls_delivery(dls.url)) + trigger_yaml("t", sink.url)
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event())
            (letter,) = dls.wait_for(1)
    encoded = letter.ce("knativeerrordata") or ""
    assert 0 < len(encoded) <= 1024
    assert big.startswith(base64.b64decode(encoded))


def test_spool_when_the_dead_letter_sink_is_down(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/dls"
    with Receiver(default=Reply(400, body=b"bad")) as sink:
        manifests = broker_yaml(dls_delivery(down, retry=1)) + trigger_yaml("t", sink.url)
        with run_broker(tmp_path, manifests) as b:
            headers, body = binary_event(id="spool-1", data={"keep": "me"})
            b.post(headers, body)
            (entry,) = b.wait_spooled(1)
    event = entry["event"]
    assert event["id"] == "spool-1"
    assert base64.b64decode(event["data_base64"]) == body
    assert event["knativeerrorcode"] == "400"
    assert event["knativeerrordest"] == sink.url
    assert down in entry["reason"]


def test_deliveries_to_different_triggers_run_concurrently(tmp_path: Path) -> None:
    slow = Reply(204, delay=1.0)
    with Receiver(default=slow) as one, Receiver(default=slow) as two:
        manifests = broker_yaml() + trigger_yaml("one", one.url) + trigger_yaml("two", two.url)
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event())
            (a,) = one.wait_for(1)
            (c,) = two.wait_for(1)
    # Sequential delivery would put a full second between them.
    assert abs(a.monotonic - c.monotonic) < 0.5


def test_service_refs_resolve_through_the_service_map(tmp_path: Path) -> None:
    with Receiver() as sink:
        manifests = broker_yaml() + trigger_yaml("t", "ref:ingest")
        with run_broker(tmp_path, manifests, services={"ingest": sink.url}) as b:
            b.post(*binary_event(id="via-ref"))
            (request,) = sink.wait_for(1)
    assert request.ce("id") == "via-ref"


def test_stop_spools_events_still_in_flight(tmp_path: Path) -> None:
    with Receiver(default=Reply(204, delay=30)) as sink:
        manifests = broker_yaml() + trigger_yaml("t", sink.url)
        with run_broker(tmp_path, manifests) as b:
            b.post(*binary_event(id="in-flight"))
            sink.wait_for(1)
            started = time.monotonic()
            # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
            assert b.stop(timeout=20) in (0, -signal.SIGTERM)
            assert time.monotonic() - started < 15
            entries = b.spooled()
    assert [e["event"]["id"] for e in entries] == ["in-flight"]
    assert "stopped" in entries[0]["reason"]


# -- start-up errors -------------------------------------------------------------------------


def _start_fails(tmp_path: Path, manifests: str, args: list[str] | None = None) -> BrokerProcess:
    directory = tmp_path / "bad"
    directory.mkdir()
    (directory / "objects.yaml").write_text(manifests)
    process, code = start_broker_process(directory, tmp_path / "spool.jsonl", args or [])
    try:
        assert code == 1, process.output()
    finally:
        process.stop()
    return process


def test_cesql_filter_is_refused_at_start(tmp_path: Path) -> None:
    cesql = "  filters:\n    - cesql: \"type = 'x'\"\n"
    process = _start_fails(tmp_path, broker_yaml() + trigger_yaml("sql", "http://x", cesql))
    out = process.output()
    assert "cesql" in out and "Trigger/sql" in out and "objects.yaml" in out


def test_unknown_service_ref_is_refused_at_start(tmp_path: Path) -> None:
    process = _start_fails(tmp_path, broker_yaml() + trigger_yaml("t", "ref:alert"))
    assert "alert" in process.output() and "--service" in process.output()


# -- pings -----------------------------------------------------------------------------------

PING = """\
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: {name}
  namespace: modelstats
spec:
  schedule: "{schedule}"
  contentType: application/json
  data: '{{"source": "synthetic"}}'
  ceOverrides:
    extensions:
      job: demo
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: default
"""

PING_FILTER = (
    "  filters:\n    - exact:\n        type: dev.knative.sources.ping\n"
    "        source: /apis/v1/namespaces/modelstats/pingsources/{name}\n"
)


def test_ping_source_fires_on_its_cron_schedule(tmp_path: Path) -> None:
    with Receiver() as sink:
        manifests = (
            broker_yaml()
            + PING.format(name="tick", schedule="* * * * * *")  # every second
            + trigger_yaml("etl", sink.url, PING_FILTER.format(name="tick"))
        )
        with run_broker(tmp_path, manifests) as b:
            requests = sink.wait_for(2, timeout=10)
            assert b.popen.poll() is None
    assert requests[1].wall - requests[0].wall >= 0.5
    for request in requests:
        assert request.ce("type") == "dev.knative.sources.ping"
        assert request.ce("source") == "/apis/v1/namespaces/modelstats/pingsources/tick"
        assert request.ce("job") == "demo"
        assert request.ce("time")
        assert request.headers["content-type"] == "application/json"
        assert request.json() == {"source": "synthetic"}
    assert requests[0].ce("id") != requests[1].ce("id")
    # Fired on whole seconds (the schedule), not at an arbitrary offset from start-up.
    assert all(r.wall % 1 < 0.6 for r in requests)


def test_ping_every_overrides_the_schedule(tmp_path: Path) -> None:
    with Receiver() as sink:
        manifests = (
            broker_yaml()
            + PING.format(name="yearly", schedule="0 0 1 1 *")
            + trigger_yaml("etl", sink.url, PING_FILTER.format(name="yearly"))
        )
        with run_broker(tmp_path, manifests, extra_args=["--ping-every", "500ms"]) as b:
            requests = sink.wait_for(3, timeout=10)
            assert b.popen.poll() is None
    assert all(r.ce("type") == "dev.knative.sources.ping" for r in requests)
