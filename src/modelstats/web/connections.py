"""Limits on each connection that uvicorn does not set itself (the broker's ingress).

uvicorn's `timeout_keep_alive` closes a keep-alive connection that stays idle after a response,
but nothing bounds a connection before its first request, or a request head that arrives a
byte at a time (the timer is disarmed by the first byte and armed again only after a response),
and httptools keeps a head of any size in memory. This protocol adds, per connection:

- a head deadline: from the connection's opening, or from the first read of a later request
  that does not complete its head, the whole head must arrive within `head_timeout` seconds,
  else 408 and close (a head that arrives in one read, the usual case, arms no timer);
- a head size cap: more than `max_head_bytes` before the head is complete, 431 and close;
- a bound on what is dropped: once the application has answered (a 413) while the body is still
  coming, uvicorn reads the rest and drops it, which keeps the connection usable and lets the
  sender read the answer (closing with unread data would reset the connection and lose it).
  Past `max_discard_bytes`, or `head_timeout` seconds, the connection is closed instead.

The body has its own limits in the application (size: 413, time: 408; ingress.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_MAX_HEAD_BYTES = 64 * 1024
# Go's net/http reads up to 256 KiB of an unread body to keep a connection; a little more here,
# where senders batch many reports into one event.
DEFAULT_MAX_DISCARD_BYTES = 1024 * 1024
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head deadline, a head size cap and a bound on what
    it drops of a body already answered."""

    head_timeout = DEFAULT_HEAD_TIMEOUT
    max_head_bytes = DEFAULT_MAX_HEAD_BYTES
    max_discard_bytes = DEFAULT_MAX_DISCARD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True
        self._head_bytes = 0
        self._dropped = 0
        self._deadline: asyncio.TimerHandle | None = None

    @classmethod
    def with_limits(cls, head_timeout: float, max_head_bytes: int) -> type[GuardedProtocol]:
        """A subclass with these limits (uvicorn takes a protocol class, not an instance)."""
        limits = {"head_timeout": head_timeout, "max_head_bytes": max_head_bytes}
        return type("GuardedProtocolWithLimits", (cls,), limits)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._reading_head:
            if self.cycle is not None and self.cycle.response_complete:
                self._drop(len(data))  # the rest of a body already answered
                if self.transport.is_closing():
                    return
            super().data_received(data)
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
            self._refuse(431, f"request head larger than {self.max_head_bytes} bytes")
        elif self._deadline is None:
            self._arm()  # a head that began on a kept-alive connection and is not complete

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        if self._deadline is not None:
            self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        if self._dropped:
            self._dropped = 0
            self._disarm()

    def _drop(self, size: int) -> None:
        self._dropped += size
        if self._dropped > self.max_discard_bytes:
            self.transport.close()
        elif self._deadline is None:
            self._deadline = self.loop.call_later(self.head_timeout, self.transport.close)

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
