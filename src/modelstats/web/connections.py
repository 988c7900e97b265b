"""Limits on each connection that uvicorn does not set itself: one protocol, for the local
broker's ingress and for the functions' uvicorn workers alike.

uvicorn's `timeout_keep_alive` closes a keep-alive connection that stays idle after a response,
but nothing bounds a connection before its first request, or a request head that arrives a
byte at a time (the timer is disarmed by the first byte and armed again only after a response),
and httptools keeps a head of any size in memory. This protocol adds, per connection:

- a head deadline: from the connection's opening, or from the first read of a later request
  that does not complete its head, the whole head must arrive within `head_timeout` seconds,
  else 408 and close (a head that arrives in one read, the usual case, arms no timer);
- a head size cap: a head larger than `max_head_bytes` is answered 431 and the connection
  closed, whether it is still incomplete after a read or arrives whole in one or two reads
  (its size is counted as the parser reads it, not from the size of the reads);
- a lingering drain, after nginx's lingering close: once the application has answered (a
  413) while the body is still coming, the rest of it is read and dropped, never kept, so
  that a sender that writes its whole body before it reads (Python's urllib, http.client)
  gets to read the answer: closing a socket with unread data resets the connection, and the
  reset destroys the answer in the sender's buffers. When the connection is to close after
  the answer (the sender asked for it, as urllib does, or the application did), its writing
  side is shut at once and it is closed once the body has been read. The drain ends when the
  body does (a kept-alive connection then serves its next request); past `max_discard_bytes`,
  past `discard_seconds` in all, or after the keep-alive timeout without a byte, the
  connection is closed.

The body has its own limits in the application (size: 413, time: 408; the broker's ingress,
web/bodies.py for the functions).
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_MAX_HEAD_BYTES = 64 * 1024
# What a drain may cost: on loopback a 50 MB body drains in well under a second, and what is
# drained is dropped chunk by chunk (memory does not grow with it). A sender still writing
# past these bounds is cut off, and may see a reset instead of its answer.
DEFAULT_MAX_DISCARD_BYTES = 64 * 1024 * 1024
DEFAULT_DISCARD_SECONDS = 30.0  # nginx's lingering_time
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
# The request line and the `: ` and CRLF of each header line, which the parser's callbacks do
# not hand over: counted so that the cap is close to the bytes on the wire.
REQUEST_LINE_OVERHEAD = 16
HEADER_LINE_OVERHEAD = 4


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head deadline, a head size cap and a bounded
    lingering drain of a body already answered."""

    head_timeout = DEFAULT_HEAD_TIMEOUT
    max_head_bytes = DEFAULT_MAX_HEAD_BYTES
    max_discard_bytes = DEFAULT_MAX_DISCARD_BYTES
    discard_seconds = DEFAULT_DISCARD_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True
        # Bytes of a head not complete yet, over the reads it came in.
        self._head_bytes = 0
        # The size of the head being parsed, as the parser hands it over.
        self._head_size = 0
        self._dropped = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._drain_deadline: asyncio.TimerHandle | None = None
        # Closing after the answer, once the body being drained has been read.
        self._lingering = False
        self._cycle_transport: _CycleTransport | None = None

    @classmethod
    def with_limits(cls, head_timeout: float, max_head_bytes: int) -> type[GuardedProtocol]:
        """A subclass with these limits (uvicorn takes a protocol class, not an instance)."""
        limits = {"head_timeout": head_timeout, "max_head_bytes": max_head_bytes}
        return type("GuardedProtocolWithLimits", (cls,), limits)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._cycle_transport = _CycleTransport(self, transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._end_drain()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._reading_head:
            draining = self.cycle is not None and self.cycle.response_complete
            if draining:
                self._drop(len(data))
                if self.transport.is_closing():
                    return
            super().data_received(data)
            if draining and not self._reading_head and not self.transport.is_closing():
                self._arm_idle()  # the body goes on: the keep-alive timeout bounds its gaps
            return
        self._head_bytes += len(data)
        super().data_received(data)
        if self._head_bytes == 0:
            # The head completed in this read (the usual case: no timer armed for it); the
            # start of a next one behind it gets its deadline from its next read.
            return
        # Still in the head after this chunk: all of it was head (a chunk that completes the
        # head may carry a body too, and does not count).
        if self._head_bytes > self.max_head_bytes:
            self._refuse(431, self._too_large())
        elif self._deadline is None:
            self._arm()  # a head that began on a kept-alive connection and is not complete

    # -- the parser's callbacks: the head's size as it is read ----------------------------

    def on_message_begin(self) -> None:
        self._head_size = REQUEST_LINE_OVERHEAD
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + HEADER_LINE_OVERHEAD
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        if self._deadline is not None:
            self._disarm()
        if self._head_size <= self.max_head_bytes:
            super().on_headers_complete()
        else:
            # Whole, but too large: this one request goes to an application that answers
            # 431 and closes, through uvicorn's own request cycle (the parser reads on).
            app, self.app = self.app, _answer(431, self._too_large())
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        if self.cycle is not None and self._cycle_transport is not None:
            self.cycle.transport = self._cycle_transport  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        if self._lingering:
            self.transport.close()  # every byte read: a clean close, no reset
        elif self._dropped or self._drain_deadline is not None:
            self._end_drain()
            self._arm_idle()  # drained: idle until the next request, as after any answer

    # -- the drain ---------------------------------------------------------------------------

    def _drop(self, size: int) -> None:
        self._dropped += size
        if self._dropped > self.max_discard_bytes:
            self.transport.close()
        elif self._drain_deadline is None:
            self._drain_deadline = self.loop.call_later(self.discard_seconds, self.transport.close)

    def close_after_answer(self) -> None:
        """uvicorn's request cycle closes the connection after its answer: at once when the
        request has been read whole, else once its body has been drained (its bounds hold)."""
        if self._reading_head or self.transport.is_closing():
            self.transport.close()
            return
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is all there is: the sender sees its end

    def _end_drain(self) -> None:
        self._dropped = 0
        if self._drain_deadline is not None:
            self._drain_deadline.cancel()
            self._drain_deadline = None

    def _arm_idle(self) -> None:
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    # -- the head deadline and refusals ------------------------------------------------------

    def _too_large(self) -> str:
        return f"request head larger than {self.max_head_bytes} bytes"

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self._reading_head:
            self._refuse(408, f"request head not received within {self.head_timeout:g}s")

    def _refuse(self, status: int, message: str) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head behind a response still being written: no room for ours.
            self.transport.close()
            return
        body = message.encode() + b"\n"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, REASONS[status], len(body), body)
        )
        self.transport.close()


