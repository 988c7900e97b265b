"""`AsyncReporter`: the same reporter for asyncio model servers (FastAPI, aiohttp, ...).

The buffer, the events and every retry decision are `core`'s, as for `Reporter`; only the
sending differs: a task on the running loop with an `httpx.AsyncClient`. report() stays a
plain (non-async) call that only buffers, so it can be called from handlers and from worker
threads alike. The task starts with the first report() made on the loop (or `async with`).

Close it with `await reporter.aclose()` (FastAPI's lifespan, `async with`). If the program
ends without that, `asyncio.run` has cancelled the task by the time the interpreter exits:
the exit hook then sends what is left with a plain `httpx.Client`, through the same code
`Reporter` uses.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import time
from typing import Any

import httpx

from modelstats.client.buffered import BufferedReports
from modelstats.client.core import BatchDelivery, Batcher
from modelstats.client.sync import CLOSE_MARGIN_SECONDS, _weak_call, deliver, drain, options_from

FLUSH_POLL_SECONDS = 0.02


class AsyncReporter(BufferedReports):
    """`Reporter` for asyncio: `report()` buffers, `await flush()`, `await aclose()`."""

    def __init__(self, broker_url: str, *, source: str | None = None, **settings: Any):
        self.url = broker_url
        self.options = options_from(source, settings)
        self._batcher = Batcher(self.options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._interrupt = asyncio.Event()
        self._deadline: float | None = None
        self._current: BatchDelivery | None = None  # the batch being sent, kept if the task dies
        self._closed = False
        self._at_exit = _weak_call(self, "_close_at_exit")
        atexit.register(self._at_exit)

    async def flush(self, timeout: float | None = None) -> bool:
        """Send what is buffered now; True once all of it is settled, False after `timeout`."""
        mark = self._batcher.mark()
        self._ensure_started()
        self._poke()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._batcher.settled(mark):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(FLUSH_POLL_SECONDS)
        return True

    async def aclose(self, timeout: float | None = None) -> bool:
        """Stop taking reports and send what is left within `timeout` (default
        `close_timeout`) seconds. True if nothing was lost at close."""
        if not self._closed:
            self._closed = True
            atexit.unregister(self._at_exit)
            self._batcher.close()
            wait = self.options.close_timeout if timeout is None else timeout
            self._deadline = time.monotonic() + wait
            if self._task is not None and not self._task.done():
                self._interrupt.set()
                self._wake.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._task), wait + CLOSE_MARGIN_SECONDS)
            self._batcher.abandon()
        return self._batcher.lost_at_close == 0 and self.counters.pending == 0

    async def __aenter__(self) -> AsyncReporter:
        self._ensure_started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the sending task ----------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a worker thread: the loop's next report() or flush() starts the task
        self._loop = loop
        # Events bind to the loop that first waits on them: a new loop gets new ones.
        self._wake, self._interrupt = asyncio.Event(), asyncio.Event()
        self._task = loop.create_task(self._run(), name="modelstats-reporter")

    def _poke(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        options = self.options
        headers = dict(options.headers)
        async with httpx.AsyncClient(timeout=options.timeout, headers=headers) as client:
            if self._current is not None:  # left by a task that was cancelled mid-send
                await self._deliver(client, self._current)
            while True:
                closing = self._deadline is not None
                if not closing:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), options.flush_interval)
                    self._wake.clear()
                while not self._past_deadline():
                    delivery = self._batcher.take()
                    if delivery is None:
                        break
                    await self._deliver(client, delivery)
                if closing:
                    return

    async def _deliver(self, client: httpx.AsyncClient, delivery: BatchDelivery) -> None:
        """`sync.deliver` with awaits: post until the batch is settled."""
        self._current = delivery
        while (attempt := delivery.next_attempt(self._deadline)) is not None:
            if attempt.wait > 0:
                await self._sleep(attempt.wait)
            try:
                response = await client.post(
                    self.url,
                    headers=attempt.event.headers,
                    content=attempt.event.body,
                    timeout=attempt.timeout,
                )
            except httpx.HTTPError as error:
                delivery.unreachable(error)
                continue
            retry_after = response.headers.get("retry-after")
            delivery.answered(response.status_code, retry_after, response.text)
        self._current = None

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._interrupt.wait(), seconds)
        self._interrupt.clear()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _close_at_exit(self) -> None:
        if self._closed:
            return
        loop, task = self._loop, self._task
        if loop is not None and loop.is_running() and task is not None and not task.done():
            # The loop lives on in another thread: close there.
            future = asyncio.run_coroutine_threadsafe(self.aclose(), loop)
            with contextlib.suppress(Exception):
                future.result(self.options.close_timeout + 2 * CLOSE_MARGIN_SECONDS)
            return
        # The loop is gone (asyncio.run cancelled the task): send the rest from here.
        self._closed = True
        self._batcher.close()
        deadline = time.monotonic() + self.options.close_timeout
        options = self.options
        with httpx.Client(timeout=options.timeout, headers=dict(options.headers)) as client:
            if self._current is not None:
                deliver(client, self.url, self._current, lambda: deadline, time.sleep)
            drain(client, self.url, self._batcher, lambda: deadline, time.sleep)
        self._batcher.abandon()
