"""The broker's HTTP side: the ingress `POST /<namespace>/<broker>`, `/healthz` and `/metrics`.

A bare ASGI application (no framework in the hot path) under uvicorn with uvloop and httptools.
Status codes as Knative's ingress answers them (EV pkg/broker/ingress/ingress_handler.go): 202
accepted, 400 not a valid CloudEvent (binary or structured; batched mode refused) or TTL spent,
404 for `/` or an unknown broker, 405 other methods, 200 OPTIONS; and, as this broker bounds what
it holds, 413 for a body over the limit (refused from its Content-Length, or as soon as a chunked
body passes it, never read whole), 408 for a body that does not arrive within the read timeout,
503 with `Retry-After` when no in-flight slot frees in time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client.exposition import choose_encoder

from modelstats.core import cloudevents
from modelstats.core.errors import BadInput
from modelstats.local.broker import LocalBroker
from modelstats.local.routing import BrokerRoute

log = logging.getLogger("modelstats.broker")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ALLOW = (b"allow", b"POST, OPTIONS")
TEXT = (b"content-type", b"text/plain; charset=utf-8")


class BodyTooLarge(Exception):
    pass


async def _respond(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = list(headers or [])
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

    def __init__(self, status: int, reason: str, counted_as: str):
        super().__init__(reason)
        self.status = status
        self.counted_as = counted_as


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
            ctype = (b"content-type", content_type.encode())
            await send({"type": "http.response.start", "status": 200, "headers": [ctype]})
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
                retry = [(b"retry-after", b"1")] if refusal.status == 503 else []
                await _respond(send, refusal.status, f"{refusal}\n".encode(), retry)
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
            raise too_large
        try:
            async with asyncio.timeout(self.read_timeout):
                return await _read_body(receive, limit)
        except BodyTooLarge:
            raise too_large from None
        except TimeoutError:
            reason = f"body not received within {self.read_timeout:g}s"
            raise Refusal(408, reason, "timeout") from None


def create_app(broker: LocalBroker, max_body_bytes: int, read_timeout: float = 30.0) -> ASGIApp:
    return Ingress(broker, max_body_bytes, read_timeout)


def serve(
    broker: LocalBroker, host: str, port: int, max_body_bytes: int, read_timeout: float = 30.0
) -> None:
    """Run the ingress until SIGINT/SIGTERM (uvicorn's handlers), then drain and spool."""
    import uvicorn

    config = uvicorn.Config(
        create_app(broker, max_body_bytes, read_timeout),
        host=host,
        port=port,
        # uvloop and httptools when installed (they are dependencies): the compiled parser and
        # loop, not h11 on the asyncio loop.
        loop="auto",
        http="auto",
        log_level="warning",
        # uvicorn's lines go through the root logger that core/logs.py set up (LOG_FORMAT).
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run()