def guard_function_workers() -> None:
    """Give the functions' connections these limits too. functions-framework serves an ASGI
    function with gunicorn's `uvicorn_worker.UvicornWorker`, which builds each worker's uvicorn
    configuration from its class's CONFIG_KWARGS; GUNICORN_CMD_ARGS is ignored. A function's
    main.py (and so the wrapper that calls this) is imported in gunicorn's master before the
    workers are built, so each worker starts with this protocol."""
    try:
        from uvicorn_worker import UvicornWorker
    except ImportError:  # functions-framework without its ASGI server: nothing to guard
        return
    UvicornWorker.CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "http": GuardedProtocol}


class _CycleTransport:
    """The transport uvicorn's request cycle writes its answer to: the connection's own, except
    that closing it may linger (GuardedProtocol.close_after_answer)."""

    __slots__ = ("_protocol", "_transport")

    def __init__(self, protocol: GuardedProtocol, transport: asyncio.Transport):
        self._protocol = protocol
        self._transport = transport

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._protocol._lingering or self._transport.is_closing()

    def close(self) -> None:
        self._protocol.close_after_answer()


Scope = MutableMapping[str, Any]


def _answer(status: int, message: str) -> Any:
    """An ASGI application that answers every request with `status` and closes."""
    body = message.encode() + b"\n"
    head = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
    ]

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})

    return app
