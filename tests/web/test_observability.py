"""The wrapper's /metrics and logs in real functions-framework processes: one JSON object per
log line with LOG_FORMAT=json, and the counts of every gunicorn worker in one scrape with
PROMETHEUS_MULTIPROC_DIR (WORKERS=2)."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.cloudevents_http import binary
from tests.functions import function_process
from tests.scrapes import key, samples

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# No PostgreSQL: readiness is given, the handler only echoes.
FUNCTION = """
import logging
from modelstats.core import cloudevents
from modelstats.web.wrapper import cloudevent_function

log = logging.getLogger("modelstats.echo")


def ready():
    return {}


@cloudevent_function(ready=ready)
def echo(event):
    if event.data == "boom":
        raise RuntimeError("an unexpected failure")
    log.debug("echoing %s", event.id)
    return cloudevents.reply("t.echoed", "/echo", event.id, {"got": event.data})
"""


@contextmanager
def served(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """`functions-framework --target echo` on a free port; its URL and its output lines. The
    log settings are the test's own, whatever this shell's LOG_* say."""
    source = tmp_path / "main.py"
    source.write_text(textwrap.dedent(FUNCTION))
    lines: list[str] = []
    settings = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "text", **env}
    with function_process("echo", str(source), None, settings, output=lines) as url:
        yield url, lines


def wait_lines(lines: list[str], count: int, what: str, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(lines) < count:
        assert time.monotonic() < deadline, f"{what}: got {lines}"
        time.sleep(0.05)
    return list(lines)


def test_json_logs_one_object_per_line_with_fields(tmp_path: Path) -> None:
    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG", "K_SERVICE": "echo-service"}
    with served(tmp_path, env) as (url, lines):
        headers, body = binary({"a": 1}, id="ok-1")
        assert httpx.post(url, headers=headers, content=body).status_code == 200
        headers, body = binary({"a": 1}, id="bad-1", source="/sender")
        del headers["ce-type"]
        assert httpx.post(url, headers=headers, content=body).status_code == 400
        headers, body = binary("boom", id="boom-1")
        assert httpx.post(url, headers=headers, content=body).status_code == 500
        wait_lines(lines, 3, "three log lines")
        time.sleep(0.3)  # anything more the server had to say
        output = list(lines)
    entries = [json.loads(line) for line in output]  # every line is one JSON object
    debug, rejected = entries[0], entries[1]
    assert debug["level"] == "DEBUG"
    assert debug["message"] == "echoing ok-1"
    assert debug["function"] == "echo-service"
    assert rejected["level"] == "INFO"
    assert rejected["logger"] == "modelstats.events"
    assert rejected["message"].startswith("rejected event bad-1 from /sender: type: ")
    assert rejected["fields"]["reason"] == "not_cloudevent"
    assert rejected["fields"]["id"] == "bad-1"
    # The unexpected failure: functions-framework's own error line (the traceback is in its
    # message), one JSON object too.
    failures = [e for e in entries[2:] if e["level"] == "ERROR"]
    assert failures and "RuntimeError: an unexpected failure" in failures[0]["message"]
    assert all(set(e) >= {"time", "level", "function", "logger", "message"} for e in entries)


def test_text_logs_at_info_say_nothing_per_good_event(tmp_path: Path) -> None:
    with served(tmp_path, {}) as (url, lines):
        for number in range(5):
            headers, body = binary({"n": number}, id=f"quiet-{number}")
            assert httpx.post(url, headers=headers, content=body).status_code == 200
        headers, body = binary({"n": 1}, id="wrong", type="t.other")
        del headers["ce-specversion"]
        assert httpx.post(url, headers=headers, content=body).status_code == 400
        (line,) = wait_lines(lines, 1, "the rejection line")
        time.sleep(0.3)
        assert len(lines) == 1, lines
    assert " INFO    rejected event wrong from /tests: content-type: not a CloudEvent" in line


def test_every_worker_is_counted_in_one_scrape(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {"WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(directory)}

    def workers_that_served() -> int:
        return len([path for path in directory.iterdir() if path.name.startswith("histogram_")])

    events = 0
    with served(tmp_path, env) as (url, _):
        # New connections until both workers have served some (each keeps its own file).
        while events < 20 or (workers_that_served() < 2 and events < 400):
            headers, body = binary({"n": events}, id=f"mp-{events}")
            answer = httpx.post(url, headers=headers, content=body, timeout=10)
            assert answer.status_code == 200
            events += 1
        assert workers_that_served() == 2
        count = key(
            "modelstats_http_request_duration_seconds_count",
            function="echo",
            route="/",
            code="200",
        )
        # Whichever worker answers a scrape, it reports the sum over both.
        for _ in range(10):
            assert samples(httpx.get(f"{url}/metrics", timeout=10).text)[count] == events
