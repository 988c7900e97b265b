"""`Reporter`: the thread-based reporter, for model servers that are not asyncio programs.

report() validates, encodes and buffers under a lock and returns: it never touches the
network. One daemon thread (started by the first report, never at import) sends, sleeps
between retries and sends again; close() (also run at interpreter exit, while daemon threads
still run) flushes with a bounded wait. A forked child (gunicorn's workers) starts with an
empty buffer and its own thread: the parent's reports are the parent's to send.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import httpx

from modelstats.client.buffered import BufferedReports
from modelstats.client.core import BatchDelivery, Batcher, ReporterOptions

CLOSE_MARGIN_SECONDS = 2.0


def default_source() -> str:
    return f"/modelstats/reporter/{socket.gethostname()}"


def options_from(source: str | None, settings: dict[str, Any]) -> ReporterOptions:
    return ReporterOptions(source=source or default_source(), **settings)


def deliver(
    client: httpx.Client,
    url: str,
    delivery: BatchDelivery,
    deadline: Callable[[], float | None],
    sleep: Callable[[float], None],
) -> None:
    """Post a batch until it is settled (sent, refused, or given up at the close deadline)."""
    while (attempt := delivery.next_attempt(deadline())) is not None:
        if attempt.wait > 0:
            sleep(attempt.wait)
        try:
            response = client.post(
                url,
                headers=attempt.event.headers,
                content=attempt.event.body,
                timeout=attempt.timeout,
            )
        except httpx.HTTPError as error:
            delivery.unreachable(error)
            continue
        delivery.answered(response.status_code, response.headers.get("retry-after"), response.text)


def drain(
    client: httpx.Client,
    url: str,
    batcher: Batcher,
    deadline: Callable[[], float | None],
    sleep: Callable[[float], None],
) -> None:
    """Send everything buffered now; past the close deadline, take nothing more."""
    while True:
        limit = deadline()
        if limit is not None and time.monotonic() >= limit:
            return
        delivery = batcher.take()
        if delivery is None:
            return
        deliver(client, url, delivery, deadline, sleep)


class Reporter(BufferedReports):
    """Buffers metric reports and sends them to a broker as `modelstats.metric.reported`
    events, in the background:

        reporter = Reporter("http://127.0.0.1:8080/modelstats/default")
        reporter.report("fraud-detector", "v3", {"prediction_accuracy": 0.93})

    See `modelstats.client` for the options and the guarantees.
    """

    def __init__(self, broker_url: str, *, source: str | None = None, **settings: Any):
        self.url = broker_url
        self.options = options_from(source, settings)
        self._start_lock = threading.Lock()
        self._reset()
        self._closed = False
        self._at_exit = _weak_call(self, "_close_at_exit")
        atexit.register(self._at_exit)
        os.register_at_fork(after_in_child=_weak_call(self, "_reset"))

    def _reset(self) -> None:
        self._batcher = Batcher(self.options)
        self._wake = threading.Event()  # a full batch, a flush or close
        self._interrupt = threading.Event()  # close() cuts a retry's sleep once
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None

    # -- the model server's side ----------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is buffered now; True once all of it is settled (sent, or lost and
        counted), False if `timeout` seconds pass first."""
        mark = self._batcher.mark()
        self._ensure_started()
        self._poke()
        return self._batcher.wait_settled(mark, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking reports, send what is left within `timeout` (default `close_timeout`)
        seconds, stop the thread. True if nothing was lost at close."""
        return self._close(timeout, from_atexit=False)

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the sending thread ---------------------------------------------------------------

    def _poke(self) -> None:
        self._wake.set()

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="modelstats-reporter", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        options = self.options
        with httpx.Client(timeout=options.timeout, headers=dict(options.headers)) as client:
            while True:
                closing = self._deadline is not None
                if not closing:
                    self._wake.wait(options.flush_interval)
                    self._wake.clear()
                drain(client, self.url, self._batcher, self._get_deadline, self._sleep)
                if closing:
                    return

    def _get_deadline(self) -> float | None:
        return self._deadline

    def _sleep(self, seconds: float) -> None:
        if self._interrupt.wait(seconds):
            self._interrupt.clear()

    def _close(self, timeout: float | None, from_atexit: bool) -> bool:
        if self._closed:
            return self._batcher.lost_at_close == 0 and self.counters.pending == 0
        self._closed = True
        if not from_atexit:
            atexit.unregister(self._at_exit)
        wait = self.options.close_timeout if timeout is None else timeout
        self._batcher.close()
        self._deadline = time.monotonic() + wait
        self._interrupt.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait + CLOSE_MARGIN_SECONDS)
        self._batcher.abandon()
        return self._batcher.lost_at_close == 0 and self.counters.pending == 0

    def _close_at_exit(self) -> None:
        self._close(None, from_atexit=True)


def _weak_call(owner: object, method: str) -> Callable[[], None]:
    """A callable for atexit / fork hooks that does not keep `owner` alive."""
    ref = weakref.ref(owner)

    def call() -> None:
        target = ref()
        if target is not None:
            getattr(target, method)()

    return call
