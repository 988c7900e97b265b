"""One function as a local process, started exactly as its container runs it.

For the tests and the benchmarks: `functions-framework --source ... --target ...` on a free port,
waited for until `/healthz` answers, stopped with its whole process group. (`modelstats run`
manages its processes itself, with log prefixes and restarts of the broker's view.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from modelstats.local.stack.ports import free_port

# The repository root: function sources are given relative to it, as in the manifests.
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], seconds: float = 30, output: list[str] | None = None
) -> None:
    def said() -> str:
        return "".join(f"\n  {line}" for line in output or [])

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"function at {url} exited with {process.returncode}{said()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"function at {url} not healthy within {seconds}s{said()}")


def _collect(process: subprocess.Popen[bytes], lines: list[str]) -> None:
    assert process.stdout is not None
    for raw in iter(process.stdout.readline, b""):
        lines.append(raw.decode(errors="replace").rstrip("\n"))


@contextmanager
def function_process(
    target: str,
    source: str,
    database_url: str | None,
    env: dict[str, str] | None = None,
    output: list[str] | None = None,
) -> Iterator[str]:
    """Run `functions-framework --source <source> --target <target>`; yield its base URL.

    `env` is added to this process's environment, except PROMETHEUS_MULTIPROC_DIR, which is
    only passed on when `env` names it: a directory belongs to one service. With `output`, the
    function's stdout and stderr are collected there line by line (and shown if it fails to
    start) instead of going to this process's."""
    port = free_port()
    process_env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if database_url is not None:
        process_env["DATABASE_URL"] = database_url
    process_env.update({"PORT": str(port), "HOST": "127.0.0.1", **(env or {})})
    command = [str(BIN / "functions-framework"), "--source", source, "--target", target]
    collect = output is not None
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=process_env,
        stdout=subprocess.PIPE if collect else None,
        stderr=subprocess.STDOUT if collect else None,
        start_new_session=True,
    )
    if output is not None:
        threading.Thread(target=_collect, args=(process, output), daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, output=output)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
