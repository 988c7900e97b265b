"""The one handler wrapper, on small functions served by functions-framework in this process.

No PostgreSQL here: each function's `ready` is given, so the default database check never runs.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import functions_framework
import pytest
from starlette.testclient import TestClient

from modelstats.web import wrapper
from tests.cloudevents_http import binary

FUNCTIONS = """
import asyncio
from modelstats.core import cloudevents
from modelstats.core.errors import DatabaseUnavailable
from modelstats.web.wrapper import cloudevent_function

STARTS = []


def ready():
    return {"checked": True}


def broken():
    raise DatabaseUnavailable("down")


@cloudevent_function(ready=ready, start=lambda: STARTS.append("started"))
def echo(event):
    if event.data == "nothing":
        return None
    return cloudevents.reply("t.echoed", "/echo", event.id, {"got": event.data})


@cloudevent_function(ready=broken)
async def slow_echo(event):
    await asyncio.sleep(0)
    return cloudevents.reply("t.echoed", "/slow", event.id, {"got": event.data})
"""


@pytest.fixture
def source(tmp_path: Path) -> str:
    path = tmp_path / "main.py"
    path.write_text(textwrap.dedent(FUNCTIONS))
    return str(path)


@pytest.fixture
def echo(source: str) -> Iterator[TestClient]:
    with TestClient(functions_framework.create_app("echo", source)) as client:
        yield client


def test_a_sync_handle_replies_with_a_binary_cloudevent(echo):
    headers, body = binary({"a": 1}, id="e-7")
    response = echo.post("/", headers=headers, content=body)
    assert response.status_code == 200
    assert response.headers["ce-type"] == "t.echoed"
    assert response.headers["ce-id"] == "e-7"
    assert response.json() == {"got": {"a": 1}}


def test_no_reply_is_an_empty_204(echo):
    headers, body = binary("nothing")
    response = echo.post("/", headers=headers, content=body)
    assert response.status_code == 204
    assert response.content == b""


def test_an_async_handle_is_awaited(source):
    with TestClient(functions_framework.create_app("slow_echo", source)) as client:
        headers, body = binary([1, 2])
        response = client.post("/any/path", headers=headers, content=body)
    assert response.status_code == 200
    assert response.json() == {"got": [1, 2]}


def test_healthz_answers_what_ready_returns(echo):
    response = echo.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checked": True}


def test_healthz_answers_the_status_of_the_error_ready_raises(source):
    with TestClient(functions_framework.create_app("slow_echo", source)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"error": "database_unavailable", "message": "down"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(echo, method):
    response = echo.request(method, "/")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {"error": "bad_input", "field": "method", "message": "use POST"}


def test_not_a_cloudevent_is_400_naming_the_field(echo):
    response = echo.post("/", headers={"content-type": "application/json"}, content=b"{}")
    assert response.status_code == 400
    assert response.json()["field"] == "content-type"


def test_start_runs_once_per_process_before_the_first_request(source):
    app = functions_framework.create_app("echo", source)
    module = __import__("main")
    assert module.STARTS == []  # defining and loading the function starts nothing
    with TestClient(app) as client:
        client.get("/healthz")
        assert module.STARTS == ["started"]
        headers, body = binary({"a": 1})
        client.post("/", headers=headers, content=body)
        client.get("/healthz")
    assert module.STARTS == ["started"]


def test_a_forked_worker_starts_its_own(source, monkeypatch):
    app = functions_framework.create_app("echo", source)
    module = __import__("main")
    with TestClient(app) as client:
        client.get("/healthz")
        # gunicorn imports main.py in the master, then forks: the child has another pid.
        child = os.getpid() + 1
        monkeypatch.setattr(wrapper.os, "getpid", lambda: child)
        client.get("/healthz")
        client.get("/healthz")
    assert module.STARTS == ["started", "started"]
