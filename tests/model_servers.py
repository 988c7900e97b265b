"""The example model server (`examples/model_server.py`) as a user runs it, in front of a broker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.brokers import free_port
from tests.stacks import poll

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def example_server(broker: str, env: str) -> Iterator[str]:
    """Its base URL once it answers; leaving the block sends Ctrl-C (the reporter sends what it
    holds) and fails unless it exits cleanly; it is killed if the block failed first."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples" / "model_server.py"),
            *("--broker", broker, "--port", str(port), "--env", env),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        poll(
            lambda: httpx.get(f"{url}/reporter", timeout=1).status_code == 200,
            timeout=30,
            what="the example model server",
        )
        yield url
        server.send_signal(signal.SIGINT)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
