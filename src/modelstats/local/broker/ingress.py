"""The broker's HTTP side: the ingress `POST /<namespace>/<broker>`, `/healthz` and `/metrics`.

A bare ASGI application (no framework in the hot path) under uvicorn with uvloop and httptools.
Status codes as Knative's ingress answers them (EV pkg/broker/ingress/ingress_handler.go): 202
accepted, 400 not a valid CloudEvent (binary or structured; batched mode refused) or TTL spent,
404 for `/` or an unknown broker, 405 other methods, 200 OPTIONS; and, as this broker bounds what
it holds, 413 for a body over the limit (refused from its Content-Length, or as soon as a chunked
body passes it, never read whole), 408 for a body that does not arrive within the read timeout,
503 with `Retry-After` when no in-flight slot frees in time. The rest of a refused body is
read and dropped within bounds of bytes and time, so that the sender reads its 413 (or 408)
instead of a reset connection. Request heads are capped (431) and timed (408), idle
connections closed (web/connections.py).

Signals: the first SIGINT or SIGTERM stops gracefully (deliveries get the broker's drain
period, then what is left is spooled); a second one, or SIGQUIT, spools what is in flight at
once and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn
from prometheus_client.exposition import choose_encoder

from modelstats.core import cloudevents
from modelstats.core.errors import BadInput
from modelstats.local.broker.dispatcher import LocalBroker
from modelstats.local.broker.routing import BrokerRoute
from modelstats.web.connections import (
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_MAX_HEAD_BYTES,
    GuardedProtocol,
)

log = logging.getLogger("modelstats.broker")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ALLOW = (b"allow", b"POST, OPTIONS")
TEXT = (b"content-type", b"text/plain; charset=utf-8")
CLOSE = [(b"connection", b"close")]
RETRY = [(b"retry-after", b"1")]
DEFAULT_IDLE_TIMEOUT = 5


class BodyTooLarge(Exception):
    pass


async def _respond(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    # A length, even 0: without one uvicorn frames the answer as chunked, bytes for nothing.
    head = [(b"content-length", b"%d" % len(body)), *(headers or [])]
    if body:
        head.append(TEXT)
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _lifespan(broker: LocalBroker, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await broker.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await broker.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


class Refusal(Exception):
    """An event the ingress will not take: its status and the reason given to the sender."""

    def __init__(self, status: int, reason: str, counted_as: str, close: bool = False):
        super().__init__(reason)
        self.status = status
        self.counted_as = counted_as
        # The rest of the request is not worth reading: the answer closes the connection.
        self.close = close


class Ingress:
    """The ASGI application: routes a request, and takes an event into its broker."""

    def __init__(self, broker: LocalBroker, max_body_bytes: int, read_timeout: float = 30.0):
        self.broker = broker
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(self.broker, receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        parts = [p for p in scope["path"].split("/") if p]
        if method == "OPTIONS":
            await _respond(send, 200, headers=[ALLOW])
        elif method == "GET" and parts == ["healthz"]:
            await _respond(send, 200, b"ok")
        elif method == "GET" and parts == ["metrics"]:
            accept = next((v for k, v in scope["headers"] if k == b"accept"), b"")
            encode, content_type = choose_encoder(accept.decode("latin-1"))
            body = encode(self.broker.tally.registry)
            head = [
                (b"content-type", content_type.encode()),
                (b"content-length", b"%d" % len(body)),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": body})
        elif method != "POST":
            await _respond(send, 405, b"only POST is accepted\n", [ALLOW])
        elif len(parts) != 2 or (route := self.broker.route(parts[0], parts[1])) is None:
            what = "/".join(parts) or "/"
            await _respond(send, 404, f"no broker {what}: POST /<namespace>/<broker>\n".encode())
        else:
            try:
                await self._take(route, scope, receive)
            except Refusal as refusal:
                self.broker.tally.refused(route.name, refusal.counted_as)
                extra = RETRY if refusal.status == 503 else CLOSE if refusal.close else []
                await _respond(send, refusal.status, f"{refusal}\n".encode(), extra)
            except ConnectionError:
                return  # the sender went away: nobody to answer
            else:
                await _respond(send, 202)

    async def _take(self, route: BrokerRoute, scope: Scope, receive: Receive) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        body = await self._body(headers, receive)
        try:
            accepted = await self.broker.accept(route, cloudevents.decode(headers, body))
        except BadInput as error:
            raise Refusal(400, str(error), "invalid") from None
        if not accepted:
            raise Refusal(503, "the broker is at its in-flight limit, retry later", "full")

    async def _body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.max_body_bytes
        too_large = Refusal(413, f"body larger than {limit} bytes", "too_large")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            # Answered at once; the connection drains the rest, within its bounds, so that a
            # sender still writing reads this answer (web/connections.py).
            raise too_large
        try:
            async with asyncio.timeout(self.read_timeout):
                return await _read_body(receive, limit)
        except BodyTooLarge:
            raise too_large from None
        except TimeoutError:
            reason = f"body not received within {self.read_timeout:g}s"
            raise Refusal(408, reason, "timeout", close=True) from None


def create_app(broker: LocalBroker, max_body_bytes: int, read_timeout: float = 30.0) -> ASGIApp:
    return Ingress(broker, max_body_bytes, read_timeout)


class _BrokerServer(uvicorn.Server):
    """uvicorn's server with the broker's meaning of signals (see the module's docstring)."""

    def __init__(self, config: uvicorn.Config, broker: LocalBroker):
        super().__init__(config)
        self._broker = broker

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's force_exit: it would skip the lifespan shutdown, where the broker
        # spools. Nor its re-raise of the signal after shutdown: the exit status is 0.
        if self.should_exit or sig == signal.SIGQUIT:
            self._broker.hurry()
        self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = signal.signal(signal.SIGQUIT, self.handle_exit)
        try:
            with super().capture_signals():
                yield
        finally:
            signal.signal(signal.SIGQUIT, previous)


@dataclass(frozen=True)
class Timeouts:
    """Seconds: a request head (from the connection's opening, or from a read that leaves a
    later head incomplete), a body from its head, an idle keep-alive connection."""

    head: float = DEFAULT_HEAD_TIMEOUT
    body: float = 30.0
    idle: int = DEFAULT_IDLE_TIMEOUT


def serve(
    broker: LocalBroker,
    host: str,
    port: int,
    max_body_bytes: int,
    timeouts: Timeouts | None = None,
) -> None:
    """Run the ingress until SIGINT/SIGTERM, then drain and spool (SIGQUIT: spool at once)."""
    limits = timeouts or Timeouts()
    config = uvicorn.Config(
        create_app(broker, max_body_bytes, limits.body),
        host=host,
        port=port,
        # uvloop when installed (a dependency); httptools is what GuardedProtocol builds on.
        loop="auto",
        http=GuardedProtocol.with_limits(limits.head, DEFAULT_MAX_HEAD_BYTES),
        timeout_keep_alive=limits.idle,
        log_level="warning",
        # uvicorn's lines go through the root logger that core/logs.py set up (LOG_FORMAT).
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    _BrokerServer(config, broker).run()
