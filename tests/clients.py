"""A function under test in this process: functions-framework's app behind Starlette's client.

The client runs the app on an event loop of its own for as long as the `with` lasts; the async
pool the function opened on that loop is closed on it before the loop goes (left open, each
client's connections would stay until the server's max_connections ran out).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import functions_framework
from starlette.testclient import TestClient

from modelstats.store import db


@contextmanager
def function_client(target: str, source: str) -> Iterator[TestClient]:
    with TestClient(functions_framework.create_app(target, source)) as client:
        try:
            yield client
        finally:
            client.portal.call(db.close_async_pool)
