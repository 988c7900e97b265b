"""A function's `start()` and `stop()`, run once in each process that serves it.

functions-framework imports `main.py` in gunicorn's master before it forks the worker, and
builds its Starlette app without a lifespan hook (Starlette keeps no shutdown list to join
later), so no ASGI startup or shutdown event ever reaches a function. So:

- `start()` runs before the first request a process serves (the first moment that is surely
  in the worker), after logging is configured; a forked worker runs its own (the pid is
  checked), and a failed start is tried again on the next request.
- `stop()` runs when that process exits normally, as an exit callback registered by the
  process that started, followed by closing its database pools. A gunicorn worker leaves
  through `sys.exit` once uvicorn has finished the requests in flight, and the interpreter then
  runs those callbacks, but uvicorn ends a graceful shutdown by raising the signal that began
  it again, with its default action restored: the process would die of it before any callback
  ran. So, in a uvicorn worker, SIGTERM and SIGINT are taken over from uvicorn's handler by
  one that does what it does (a graceful shutdown; a second SIGINT forces it) without keeping
  the signal to raise at the end.
"""

from __future__ import annotations

import atexit
import signal
import threading
from collections.abc import Callable
from types import FrameType

from starlette.concurrency import run_in_threadpool
from uvicorn.server import HANDLED_SIGNALS, Server

from modelstats.core import logs
from modelstats.core.holder import Holder
from modelstats.core.settings import get_settings
from modelstats.store import db

Start = Callable[[], None]
Stop = Callable[[], None]


class Lifecycle:
    def __init__(self, function: str, start: Start | None, stop: Stop | None):
        self._function = function
        self._start = start
        self._stop = stop
        # Holds True in a process that has started (a forked worker has not).
        self._started: Holder[bool] = Holder(self._run_start)

    def _run_start(self) -> bool:
        logs.configure(get_settings().extra.get("K_SERVICE") or self._function)
        if self._start is not None:
            self._start()
        atexit.register(self.stop)
        return True

    async def started(self) -> None:
        """Run `start()` unless this process has run it."""
        if self._started.peek() is None:
            exit_normally_on_signals()
            await run_in_threadpool(self._started.get)

    def stop(self) -> None:
        """Run `stop()`, then close the pools; only in the process that started, and once."""
        if self._started.take() is None:
            return
        try:
            if self._stop is not None:
                self._stop()
        finally:
            db.close_pools()


def exit_normally_on_signals() -> None:
    """In a uvicorn server's main thread, let SIGTERM and SIGINT stop it gracefully without
    the re-raise that would kill the process before its exit callbacks run."""
    if threading.current_thread() is not threading.main_thread():
        return  # in-process servers (tests) run their loop in another thread: not ours to stop
    for number in HANDLED_SIGNALS:
        handler = signal.getsignal(number)
        server = getattr(handler, "__self__", None)
        if isinstance(server, Server):
            signal.signal(number, _graceful(server))


def _graceful(server: Server) -> Callable[[int, FrameType | None], None]:
    def on_signal(number: int, frame: FrameType | None) -> None:
        if server.should_exit and number == signal.SIGINT:
            server.force_exit = True
        else:
            server.should_exit = True

    return on_signal
