"""A small keep-alive HTTP/1.1 client for the broker's deliveries: POST, read the answer.

Why not a general client: the broker makes one kind of request, to a few hosts, thousands of
times a second, and the client is most of its CPU. On the 2-core machine a delivery through
httpx.AsyncClient cost about 2.2 ms of CPU, through aiohttp's ClientSession about 0.15 ms inside
the broker (request objects, header multidicts, payload registry, timers); this client writes
the request in one `write` and parses the answer with httptools (llhttp, the parser uvicorn
uses), and costs a fraction of that. What it does not do, because deliveries do not need it:
redirects, cookies, proxies, compression, `Expect: 100-continue`, pipelining.

Connections per host are capped (requests beyond the cap wait for one to free up, like
Knative's queue-proxy holding requests beyond a pod's concurrency) and kept alive while they are
busy; an idle one is dropped after `idle_seconds`, shorter than the servers' own keep-alive, so a
request is never written onto a connection the server is closing. A reused connection that the
server closed anyway (the answer never started) is retried once on a fresh one, as Go's
transport does.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools


class HttpError(Exception):
    """No answer: refused, reset, timed out, malformed, or too large."""


class StaleConnection(HttpError):
    """A kept-alive connection was closed by the server before it answered."""


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lowercase names
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self, max_body: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[Answer] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._started = False
        self._keep_alive = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(HttpError(f"malformed answer: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is None or self._answer.done():
            return
        status = self._status()
        if self._started and status and self._headers_complete and self._until_close():
            self._complete(status)  # a body delimited by the end of the connection
        elif not self._started and self.reused:
            self._fail(StaleConnection("the server closed the kept-alive connection"))
        else:
            self._fail(HttpError(f"connection lost: {exc or 'closed by the server'}"))

    # -- httptools callbacks ---------------------------------------------------------------

    _headers_complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_complete = True
        self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._max_body:
            self._fail(HttpError(f"answer larger than {self._max_body} bytes"))
            if self.transport is not None:
                self.transport.close()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete(self._status())

    # -- one exchange ----------------------------------------------------------------------

    def _status(self) -> int:
        try:
            return int(self._parser.get_status_code())
        except httptools.HttpParserError:
            return 0

    def _until_close(self) -> bool:
        return "content-length" not in self._headers and "chunked" not in self._headers.get(
            "transfer-encoding", ""
        )

    def _complete(self, status: int) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(Answer(status, self._headers, b"".join(self._body)))

    def _fail(self, error: HttpError) -> None:
        self._keep_alive = False
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)

    async def exchange(self, request: bytes) -> Answer:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._size = {}, [], 0
        self._started = self._headers_complete = self._keep_alive = False
        self.transport.write(request)
        return await self._answer

    @property
    def reusable(self) -> bool:
        return self._keep_alive and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Host:
    """The connections to one (scheme, host, port), at most `limit` at a time."""

    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.idle: collections.deque[_Connection] = collections.deque()


class HttpClient:
    def __init__(
        self,
        connections_per_host: int = 256,
        idle_seconds: float = 1.0,
        max_answer_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._limit = connections_per_host
        self._idle_seconds = idle_seconds
        self._max_answer = max_answer_bytes
        self._hosts: dict[tuple[str, str, int], _Host] = {}
        self._targets: dict[str, tuple[tuple[str, str, int], bytes]] = {}
        self._ssl: ssl.SSLContext | None = None

    def _target(self, url: str) -> tuple[tuple[str, str, int], bytes]:
        """(scheme, host, port) and the start of the request head, per URL (cached)."""
        found = self._targets.get(url)
        if found is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise HttpError(f"not an http(s) URL: {url!r}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host = parts.netloc.rsplit("@", 1)[-1]
            head = f"POST {path} HTTP/1.1\r\nhost: {host}\r\n".encode("latin-1")
            found = self._targets[url] = ((parts.scheme, parts.hostname, port), head)
        return found

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> Answer:
        """POST `body`; the answer, or HttpError. `timeout` covers waiting for a connection,
        connecting, sending and the whole answer."""
        key, head = self._target(url)
        request = _request(head, headers, body)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(self._limit)
        try:
            async with asyncio.timeout(timeout):
                async with host.slots:
                    try:
                        return await self._exchange(key, host, request, fresh=False)
                    except StaleConnection:
                        return await self._exchange(key, host, request, fresh=True)
        except TimeoutError:
            raise HttpError(f"timed out after {timeout:g}s") from None
        except OSError as error:
            raise HttpError(f"{type(error).__name__}: {error}") from None

    async def _exchange(
        self, key: tuple[str, str, int], host: _Host, request: bytes, fresh: bool
    ) -> Answer:
        connection = None if fresh else self._idle_connection(host)
        if connection is None:
            connection = await self._connect(key)
        try:
            answer = await connection.exchange(request)
        except BaseException:
            connection.close()  # mid-exchange (error, timeout, cancel): not reusable
            raise
        if connection.reusable:
            connection.reused = True
            connection.idle_since = time.monotonic()
            host.idle.append(connection)
        else:
            connection.close()
        return answer

    def _idle_connection(self, host: _Host) -> _Connection | None:
        now = time.monotonic()
        while host.idle:
            connection = host.idle.pop()  # the most recently used: the least likely closed
            if not connection.closed and now - connection.idle_since < self._idle_seconds:
                return connection
            connection.close()
        return None

    async def _connect(self, key: tuple[str, str, int]) -> _Connection:
        scheme, hostname, port = key
        context = None
        if scheme == "https":
            context = self._ssl = self._ssl or ssl.create_default_context()
        loop = asyncio.get_running_loop()
        max_answer = self._max_answer
        _, connection = await loop.create_connection(
            lambda: _Connection(max_answer), hostname, port, ssl=context
        )
        return connection

    async def close(self) -> None:
        for host in self._hosts.values():
            while host.idle:
                host.idle.pop().close()
        self._hosts.clear()


def _request(head: bytes, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [head]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise HttpError(f"header {name!r}: line breaks are not allowed in a header")
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    lines.append(b"content-length: %d\r\n\r\n" % len(body))
    lines.append(body)
    return b"".join(lines)
