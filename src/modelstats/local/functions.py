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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from modelstats.local.ports import free_port

# The repository root: function sources are given relative to it, as in the manifests.
ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"function at {url} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"function at {url} not healthy within {seconds}s")


@contextmanager
def function_process(
    target: str, source: str, database_url: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `functions-framework --source <source> --target <target>`; yield its base URL."""
    port = free_port()
    process_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        **(env or {}),
    }
    command = [str(BIN / "functions-framework"), "--source", source, "--target", target]
    process = subprocess.Popen(command, cwd=ROOT, env=process_env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
