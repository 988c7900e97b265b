"""The functions' connections have the broker's head limits (web/connections.py), on real
functions-framework processes: gunicorn's uvicorn workers are given the guarded protocol by
the wrapper every main.py imports. Without it a 10 MB header got 200 and partial heads stayed
open for as long as their senders liked."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tests.cloudevents_http import binary_headers
from tests.functions import function_process
from tests.raw_http import read_until_closed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TARGETS = {
    "ingest": "functions/ingest/main.py",
    "stats": "functions/stats/main.py",
    "alert": "functions/alert/main.py",
    "etl": "functions/etl/main.py",
}


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _head(extra: str = "", path: str = "/") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: function", "content-length: 2"]
    lines += [f"{k}: {v}" for k, v in binary_headers("modelstats.metric.reported").items()]
    return ("\r\n".join(lines) + f"\r\ncontent-type: application/json\r\n{extra}\r\n").encode()


@pytest.fixture
def ingest(clean_db: str) -> Iterator[str]:
    with function_process("ingest", TARGETS["ingest"], clean_db) as url:
        yield url


@pytest.mark.parametrize("target", list(TARGETS))
def test_a_10_mb_header_is_431_for_every_function(clean_db: str, target: str) -> None:
    with (
        function_process(target, TARGETS[target], clean_db) as url,
        socket.create_connection(_address(url)) as sock,
    ):
        # Refused before all of it is written: the answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(_head(f"x-big: {'a' * 10_000_000}\r\n") + b"{}")
        answer = read_until_closed(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


@pytest.mark.parametrize("writes", [1, 2])
@pytest.mark.parametrize("kib", [70, 100])
def test_a_whole_head_over_the_cap_is_431_however_it_arrives(
    ingest: str, kib: int, writes: int
) -> None:
    request = _head(f"x-big: {'a' * kib * 1024}\r\n") + b"{}"
    half = len(request) // 2
    with socket.create_connection(_address(ingest)) as sock:
        for part in [request] if writes == 1 else [request[:half], request[half:]]:
            sock.sendall(part)
        answer = read_until_closed(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"connection: close" in answer


def test_partial_heads_are_closed_with_408_after_the_head_timeout(ingest: str) -> None:
    """300 connections that each send half a head and stop: all closed within the 10 s head
    deadline (plus scheduling), each with its 408."""
    sockets = [socket.create_connection(_address(ingest)) for _ in range(300)]
    try:
        for sock in sockets:
            sock.sendall(b"POST / HTTP/1.1\r\nhost: function\r\nx-slow: ")
        started = time.monotonic()
        answers = [read_until_closed(sock, timeout=25) for sock in sockets]
        took = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)
    assert took < 16, took


def test_ordinary_requests_are_served_as_before(ingest: str) -> None:
    body = b'{"model": "m", "version": "v1", "metrics": {"x": 1}}'
    head = _head().replace(b"content-length: 2", b"content-length: %d" % len(body))
    with socket.create_connection(_address(ingest)) as sock:
        sock.sendall(head + body)
        sock.settimeout(10)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
