"""Inputs that must not cost more than a 4xx: bodies over the limit, JSON nested too deep.

Knative retries a 500 and a reset connection, so either would turn one bad event into a burst
of retries and a dead letter. What must hold: any nesting depth is a 400 naming `data`; a body
over the limit is a 413 with the usual JSON error, and the connection stays usable.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from starlette.testclient import TestClient

from modelstats.alert import outbox
from modelstats.core import contract
from tests.clients import function_client
from tests.cloudevents_http import binary_headers
from tests.configuration import configure
from tests.functions import function_process

DEEP = b"[" * 10_000 + b"]" * 10_000
EVENT_TYPES = {
    "ingest": contract.METRIC_REPORTED,
    "alert": contract.METRIC_STORED,
    "etl": contract.PING,
}


@contextmanager
def serving(target: str) -> Iterator[TestClient]:
    try:
        with function_client(target, f"functions/{target}/main.py") as client:
            yield client
    finally:
        outbox.shutdown()  # the alert function's start hook started its senders


@pytest.mark.parametrize("target", list(EVENT_TYPES))
def test_json_nested_10000_deep_is_400_naming_data(clean_db, target):
    binary = {**binary_headers(EVENT_TYPES[target]), "content-type": "application/json"}
    structured = {"content-type": "application/cloudevents+json"}
    envelope = {"specversion": "1.0", "id": "1", "source": "/s", "type": EVENT_TYPES[target]}
    envelope_text = json.dumps(envelope)[:-1].encode() + b', "data": ' + DEEP + b"}"
    with serving(target) as client:
        answers = [
            client.post("/", headers=binary, content=DEEP),
            client.post("/", headers=structured, content=envelope_text),
        ]
    for response in answers:
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "data"


def test_the_dead_letter_sink_keeps_deep_json_as_it_came(clean_db):
    from modelstats.store import deadletters

    headers = {**binary_headers(contract.METRIC_REPORTED, id="deep")}
    headers["content-type"] = "application/json"
    with function_client("dead_letters", "functions/ingest/main.py") as client:
        response = client.post("/", headers=headers, content=DEEP)
    assert response.status_code == 204
    (letter,) = deadletters.recent()
    assert (letter.event_id, letter.data) == ("deep", DEEP)


def test_a_chunked_body_over_the_limit_is_413(clean_db):
    configure(MAX_BODY_BYTES="1000")
    headers = {**binary_headers(contract.METRIC_REPORTED), "content-type": "application/json"}

    def chunks() -> Iterator[bytes]:  # no content-length: the limit is found while reading
        yield b'{"model": "m", "version": "v", "metrics": {"x": 1}, "pad": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    with function_client("ingest", "functions/ingest/main.py") as client:
        response = client.post("/", headers=headers, content=chunks())
    assert response.status_code == 413
    assert response.json()["field"] == "body"


def _request(sock: socket.socket, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    lines = ["POST / HTTP/1.1", "Host: function", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.getheader("connection", "").lower() != "close"
    return response.status, response.read()


@pytest.mark.slow
@pytest.mark.parametrize("target", list(EVENT_TYPES))
def test_20_mb_is_413_and_the_same_connection_serves_the_next_event(clean_db, target):
    headers = {**binary_headers(EVENT_TYPES[target]), "content-type": "application/json"}
    padding = b" " * (20 * 1024 * 1024)
    with function_process(target, f"functions/{target}/main.py", clean_db) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            status, body = _request(sock, headers, b"{}" + padding)
            assert status == 413
            assert json.loads(body)["field"] == "body"
            # Keep-alive: the next event goes over the very same socket, and is read.
            status, body = _request(sock, {**headers, "ce-id": "next"}, b"[[[")
    assert status == 400
    assert json.loads(body)["field"] == "data"
