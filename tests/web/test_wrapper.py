"""The one handler wrapper, on small functions served by functions-framework in this process
(and, for the stop hook, in a process of its own, as a container runs it).

No PostgreSQL here: each function's `ready` is given, so the default database check never runs.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import functions_framework
import httpx
import pytest
from starlette.testclient import TestClient

from modelstats.core import holder
from tests.cloudevents_http import binary
from tests.functions import function_process
from tests.scrapes import moved, samples

FUNCTIONS = """
import asyncio
import os
from pathlib import Path
from starlette.responses import PlainTextResponse
from modelstats.core import cloudevents
from modelstats.core.errors import DatabaseUnavailable, Unauthorized
from modelstats.web.routes import Route
from modelstats.web.wrapper import cloudevent_function, http_function

STARTS = []
CHECKED = []


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


def stopped():
    Path(os.environ["STOPPED_FILE"]).write_text(f"stopped {os.getpid()}")


@cloudevent_function(ready=ready, stop=stopped)
def stops(event):
    return None


def authorize(request):
    CHECKED.append(request.url.path)
    if request.headers.get("authorization") != "yes":
        raise Unauthorized("say yes")


async def hello(request, path):
    return PlainTextResponse(f"hello {path['name']}")


async def scrape(request):
    return ()


pages = http_function(
    "pages",
    [Route("/", hello, public=True), Route("/hello/{name}", hello)],
    ready=ready,
    start=lambda: STARTS.append("pages"),
    authorize=authorize,
    scrape=scrape,
)
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
        monkeypatch.setattr(holder.os, "getpid", lambda: child)
        client.get("/healthz")
        client.get("/healthz")
    assert module.STARTS == ["started", "started"]


@pytest.fixture
def pages(source: str) -> Iterator[TestClient]:
    with TestClient(functions_framework.create_app("pages", source)) as client:
        yield client


def test_an_http_function_answers_from_its_routes(pages):
    response = pages.get("/hello/w%2Fx", headers={"authorization": "yes"})
    assert response.status_code == 200
    assert response.text == "hello w/x"


def test_an_http_function_authorizes_all_but_its_public_routes(pages):
    module = __import__("main")
    assert pages.get("/hello/a").status_code == 401
    assert pages.get("/healthz").json() == {"status": "ok", "checked": True}
    assert pages.get("/metrics").status_code == 401  # the function's rule, as for its data
    assert pages.get("/metrics", headers={"authorization": "yes"}).status_code == 200
    assert module.CHECKED == ["/hello/a", "/metrics", "/metrics"]
    assert module.STARTS == ["pages"]


def test_an_http_function_refuses_unknown_paths_and_other_methods(pages):
    missing = pages.get("/nowhere", headers={"authorization": "yes"})
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    refused = pages.post("/hello/a", headers={"authorization": "yes"})
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET"


def test_an_http_function_times_each_route_under_its_pattern(pages):
    yes = {"authorization": "yes"}
    before = samples(pages.get("/metrics", headers=yes).text)
    pages.get("/hello/a", headers=yes)
    pages.get("/hello/b", headers=yes)
    pages.get("/nowhere", headers=yes)
    after = samples(pages.get("/metrics", headers=yes).text)
    count = "modelstats_http_request_duration_seconds_count"
    assert moved(before, after, count, function="pages", route="/hello/{name}", code="200") == 2
    assert moved(before, after, count, function="pages", route="unmatched", code="404") == 1
    assert not [k for k in after if k[0] == count and ("route", "/metrics") in k[1]]


@pytest.mark.slow
def test_stop_runs_when_the_worker_exits(source, tmp_path):
    stopped = tmp_path / "stopped"
    with function_process("stops", source, None, {"STOPPED_FILE": str(stopped)}) as url:
        headers, body = binary({"a": 1})
        assert httpx.post(url, headers=headers, content=body).status_code == 204
        assert not stopped.exists()  # started, still serving
    # function_process ended it with SIGTERM to its process group, as Knative ends a pod.
    deadline = time.monotonic() + 10
    while not stopped.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stopped.read_text().startswith("stopped ")
