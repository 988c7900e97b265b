"""A real local HTTP receiver for tests: records every request with its arrival time and answers
from a script (a sequence of replies, then a default), or from a function of the request.

    with Receiver(script=[Reply(503), Reply(503)], default=Reply(204)) as receiver:
        ... point something at receiver.url ...
        requests = receiver.wait_for(3, timeout=10)
        requests[1].monotonic - requests[0].monotonic  # spacing between attempts

`Reply.event(...)` builds a binary-mode CloudEvent reply. Threaded, loopback only; every wait is
bounded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.cloudevents_http import binary_headers, json_body


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lowercase names
    body: bytes
    monotonic: float
    wall: float

    def json(self) -> Any:
        return json.loads(self.body)

    def ce(self, name: str) -> str | None:
        """A binary-mode CloudEvent attribute (`ce-<name>` header)."""
        return self.headers.get(f"ce-{name}")


@dataclass(frozen=True)
class Reply:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds to wait before answering (timeouts)

    @staticmethod
    def event(
        type: str,
        source: str = "/tests/receiver",
        data: Any = None,
        status: int = 200,
        id: str | None = None,
        **extensions: str,
    ) -> Reply:
        content, body = json_body(data)
        return Reply(status, {**binary_headers(type, source, id, **extensions), **content}, body)

    @staticmethod
    def json(status: int, document: Any) -> Reply:
        return Reply(status, {"content-type": "application/json"}, json.dumps(document).encode())


Handler = Callable[[Request], Reply]


class Receiver:
    def __init__(
        self,
        script: Iterable[Reply] = (),
        default: Reply | None = None,
        handler: Handler | None = None,
        port: int = 0,
    ):
        self._script = list(script)
        self._default = default or Reply(204)
        self._handler = handler
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.requests: list[Request] = []
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                    time.time(),
                )
                reply = receiver._record(request)
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                if reply.body:
                    self.wfile.write(reply.body)

            do_POST = do_GET = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        # A short poll: close() waits for the loop to notice, once per test and receiver.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _record(self, request: Request) -> Reply:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
            if self._handler is not None:
                return self._handler(request)
            if self._script:
                return self._script.pop(0)
            return self._default

    def set_default(self, reply: Reply) -> None:
        with self._lock:
            self._default = reply

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        """The first `count` requests; AssertionError if they do not all arrive in time."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} request(s) within {timeout}s, got {len(self.requests)}"
                    )
                self._arrived.wait(left)
            return list(self.requests[:count])

    def quiet_for(self, seconds: float) -> list[Request]:
        """Wait `seconds` and return everything received (to assert nothing more came)."""
        time.sleep(seconds)
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
